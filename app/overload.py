"""Overload degrades, never collapses: scarce resources are waited for briefly, then refused with 503.

Two things run out when a whole class asks at once: pooled database connections and the question
embedder (CPU). A request waits for a connection at most `DB_POOL_TIMEOUT` seconds (SQLAlchemy's pool
queue) and for the embedder in a `Gate` — a bounded queue with a bounded wait. Past either bound the
answer is 503 with `Retry-After` (a readable page for the site), so a busy service answers at once
instead of hanging for half a minute, and recovers as soon as the load drops.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.errors import on_app_error
from app.exceptions import Busy


class Overloaded(Busy):
    """`what` is full; answered as 503 with `Retry-After` by the one error handler."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(retry_after)
        self.what = what


class Gate:
    """At most `capacity` holders at once; up to `max_waiting` more queue for at most `timeout` seconds.
    Anyone past the queue's length or its wait is refused with `Overloaded`."""

    def __init__(
        self, what: str, *, capacity: int, max_waiting: int, timeout: float, retry_after: int
    ) -> None:
        self.what, self.max_waiting, self.timeout, self.retry_after = what, max_waiting, timeout, retry_after
        self._slots = asyncio.Semaphore(capacity)
        self.waiting = 0

    @asynccontextmanager
    async def enter(self) -> AsyncIterator[None]:
        if self._slots.locked() and self.waiting >= self.max_waiting:
            raise Overloaded(self.what, self.retry_after)
        self.waiting += 1
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise Overloaded(self.what, self.retry_after) from None
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


def install_overload_handlers(app: FastAPI, *, pool_retry_after: int) -> None:
    """Every pooled connection taken past DB_POOL_TIMEOUT: busy, like a full gate."""

    async def on_pool_timeout(request: Request, exc: PoolTimeout) -> Response:
        return await on_app_error(request, Busy(pool_retry_after))

    app.add_exception_handler(PoolTimeout, on_pool_timeout)
