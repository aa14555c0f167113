"""The audit log as admins read it: filtered by user, action and outcome, newest first, through the
logged admin path."""

import uuid
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.access import admin_rows
from app.models import User

PAGE_SIZE = 100
OUTCOMES = ("ok", "denied", "failed")
# What the app records, for the filter's suggestions; any other action can still be typed in.
KNOWN_ACTIONS = (
    "login", "register", "upload", "delete", "delete_folder", "file.open", "file.read", "file.delete",
    "folder.delete", "scan", "job.read", "chat.read", "chat.delete", "document.removed", "admin.access",
    "admin.read", "admin.audit", "admin.cleanup", "admin.deactivate", "admin.reactivate", "admin.quota",
    "admin.grant", "admin.limits",
)  # fmt: skip


class Event(BaseModel):
    """One audit-log event, with the email of its user when the user still exists."""

    id: int
    created_at: datetime
    user_id: uuid.UUID | None
    email: str | None
    action: str
    target: str | None
    outcome: str
    ip: str | None
    detail: dict


async def find_user(session: AsyncSession, who: str) -> tuple[uuid.UUID | None, str | None]:
    """(user id, email) for a filter typed as an email or an id; an unknown email still matches the
    attempts made on it (failed log-ins are recorded under the email they tried)."""
    who = who.strip()
    try:
        user_id = uuid.UUID(who)
    except ValueError:
        user = await session.scalar(select(User).where(User.email == who.lower()))
        return (user.id, user.email) if user else (None, who.lower())
    email = await session.scalar(select(User.email).where(User.id == user_id))
    return user_id, email


async def events(
    session: AsyncSession,
    admin: User,
    *,
    who: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> list[Event]:
    user_id, email = await find_user(session, who) if who else (None, None)
    rows = await admin_rows(
        session,
        admin,
        "select id, created_at, user_id, action, target, outcome, ip, detail"
        " from admin_audit_log(:user_id, :email, :action, :outcome, :before, :limit)",
        {
            "user_id": user_id,
            "email": email,
            "action": action or None,
            "outcome": outcome or None,
            "before": before,
            "limit": limit,
        },
    )
    ids = {row.user_id for row in rows if row.user_id}
    emails = (
        dict((await session.execute(select(User.id, User.email).where(User.id.in_(ids)))).all())
        if ids
        else {}
    )
    return [Event(**row._mapping, email=emails.get(row.user_id)) for row in rows]
