"""A user's own usage: `GET /api/usage` (JSON) and the account page (`/account`)."""

from datetime import date

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from app.api_errors import COMMON
from app.deps import CurrentUser, SessionDep, SettingsDep, TenantDep
from app.templating import templates
from app.usage.service import MONTH, Limits, Usage, limits_of, months_of, next_month, parse_month, usage_of

router = APIRouter(tags=["usage"], responses=COMMON)


class UsageOut(BaseModel):
    month: str
    questions: int
    llm_tokens_in: int
    llm_tokens_out: int
    embedding_tokens: int
    documents_ingested: int
    pages_ingested: int
    storage_bytes: int
    documents: int
    passages: int
    question_limit: int | None
    llm_token_limit: int | None


def _out(month: date, usage: Usage, limits: Limits) -> UsageOut:
    return UsageOut(
        month=month.strftime("%Y-%m"),
        **vars(usage),
        question_limit=limits.questions,
        llm_token_limit=limits.llm_tokens,
    )


@router.get("/api/usage")
async def my_usage(
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    month: str | None = Query(default=None, pattern=MONTH, description="YYYY-MM; this month if left out."),
) -> UsageOut:
    """Your usage of a month (questions, tokens, ingestion, what you held) and your monthly limits."""
    chosen = parse_month(month)
    return _out(chosen, await usage_of(session, tenant, chosen), limits_of(user, settings))


@router.get("/account", name="account_page", include_in_schema=False)
async def account_page(
    request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    months = await months_of(session, tenant)
    this_month, current = months[0]
    context = {
        "user": user,
        "active": "account",
        "month": this_month,
        "resets": next_month(this_month),
        "usage": current,
        "limits": limits_of(user, settings),
        "history": months[1:],
    }
    return templates.TemplateResponse(request, "usage/account.html", context)
