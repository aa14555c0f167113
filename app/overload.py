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
from starlette.exceptions import HTTPException

from app.errors import on_http_exception


class Overloaded(Exception):
    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(what)
        self.what, self.retry_after = what, retry_after


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


def busy(retry_after: int) -> HTTPException:
    return HTTPException(
        status_code=503,
        detail=f"StudyRAG is busy right now. Try again in {retry_after} seconds.",
        headers={"Retry-After": str(retry_after)},
    )


def install_overload_handlers(app: FastAPI, *, pool_retry_after: int) -> None:
    # The decorator registers each handler as add_exception_handler does, and types it by its exception.
    @app.exception_handler(Overloaded)
    async def on_overloaded(request: Request, exc: Overloaded) -> Response:
        return await on_http_exception(request, busy(exc.retry_after))

    @app.exception_handler(PoolTimeout)
    async def on_pool_timeout(request: Request, exc: PoolTimeout) -> Response:
        return await on_http_exception(request, busy(pool_retry_after))
