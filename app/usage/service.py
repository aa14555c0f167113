"""Usage per user per calendar month (UTC), what it would cost, and the monthly limits it feeds.

Counters (questions, LLM tokens in and out, embedding tokens, documents and pages ingested) are added
in the transaction that does the work: the exchange saved after an answer, the passages written by an
ingestion job. What a user holds (storage bytes, documents, passages) is noted at each upload and
ingestion as the most held that month. Every read and write is the tenant's own, under row-level
security; admins read everyone's counts through `admin_usage()` (app/admin/usage.py).
"""

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import metrics
from app.config import Settings
from app.exceptions import LimitReached
from app.models import Document, UsageMonth, User
from app.tenancy import Tenant, owned

HELD = ("storage_bytes", "documents", "passages")
GIB = 1024**3
MILLION = 1_000_000


def this_month() -> date:
    return datetime.now(UTC).date().replace(day=1)


MONTH = "^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$"  # YYYY-MM, years 1900-2999: what the routes accept


def parse_month(text: str | None) -> date:
    """`YYYY-MM` (already checked by the route's pattern) as the month's first day; None: this month."""
    if not text:
        return this_month()
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


async def record(session: AsyncSession, tenant: Tenant, *, held: bool = False, **counts: int) -> None:
    """Add `counts` to the tenant's row of this month (made if missing); with `held`, also note what the
    tenant holds now, where it is more than the month's most so far. One statement, safe under
    concurrency; it commits with the caller's transaction."""
    values: dict = {"user_id": tenant.user_id, "month": this_month(), **counts}
    if held:
        totals = owned(
            select(
                func.count(Document.id),
                func.coalesce(func.sum(Document.size_bytes), 0),
                func.coalesce(func.sum(Document.chunk_count), 0),
            ),
            Document,
            tenant,
        )
        values["documents"], values["storage_bytes"], values["passages"] = (
            await session.execute(totals)
        ).one()
    statement = insert(UsageMonth).values(**values)
    changes: dict = {name: getattr(UsageMonth, name) + statement.excluded[name] for name in counts}
    if held:
        changes |= {name: func.greatest(getattr(UsageMonth, name), statement.excluded[name]) for name in HELD}
    changes["updated_at"] = func.now()
    await session.execute(statement.on_conflict_do_update(index_elements=["user_id", "month"], set_=changes))


@dataclass
class Usage:
    """One user's month, as their account page, the usage API and the admin's table show it."""

    questions: int = 0
    llm_tokens_in: int = 0
    llm_tokens_out: int = 0
    embedding_tokens: int = 0
    documents_ingested: int = 0
    pages_ingested: int = 0
    storage_bytes: int = 0
    documents: int = 0
    passages: int = 0

    @classmethod
    def of(cls, row) -> "Usage":
        return cls(**{f.name: int(getattr(row, f.name) or 0) for f in fields(cls)})

    @property
    def llm_tokens(self) -> int:
        return self.llm_tokens_in + self.llm_tokens_out

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


async def usage_of(session: AsyncSession, tenant: Tenant, month: date) -> Usage:
    """The tenant's usage in `month`. What they held: for this month at least what they hold now; for
    a month with no row, what their last earlier month recorded."""
    row = await session.scalar(owned(select(UsageMonth), UsageMonth, tenant).where(UsageMonth.month == month))
    usage = Usage.of(row) if row else Usage()
    if month == this_month():
        documents, size, passages = (
            await session.execute(
                owned(
                    select(
                        func.count(Document.id),
                        func.coalesce(func.sum(Document.size_bytes), 0),
                        func.coalesce(func.sum(Document.chunk_count), 0),
                    ),
                    Document,
                    tenant,
                )
            )
        ).one()
        usage.documents = max(usage.documents, documents)
        usage.storage_bytes = max(usage.storage_bytes, size)
        usage.passages = max(usage.passages, passages)
    elif row is None:
        earlier = await session.scalar(
            owned(select(UsageMonth), UsageMonth, tenant)
            .where(UsageMonth.month < month)
            .order_by(UsageMonth.month.desc())
            .limit(1)
        )
        if earlier is not None:
            usage.storage_bytes, usage.documents, usage.passages = (
                earlier.storage_bytes,
                earlier.documents,
                earlier.passages,
            )
    return usage


async def months_of(session: AsyncSession, tenant: Tenant, *, limit: int = 12) -> list[tuple[date, Usage]]:
    """The tenant's recorded months, newest first (this month always among them)."""
    rows = (
        await session.scalars(
            owned(select(UsageMonth), UsageMonth, tenant).order_by(UsageMonth.month.desc()).limit(limit)
        )
    ).all()
    found = [(row.month, Usage.of(row)) for row in rows]
    if not found or found[0][0] != this_month():
        found.insert(0, (this_month(), Usage()))
    found[0] = (found[0][0], await usage_of(session, tenant, found[0][0]))
    return found[:limit]


# --- What it costs -----------------------------------------------------------------------------------


@dataclass
class Cost:
    storage: float = 0.0
    llm_input: float = 0.0
    llm_output: float = 0.0
    embeddings: float = 0.0

    @property
    def total(self) -> float:
        return self.storage + self.llm_input + self.llm_output + self.embeddings

    def as_dict(self) -> dict:
        return {**{k: round(v, 4) for k, v in asdict(self).items()}, "total": round(self.total, 4)}


def cost_of(usage: Usage, settings: Settings) -> Cost:
    """The month's estimated cost from the prices in settings (storage at what was held most)."""
    return Cost(
        storage=usage.storage_bytes / GIB * settings.price_storage_gb_month,
        llm_input=usage.llm_tokens_in / MILLION * settings.price_llm_input_per_million,
        llm_output=usage.llm_tokens_out / MILLION * settings.price_llm_output_per_million,
        embeddings=usage.embedding_tokens / MILLION * settings.price_embedding_per_million,
    )


def prices(settings: Settings) -> dict:
    return {
        "storage_gb_month": settings.price_storage_gb_month,
        "llm_input_per_million": settings.price_llm_input_per_million,
        "llm_output_per_million": settings.price_llm_output_per_million,
        "embedding_per_million": settings.price_embedding_per_million,
        "hosting_per_month": settings.hosting_per_month,
    }


# --- Monthly limits ----------------------------------------------------------------------------------


@dataclass
class Limits:
    questions: int | None
    llm_tokens: int | None


def limits_of(user: User, settings: Settings) -> Limits:
    """The user's own limits where an admin set them, else the deployment's (None: no limit)."""
    return Limits(
        questions=user.question_limit if user.question_limit is not None else settings.monthly_question_limit,
        llm_tokens=user.llm_token_limit
        if user.llm_token_limit is not None
        else settings.monthly_llm_token_limit,
    )


class UsageLimitReached(LimitReached):
    """A monthly limit is used up; the message says which, and when it starts again."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


async def ensure_within_limits(session: AsyncSession, tenant: Tenant, settings: Settings) -> None:
    """Refuse a question once the month's question limit is used up, or — when answers are generated —
    its LLM token limit (checked before each question, so the last answer may pass it a little)."""
    user = await session.get(User, tenant.user_id)
    limits = limits_of(user, settings)
    tokens_apply = limits.llm_tokens is not None and settings.openai_api_key is not None
    if limits.questions is None and not tokens_apply:
        return
    month = this_month()
    row = await session.scalar(owned(select(UsageMonth), UsageMonth, tenant).where(UsageMonth.month == month))
    usage = Usage.of(row) if row else Usage()
    again = next_month(month).strftime("%-d %B %Y")
    if limits.questions is not None and usage.questions >= limits.questions:
        metrics.USAGE_LIMIT_REFUSALS.labels("questions").inc()
        raise UsageLimitReached(
            "questions",
            f"You have asked {usage.questions} of your {limits.questions} questions this month. "
            f"You can ask again from {again}.",
        )
    if tokens_apply and usage.llm_tokens >= limits.llm_tokens:
        metrics.USAGE_LIMIT_REFUSALS.labels("llm_tokens").inc()
        raise UsageLimitReached(
            "llm_tokens",
            f"Your answers this month have used {usage.llm_tokens:,} of your {limits.llm_tokens:,} "
            f"language-model tokens. You can ask again from {again}.",
        )
