"""Offline study aids are made in a child process of each web process, never on its threads.

Making cards, a quiz or a guide is pure Python: 0.1–0.5 s of CPU that, on a thread, holds the GIL and
slows every other request of the process (bench/load.py at 200 students: chat p95 320 ms → 1 s). One
child per process (spawned on first use, kept for later, so a book's sentences it has read stay
cached) makes them one at a time; the request awaits it without holding a database connection.
"""

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


async def made(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` run in the study child (its arguments and result are pickled)."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), partial(function, *args, **kwargs))
