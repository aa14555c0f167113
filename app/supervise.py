"""`studyrag serve` keeps its processes up: one that dies is logged with the reason and started again.

A worker killed by the kernel (out of memory on a hostile PDF) must not take the web app with it, and
a crash loop must not spin: restarts back off from 1 s to 30 s, and a process that then stays up for a
minute starts again from 1 s.
"""

import logging
import signal
import subprocess
import time
from dataclasses import dataclass, field

log = logging.getLogger("studyrag.serve")

FIRST_BACKOFF, MAX_BACKOFF, STABLE_SECONDS = 1.0, 30.0, 60.0


def exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Supervised:
    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = FIRST_BACKOFF
    restart_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        # Own session: Ctrl-C reaches only the supervisor, which then stops each child once, in order.
        self.process = subprocess.Popen(self.command, env=self.env, start_new_session=True)
        self.started = time.monotonic()
        self.restart_at = None

    def check(self) -> None:
        """Start the process again if it died (after its back-off)."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                log.warning("starting the %s again (restart %s)", self.name, self.restarts)
                self.start()
            return
        code = self.process.poll() if self.process else None
        if code is None:
            return
        if now - self.started >= STABLE_SECONDS:
            self.backoff = FIRST_BACKOFF
        log.error("the %s %s; starting it again in %.0f s", self.name, exit_reason(code), self.backoff)
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)


def stop_all(children: list[Supervised], timeout: float = 10) -> None:
    running = [c.process for c in children if c.process is not None and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
