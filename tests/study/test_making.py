"""The study child: ready before a student asks (started with the web process, not on first use),
and gone with its web process, even one that dies without stopping."""

import asyncio
import sys
from pathlib import Path

from app.study import making
from tests.support.paths import ROOT

DIES_WITHOUT_STOPPING = """
import os, sys, time
from app.study import making
making.start()
time.sleep(1)
print(*(p.pid for p in making._pool._processes.values()), flush=True)
os._exit(0)
"""


def loaded(module: str) -> bool:
    return module in sys.modules


async def test_the_web_process_starts_the_study_child_with_its_makers_loaded(app) -> None:
    # The shared app's lifespan has run: its child exists before any study request of this test.
    assert making._pool is not None

    making.stop()
    making.start()  # what the lifespan does, on a child that has made nothing yet
    # Tasks run in order, so this one sees what the start-up task loaded (nothing else imports it).
    assert await making.made(loaded, "app.study.offline")
    assert await making.made(loaded, "wordfreq")


def _alive(pid: int) -> bool:
    """Running (an exited child nobody has reaped yet is a zombie: not alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_study_child_does_not_outlive_a_web_process_that_dies() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DIES_WITHOUT_STOPPING, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    (child,) = (int(pid) for pid in output.split())
    for _ in range(100):
        if not _alive(child):
            break
        await asyncio.sleep(0.1)
    assert not _alive(child), "the study child lives on after its web process"
