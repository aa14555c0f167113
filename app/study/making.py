"""Offline study aids are made in a child process of each web process, never on its threads.

Making cards, a quiz or a guide is pure Python: 0.1–0.5 s of CPU that, on a thread, holds the GIL and
slows every other request of the process (bench/load.py at 200 students: chat p95 320 ms → 1 s). One
child per process (spawned when the web process starts, kept for later, so a book's sentences it has
read stay cached) makes them one at a time; the request awaits it without holding a database connection.
The child ends with its web process: joined when the process stops, and on its own should the process
die without stopping (it used to live on, an orphan holding the server's output open).
"""

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
_pool: ProcessPoolExecutor | None = None
PARENT_CHECK_SECONDS = 2.0


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_follow_parent,
            initargs=(os.getpid(),),
        )
    return _pool


def _follow_parent(parent: int) -> None:
    """In the child: leave Ctrl-C to the web process (which stops the child in order), and exit
    once the web process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def start() -> None:
    """Spawn the child now and have it load the makers and their word list in the background.

    Spawned on first use instead, the child made the first student of each web process wait ~1.3 s
    (bench/load.py: quiz p95 1,300 ms in the 20-student step, against ~350 ms after it).
    """
    _executor().submit(_load_makers)


def stop() -> None:
    """End the child (the web process is stopping), after the aid it may be making; a later `made`
    spawns another."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None


def _load_makers() -> None:
    from wordfreq import word_frequency

    import app.study.offline  # noqa: F401  (what unpickling the first task would import)

    word_frequency("the", "en")  # reads the word list (~0.3 s)


async def made(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` run in the study child (its arguments and result are pickled)."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), partial(function, *args, **kwargs))
