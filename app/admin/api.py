"""The admin JSON API under /api/admin: users, the audit log, and the isolation audit."""

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from app.admin import audit_log_search, isolation_runs, users
from app.admin import usage as admin_usage
from app.admin.deps import AdminDep
from app.api_errors import errors
from app.db import SessionDep
from app.deps import SettingsDep
from app.models import IsolationAuditRun
from app.usage.service import MONTH, parse_month
from app.web import client_ip

# Everyone but an active admin gets 404 on every route here.
router = APIRouter(prefix="/api/admin", tags=["admin"], responses=errors(400, 404, 409, 413))


class UserPage(BaseModel):
    users: list[users.UserSummary]
    total: int
    page: int
    page_size: int


class UserChange(BaseModel):
    is_active: bool | None = None
    quota_bytes: int | None = Field(default=None, ge=0, le=10**15)
    quota_documents: int | None = Field(default=None, ge=0, le=10**9)
    reset_quotas: bool = Field(default=False, description="Back to the deployment's default quotas.")
    question_limit: int | None = Field(default=None, ge=0, le=10**9, description="Questions a month.")
    llm_token_limit: int | None = Field(default=None, ge=0, le=10**15, description="LLM tokens a month.")
    reset_limits: bool = Field(default=False, description="Back to the deployment's monthly limits.")


class EventPage(BaseModel):
    events: list[audit_log_search.Event]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class CheckOut(BaseModel):
    name: str
    passed: bool
    offenders: list[str]


class AuditRunOut(BaseModel):
    id: int
    started_at: datetime
    duration_ms: int
    run_by: uuid.UUID | None
    via: str
    passed: bool
    checks: list[CheckOut]


class CleanupOut(BaseModel):
    deleted_objects: list[str]
    forgotten_documents: list[str]


def run_out(run: IsolationAuditRun) -> AuditRunOut:
    checks = [CheckOut(**vars(result)) for result in isolation_runs.results_of(run)]
    return AuditRunOut(
        id=run.id,
        started_at=run.started_at,
        duration_ms=run.duration_ms,
        run_by=run.run_by,
        via=run.via,
        passed=run.passed,
        checks=checks,
    )


@router.get("/users")
async def list_users(
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    q: str | None = Query(default=None, max_length=200, description="Part of an email or name."),
    page: int = Query(default=1, ge=1, le=100_000),
) -> UserPage:
    found, total = await users.list_users(session, admin, settings, q=q, page=page)
    return UserPage(users=found, total=total, page=page, page_size=users.PAGE_SIZE)


@router.patch("/users/{user_id}")
async def change_user(
    user_id: uuid.UUID, change: UserChange, request: Request, admin: AdminDep, session: SessionDep
) -> dict[str, Any]:
    """Deactivate or reactivate (a deactivated user's tokens stop working at their next request) and set
    quotas. The change is in the audit log under the admin's name."""
    user = await users.update_user(session, admin, user_id, **change.model_dump(), ip=client_ip(request))
    return {
        "id": str(user.id),
        "is_active": user.is_active,
        "quota_bytes": user.quota_bytes,
        "quota_documents": user.quota_documents,
        "question_limit": user.question_limit,
        "llm_token_limit": user.llm_token_limit,
    }


@router.get("/usage")
async def usage_report(
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    month: str | None = Query(default=None, pattern=MONTH, description="YYYY-MM; this month if left out."),
) -> admin_usage.UsageReport:
    """Every user's usage of the month (counts, never content) and its estimated cost from the prices
    in settings, with totals, a fixed hosting line and the cost per active user."""
    return await admin_usage.usage_report(session, admin, settings, month=parse_month(month))


@router.get("/audit-log")
async def read_audit_log(
    admin: AdminDep,
    session: SessionDep,
    user: str | None = Query(default=None, max_length=320, description="An email or a user id."),
    action: str | None = Query(default=None, max_length=64),
    outcome: str | None = Query(default=None, pattern="^(ok|denied|failed)$"),
    before: int | None = Query(default=None, ge=1),
    limit: int = Query(default=audit_log_search.PAGE_SIZE, ge=1, le=500),
) -> EventPage:
    found = await audit_log_search.events(
        session, admin, who=user, action=action, outcome=outcome, before=before, limit=limit
    )
    return EventPage(
        events=found,
        next_before=found[-1].id if len(found) == limit else None,
    )


@router.post("/audit")
async def run_isolation_audit(request: Request, admin: AdminDep, settings: SettingsDep) -> AuditRunOut:
    """Run the tenant-isolation audit now; the run is kept in the history. A POST: running it records
    a run and reads the whole store, which no link, prefetch or crawler may set off."""
    run = await isolation_runs.run_and_record(
        request.app.state.engine,
        request.app.state.storage,
        app_role=settings.app_db_role,
        admin=admin,
        via="api",
    )
    return run_out(run)


@router.get("/audit/runs")
async def audit_history(admin: AdminDep, session: SessionDep) -> list[AuditRunOut]:
    return [run_out(run) for run in await isolation_runs.history(session)]


@router.post("/audit/runs/{run_id}/cleanup")
async def clean_up_orphans(run_id: int, request: Request, admin: AdminDep, session: SessionDep) -> CleanupOut:
    """Remove the storage orphans that run `run_id` listed and that are orphans still."""
    run, done = await isolation_runs.clean_up_run(
        request.app.state.engine, request.app.state.storage, session, run_id, admin=admin, via="api"
    )
    return CleanupOut(deleted_objects=done.deleted_objects, forgotten_documents=done.forgotten_documents)
