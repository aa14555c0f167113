"""Every user's usage of a month and its estimated cost: counts only, read on the logged admin path."""

import uuid
from datetime import date

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.access import admin_rows
from app.config import Settings
from app.models import User
from app.models.user import user_columns
from app.usage.service import Usage, cost_of, limits_of, prices


class UsageRow(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
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
    cost: dict[str, float]


class UsageTotals(BaseModel):
    questions: int
    llm_tokens_in: int
    llm_tokens_out: int
    embedding_tokens: int
    documents_ingested: int
    pages_ingested: int
    storage_bytes: int
    documents: int
    passages: int


class UsageReport(BaseModel):
    month: str
    prices: dict[str, float]
    users: list[UsageRow]
    totals: UsageTotals
    active_users: int
    cost: dict[str, float]


def _active(usage: Usage) -> bool:
    """Active in a month: asked a question or had a document ingested."""
    return bool(usage.questions or usage.documents_ingested)


async def usage_report(session: AsyncSession, admin: User, settings: Settings, *, month: date) -> UsageReport:
    """Per-user rows (costliest first) and totals, with the month's estimated cost: the plan's cost
    table — storage, LLM tokens in and out, embeddings, a fixed hosting line — from real counts."""
    rows = await admin_rows(
        session,
        admin,
        "select user_id, questions, llm_tokens_in, llm_tokens_out, embedding_tokens, documents_ingested,"
        " pages_ingested, storage_bytes, documents, passages from admin_usage(:month)",
        {"month": month},
    )
    usage = {row.user_id: Usage.of(row) for row in rows}
    people = {u.id: u for u in (await session.scalars(select(User).where(user_columns.id.in_(usage)))).all()}
    found, totals = [], Usage()
    for user_id, used in usage.items():
        user = people.get(user_id)
        if user is None:  # deleted since the function read it
            continue
        limits = limits_of(user, settings)
        totals += used
        found.append(
            UsageRow(
                user_id=user_id,
                email=user.email,
                name=user.name,
                **vars(used),
                question_limit=limits.questions,
                llm_token_limit=limits.llm_tokens,
                cost=cost_of(used, settings).as_dict(),
            )
        )
    found.sort(key=lambda row: (-row.cost["total"], -row.questions, row.email))
    active = sum(_active(usage[row.user_id]) for row in found)
    variable = cost_of(totals, settings)
    total = variable.total + settings.hosting_per_month
    cost = {
        **variable.as_dict(),
        "hosting": settings.hosting_per_month,
        "total": round(total, 4),
        "per_active_user": round(total / active, 4) if active else 0.0,
    }
    return UsageReport(
        month=month.strftime("%Y-%m"),
        prices=prices(settings),
        users=found,
        totals=UsageTotals(**vars(totals)),
        active_users=active,
        cost=cost,
    )
