"""Declarative base, engines and the request session (one commit per request)."""

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from app.config import Settings

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def pool_options(settings: Settings) -> dict[str, Any]:
    """A process's share of Postgres connections (see the README's "Scale" for the arithmetic)."""
    return {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
    }


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


Callback = Callable[[], Awaitable[object]]  # what it returns is not used


def after_commit(session: AsyncSession, callback: Callback) -> None:
    """Run `callback` once the request's transaction has committed (enqueue a job, delete an object)."""
    session.info.setdefault("after_commit", []).append(callback)


def on_rollback(session: AsyncSession, callback: Callback) -> None:
    """Run `callback` if the request's transaction is rolled back (remove an object stored for it)."""
    session.info.setdefault("on_rollback", []).append(callback)


async def release(session: AsyncSession) -> None:
    """Give the session's pooled connection back before slow work (Redis, embedding, a model, a
    stream). What the request has written so far commits; its next query opens a new transaction, and
    the tenant binding is applied to it again (app.tenancy)."""
    if session.in_transaction():
        await session.commit()


async def _run(session: AsyncSession, key: str) -> None:
    for callback in session.info.pop(key, []):
        try:
            await callback()
        except Exception:
            log.exception("%s callback failed", key)
    session.info.pop("after_commit", None)
    session.info.pop("on_rollback", None)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed once when the route succeeds, rolled back when it raises."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except Exception:
            await session.rollback()
            await _run(session, "on_rollback")
            raise
        else:
            try:
                await session.commit()
            except Exception:
                await _run(session, "on_rollback")
                raise
            await _run(session, "after_commit")


# Function scope: the commit happens before the response is sent, so a failed commit is an error
# response and a client that follows a redirect always sees the data.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
