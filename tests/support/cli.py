"""`studyrag` run as a person runs it, in its own process from the repository root."""

import asyncio
import os
import sys
from pathlib import Path

from tests.support.paths import ROOT

STUDYRAG = str(Path(sys.executable).parent / "studyrag")


async def run(*args: str, env: dict | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        STUDYRAG,
        *args,
        env=env or dict(os.environ),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()
