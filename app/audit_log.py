"""The audit log: who did what to which target, with what outcome.

`record` writes inside the caller's transaction (the event happens only if the action commits).
`record_now` writes and commits at once on its own connection, for refusals and failures that must
be kept although the request itself is rolled back. `record_refusal` is `record_now` for refused
attempts (an unknown id, an admin probe), bounded so that a flood cannot bury the log: each user's
first AUDIT_REFUSALS_PER_MINUTE refusals of one kind in a minute are written one by one, the rest
are counted in Redis and written as one row with the count once the minute is over
(`flush_refusal_counts`, run by every web process).
"""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.config import get_settings
from app.models import AuditLog
from app.tenancy import Tenant, bind_tenant

log = logging.getLogger(__name__)

Outcome = Literal["ok", "denied", "failed"]
REFUSALS = "studyrag:audit:refusals"
OVERFLOWING = f"{REFUSALS}:overflowing"  # minutes with refusals over the bound: member → minute's end
COUNT_TTL_SECONDS = 7 * 24 * 3600  # a count not yet written survives a week without a web process


async def record(
    session: AsyncSession,
    *,
    action: str,
    outcome: Outcome = "ok",
    user_id: uuid.UUID | None = None,
    target: str | None = None,
    ip: str | None = None,
    detail: dict | None = None,
) -> None:
    session.add(
        AuditLog(action=action, outcome=outcome, user_id=user_id, target=target, ip=ip, detail=detail or {})
    )
    await session.flush()


async def record_now(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    action: str,
    outcome: Outcome,
    user_id: uuid.UUID | None = None,
    target: str | None = None,
    ip: str | None = None,
    detail: dict | None = None,
) -> None:
    async with sessionmaker() as session, session.begin():
        if user_id is not None:
            await bind_tenant(session, Tenant(user_id))
        await record(
            session, action=action, outcome=outcome, user_id=user_id, target=target, ip=ip, detail=detail
        )


async def record_as(conn: AsyncConnection, owner: uuid.UUID | None, **fields) -> None:
    """Write one event on a bare connection (no session), in the name of `owner` (or of no user)."""
    await conn.execute(text("select set_config('app.user_id', :u, true)"), {"u": str(owner) if owner else ""})
    await conn.execute(insert(AuditLog).values(user_id=owner, detail=fields.pop("detail", {}), **fields))
    await conn.execute(text("select set_config('app.user_id', '', true)"))


async def record_refusal(
    request: Request,
    *,
    action: str,
    user_id: uuid.UUID,
    target: str | None = None,
    ip: str | None = None,
    detail: dict | None = None,
) -> None:
    """Record a refused attempt now: one row, or, past the minute's bound, one more in the count."""
    limit = get_settings().audit_refusals_per_minute
    minute = int(time.time() // 60)
    bucket = f"{user_id}|{action}|{minute}"
    redis: Redis = request.app.state.arq
    try:
        count = await redis.incr(f"{REFUSALS}:{bucket}")
        if count == 1:
            await redis.expire(f"{REFUSALS}:{bucket}", COUNT_TTL_SECONDS)
        if count == limit + 1:
            await redis.zadd(OVERFLOWING, {bucket: (minute + 1) * 60})
    except Exception:  # Redis down: every refusal is written, as without a bound
        log.exception("counting a refusal failed")
        count = 1
    if count <= limit:
        await record_now(
            request.app.state.sessionmaker,
            action=action,
            outcome="denied",
            user_id=user_id,
            target=target,
            ip=ip,
            detail=detail,
        )


async def flush_refusal_counts(
    redis: Redis, sessionmaker: async_sessionmaker[AsyncSession], *, now: float | None = None
) -> int:
    """Write one row per (user, kind, minute) that went over the bound and is over: how many more
    refusals there were. Each is claimed by one process only. Returns how many rows were written."""
    limit = get_settings().audit_refusals_per_minute
    written = 0
    for member in await redis.zrangebyscore(OVERFLOWING, "-inf", now or time.time()):
        bucket = member.decode() if isinstance(member, bytes) else member
        if not await redis.zrem(OVERFLOWING, member):
            continue  # another web process writes this one
        user_id, action, minute = bucket.split("|")
        total = int(await redis.get(f"{REFUSALS}:{bucket}") or 0)
        started = datetime.fromtimestamp(int(minute) * 60, UTC)
        try:
            await record_now(
                sessionmaker,
                action=action,
                outcome="denied",
                user_id=uuid.UUID(user_id),
                target=f"{total - limit} more in the minute from {started:%H:%M} UTC",
                detail={
                    "aggregated": True,
                    "more": total - limit,
                    "total": total,
                    "minute": started.isoformat(),
                },
            )
        except Exception:
            await redis.zadd(OVERFLOWING, {member: int(minute) * 60 + 60})  # try again next time
            raise
        await redis.delete(f"{REFUSALS}:{bucket}")
        written += 1
    return written


def write_refusal_counts_in_the_background(
    redis: Redis, sessionmaker, every_seconds: float = 20
) -> asyncio.Task:
    """The web process's background task: counts of past minutes are written within seconds. Cancel
    it at shutdown."""

    async def forever() -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await flush_refusal_counts(redis, sessionmaker)
            except Exception:
                log.exception("writing refusal counts to the audit log failed")

    return asyncio.create_task(forever(), name="audit refusal counts")
