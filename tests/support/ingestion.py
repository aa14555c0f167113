"""Running real arq workers for ingestion tests: in-process (burst) or as a `studyrag worker` process."""

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from app.worker import make_worker
from tests.support.paths import ROOT

TERMINAL = ("ready", "failed")


async def run_worker_until_idle(services) -> None:
    """A real arq worker in this process, until the queue is empty."""
    worker = make_worker(
        services.redis_url, services.app_database_url, burst=True, poll_delay=0.05, handle_signals=False
    )
    try:
        await worker.main()
    finally:
        await worker.close()


class WorkerProcess:
    """`studyrag worker` as its own process, as production runs it."""

    def __init__(self, **env: str) -> None:
        self.env = {**os.environ, **env}
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> "WorkerProcess":
        self.process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "studyrag"),
            "worker",
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                await self.kill()


async def wait_for(
    student, document_ids: list[str], statuses=TERMINAL, seconds: float = 240
) -> dict[str, dict]:
    """Poll `GET /api/jobs/{id}` until every document has one of `statuses`."""
    deadline = time.monotonic() + seconds
    while True:
        jobs = {}
        for document_id in document_ids:
            response = await student.get(f"/api/jobs/{document_id}")
            assert response.status_code == 200, response.text
            jobs[document_id] = response.json()
        if all(job["status"] in statuses for job in jobs.values()):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting: {jobs}")
        await asyncio.sleep(0.25)
