"""The audit log: who did what to which target, with what outcome.

`record` writes inside the caller's transaction (the event happens only if the action commits).
`record_now` writes and commits at once on its own connection, for refusals and failures that must
be kept although the request itself is rolled back.
"""

import uuid
from typing import Literal

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app.models import AuditLog
from app.tenancy import Tenant, bind_tenant

Outcome = Literal["ok", "denied", "failed"]


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
