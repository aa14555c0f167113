"""Users as admins see them: account metadata and usage counts, never the contents of a library."""

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit_log
from app.admin.access import admin_rows
from app.config import Settings
from app.exceptions import Conflict, NotFound
from app.library.service import quotas_of
from app.models import User

PAGE_SIZE = 50


class UserSummary(BaseModel):
    """A user as the admin area shows them (page and API alike)."""

    id: uuid.UUID
    email: str
    name: str
    is_active: bool
    is_superuser: bool
    created_at: datetime
    last_active_at: datetime | None
    documents: int
    bytes_used: int
    chunks: int
    quota_bytes: int
    quota_documents: int
    custom_quota: bool


def _summary(user: User, usage: tuple[int, int, int], settings: Settings) -> UserSummary:
    documents, bytes_used, chunks = usage
    quota_documents, quota_bytes = quotas_of(user, settings)
    return UserSummary(
        id=user.id,
        email=user.email,
        name=user.name,
        is_active=user.is_active,
        is_superuser=user.is_superuser,
        created_at=user.created_at,
        last_active_at=user.last_active_at,
        documents=documents,
        bytes_used=bytes_used,
        chunks=chunks,
        quota_bytes=quota_bytes,
        quota_documents=quota_documents,
        custom_quota=user.quota_bytes is not None or user.quota_documents is not None,
    )


async def list_users(
    session: AsyncSession, admin: User, settings: Settings, *, q: str | None = None, page: int = 1
) -> tuple[list[UserSummary], int]:
    """One page of users (newest first), matching `q` in email or name; and how many match in all."""
    statement = select(User)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(or_(User.email.ilike(pattern), User.name.ilike(pattern)))
    total = await session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    users = (
        await session.scalars(
            statement.order_by(User.created_at.desc(), User.id)
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE)
        )
    ).all()
    usage = {
        user_id: (documents, bytes_used, chunks)
        for user_id, documents, bytes_used, chunks in await admin_rows(
            session, admin, "select user_id, documents, bytes, chunks from admin_user_usage()"
        )
    }
    return [_summary(user, usage.get(user.id, (0, 0, 0)), settings) for user in users], total


class AdminRefusal(Conflict):
    """An admin action that would do harm, with the reason to show."""


class UserNotFound(NotFound):
    default_message = "No such user."


async def update_user(
    session: AsyncSession,
    admin: User,
    user_id: uuid.UUID,
    *,
    is_active: bool | None = None,
    quota_bytes: int | None = None,
    quota_documents: int | None = None,
    reset_quotas: bool = False,
    question_limit: int | None = None,
    llm_token_limit: int | None = None,
    reset_limits: bool = False,
    ip: str | None = None,
) -> User:
    """Activate/deactivate, set quotas and monthly limits; every change is in the audit log."""
    user = await session.get(User, user_id, with_for_update=True)
    if user is None:
        raise UserNotFound()
    changes: dict = {}
    if is_active is not None and is_active != user.is_active:
        if user.id == admin.id and not is_active:
            raise AdminRefusal("You cannot deactivate your own account.")
        user.is_active = is_active
        if not is_active:  # every token issued until now stays dead, even after a reactivation
            user.sessions_valid_after = datetime.now(UTC)
        changes["is_active"] = is_active
    if reset_quotas and (user.quota_bytes is not None or user.quota_documents is not None):
        user.quota_bytes = user.quota_documents = None
        changes["quotas"] = "default"
    if quota_bytes is not None and quota_bytes != user.quota_bytes:
        user.quota_bytes = quota_bytes
        changes["quota_bytes"] = quota_bytes
    if quota_documents is not None and quota_documents != user.quota_documents:
        user.quota_documents = quota_documents
        changes["quota_documents"] = quota_documents
    if reset_limits and (user.question_limit is not None or user.llm_token_limit is not None):
        user.question_limit = user.llm_token_limit = None
        changes["limits"] = "default"
    if question_limit is not None and question_limit != user.question_limit:
        user.question_limit = question_limit
        changes["question_limit"] = question_limit
    if llm_token_limit is not None and llm_token_limit != user.llm_token_limit:
        user.llm_token_limit = llm_token_limit
        changes["llm_token_limit"] = llm_token_limit
    if changes:
        if "is_active" in changes:
            action = "admin.reactivate" if is_active else "admin.deactivate"
        elif changes.keys() & {"limits", "question_limit", "llm_token_limit"}:
            action = "admin.limits"
        else:
            action = "admin.quota"
        await audit_log.record(
            session,
            action=action,
            user_id=admin.id,
            target=user.email,
            ip=ip,
            detail={"user": str(user.id), **changes},
        )
    return user
