"""The admin area's pages: users, the audit log and the isolation audit. Non-admins get a 404."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin import audit_log_search, isolation_runs, users
from app.admin import usage as admin_usage
from app.admin.deps import AdminDep
from app.config import Settings
from app.db import SessionDep
from app.deps import SettingsDep
from app.models import IsolationAuditRun, User
from app.templating import is_htmx, templates
from app.usage.service import MONTH, parse_month
from app.web import client_ip

router = APIRouter(prefix="/admin", include_in_schema=False)
MB = 1024 * 1024


@router.get("", name="admin_home")
async def admin_home(admin: AdminDep) -> Response:
    return RedirectResponse("/admin/users", status_code=303)


async def _users_page(
    request: Request,
    session: AsyncSession,
    admin: User,
    settings: Settings,
    *,
    q: str | None,
    page: int,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    found, total = await users.list_users(session, admin, settings, q=q, page=page)
    context = {
        "user": admin,
        "active": "admin",
        "section": "users",
        "users": found,
        "total": total,
        "q": q or "",
        "page": page,
        "pages": max(1, -(-total // users.PAGE_SIZE)),
        "notice": notice,
        "error": error,
    }
    block = "user_table" if is_htmx(request) and request.headers.get("HX-Target") == "user-table" else None
    return templates.TemplateResponse(
        request, "admin/users.html", context, status_code=status, block_name=block
    )


@router.get("/users", name="admin_users")
async def users_page(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    q: str | None = Query(default=None, max_length=200),
    page: int = Query(default=1, ge=1, le=100_000),
) -> Response:
    return await _users_page(request, session, admin, settings, q=q, page=page)


@router.post("/users/{user_id}", name="admin_change_user")
async def change_user(
    user_id: uuid.UUID,
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    change: Annotated[str, Form(pattern="^(deactivate|reactivate|quota|default-quota)$")],
    quota_mb: Annotated[int | None, Form(ge=0, le=10**9)] = None,
    quota_documents: Annotated[int | None, Form(ge=0, le=10**9)] = None,
    q: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    changes: dict[str, dict[str, Any]] = {
        "deactivate": {"is_active": False},
        "reactivate": {"is_active": True},
        "default-quota": {"reset_quotas": True},
        "quota": {
            "quota_bytes": quota_mb * MB if quota_mb is not None else None,
            "quota_documents": quota_documents,
        },
    }
    fields = changes[change]
    try:
        user = await users.update_user(session, admin, user_id, **fields, ip=client_ip(request))
    except users.AdminRefusal as exc:  # shown on the users page, beside what the admin was doing
        return await _users_page(request, session, admin, settings, q=q, page=1, error=str(exc), status=409)
    message = {
        "deactivate": f"{user.email} is deactivated; their sessions end at their next request.",
        "reactivate": f"{user.email} can log in again.",
        "default-quota": f"{user.email} is back on the default quotas.",
        "quota": f"Quotas of {user.email} are saved.",
    }[change]
    return await _users_page(request, session, admin, settings, q=q, page=1, notice=message)


@router.get("/audit-log", name="admin_audit_log")
async def audit_log_page(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    user: str | None = Query(default=None, max_length=320),
    action: str | None = Query(default=None, max_length=64),
    outcome: str | None = Query(default=None, pattern="^(ok|denied|failed)?$"),
    before: int | None = Query(default=None, ge=1),
) -> Response:
    found = await audit_log_search.events(
        session, admin, who=user, action=action, outcome=outcome, before=before
    )
    context = {
        "user": admin,
        "active": "admin",
        "section": "audit-log",
        "events": found,
        "filters": {"user": user or "", "action": action or "", "outcome": outcome or ""},
        "next_before": found[-1].id if len(found) == audit_log_search.PAGE_SIZE else None,
        "actions": audit_log_search.KNOWN_ACTIONS,
        "outcomes": audit_log_search.OUTCOMES,
    }
    return templates.TemplateResponse(request, "admin/audit_log.html", context)


async def _isolation_page(
    request: Request,
    session: AsyncSession,
    admin: User,
    *,
    current: IsolationAuditRun | None = None,
    cleanup: isolation_runs.Cleanup | None = None,
) -> Response:
    runs = await isolation_runs.history(session)
    current = current or (runs[0] if runs else None)
    context = {
        "user": admin,
        "active": "admin",
        "section": "isolation",
        "run": current,
        "checks": isolation_runs.results_of(current) if current else [],
        "orphans": len(isolation_runs.storage_orphans(current)) if current else 0,
        "runs": runs,
        "cleanup": cleanup,
    }
    return templates.TemplateResponse(request, "admin/isolation.html", context)


@router.get("/isolation", name="admin_isolation")
async def isolation_page(
    request: Request, admin: AdminDep, session: SessionDep, run: int | None = Query(default=None, ge=1)
) -> Response:
    current = await isolation_runs.get_run(session, run) if run else None
    return await _isolation_page(request, session, admin, current=current)


@router.post("/isolation", name="admin_run_isolation_audit")
async def run_isolation_audit(
    request: Request, admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> Response:
    run = await isolation_runs.run_and_record(
        request.app.state.engine,
        request.app.state.storage,
        app_role=settings.app_db_role,
        admin=admin,
        via="page",
    )
    return await _isolation_page(request, session, admin, current=run)


@router.post("/isolation/runs/{run_id}/cleanup", name="admin_clean_up_orphans")
async def clean_up_orphans(run_id: int, request: Request, admin: AdminDep, session: SessionDep) -> Response:
    run, done = await isolation_runs.clean_up_run(
        request.app.state.engine, request.app.state.storage, session, run_id, admin=admin, via="page"
    )
    return await _isolation_page(request, session, admin, current=run, cleanup=done)


async def _usage_page(
    request: Request,
    session: AsyncSession,
    admin: User,
    settings: Settings,
    *,
    month: str | None,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    report = await admin_usage.usage_report(session, admin, settings, month=parse_month(month))
    context = {
        "user": admin,
        "active": "admin",
        "section": "usage",
        "report": report,
        "notice": notice,
        "error": error,
    }
    return templates.TemplateResponse(request, "admin/usage.html", context, status_code=409 if error else 200)


@router.get("/usage", name="admin_usage")
async def usage_page(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    month: str | None = Query(default=None, pattern=MONTH),
) -> Response:
    return await _usage_page(request, session, admin, settings, month=month)


@router.post("/usage/{user_id}", name="admin_change_limits")
async def change_limits(
    user_id: uuid.UUID,
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    change: Annotated[str, Form(pattern="^(limits|default-limits)$")],
    question_limit: Annotated[int | None, Form(ge=0, le=10**9)] = None,
    llm_token_limit: Annotated[int | None, Form(ge=0, le=10**15)] = None,
    month: Annotated[str | None, Form(pattern=MONTH)] = None,
) -> Response:
    """A user's own monthly limits, or back to the deployment's."""
    fields: dict[str, Any] = (
        {"reset_limits": True}
        if change == "default-limits"
        else {"question_limit": question_limit, "llm_token_limit": llm_token_limit}
    )
    user = await users.update_user(session, admin, user_id, **fields, ip=client_ip(request))
    notice = (
        f"{user.email} is back on the default limits."
        if change == "default-limits"
        else f"Monthly limits of {user.email} are saved."
    )
    return await _usage_page(request, session, admin, settings, month=month, notice=notice)
