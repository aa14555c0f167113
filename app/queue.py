"""The ingestion queue, fairly between students: the library puts documents on it, the worker takes
them off. Neither owns it, so neither imports the other for it.

The job id is the document's, so a document is queued once. arq serves its queue in score order, and a
job's score is normally the time it was queued: one student's 50 books would hold back everyone who
uploads after them. So the score is a rank instead: a student's k-th waiting file gets rank k, and the
queue serves every student's first waiting file before anyone's second, then by the time each was
queued — per-tenant queues served round-robin, with nothing to keep in step. A student's single upload
waits for the jobs already running and for other students' first files, never for another's backlog.

Ranks are scores far in the past, so a ranked job is due at once; a retried job (arq moves it to now +
its backoff) goes behind every ranked one.
"""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Document
from app.models.document import DocumentStatus
from app.tenancy import Tenant, owned

# Scores in milliseconds since 1970: rank k is k × RANK_STRIDE after FLOOR; inside a rank, the second
# the job was queued orders it (so the stride must exceed any Unix time in seconds). Every score stays
# below zero, i.e. in the past, for ranks up to MAX_RANK.
FLOOR_MS = -60_000_000_000_000  # about the year 68
RANK_STRIDE_MS = 10_000_000_000
MAX_RANK = 5_000
QUEUED_JOB_LIFETIME = timedelta(days=7)  # a job not started by then expires; the reconciler requeues it


def job_id(document_id: uuid.UUID | str) -> str:
    return f"ingest:{document_id}"


def fair_due_time(files_ahead: int, now: datetime | None = None) -> datetime:
    """The arq due time that encodes a file's rank among its owner's waiting files (see above)."""
    now = now or datetime.now(UTC)
    score_ms = FLOOR_MS + min(files_ahead, MAX_RANK) * RANK_STRIDE_MS + int(now.timestamp())
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=score_ms)


def queued_at(score_ms: float) -> float:
    """When a job with this arq score was queued, in Unix seconds: a ranked job keeps the second it was
    queued inside its rank; a retried job's score is its due time, the closest there is."""
    if score_ms < 0:
        return (score_ms - FLOOR_MS) % RANK_STRIDE_MS
    return score_ms / 1000


async def enqueue_ingest(queue, document_id: uuid.UUID, user_id: uuid.UUID, *, files_ahead: int = 0) -> bool:
    """Queue `ingest_document` behind the owner's `files_ahead` waiting files; False when that document's
    job is already queued or running."""
    job = await queue.enqueue_job(
        "ingest_document",
        str(document_id),
        str(user_id),
        _job_id=job_id(document_id),
        _defer_until=fair_due_time(files_ahead),
        _expires=QUEUED_JOB_LIFETIME,
    )
    return job is not None


async def queue_positions(session: AsyncSession, tenant: Tenant) -> dict[uuid.UUID, int]:
    """For each of the tenant's queued documents, how many of the tenant's queued files are ahead of it
    (the order their jobs were ranked in: by upload time)."""
    statement = (
        owned(select(Document.id), Document, tenant)
        .where(Document.status == DocumentStatus.QUEUED)
        .order_by(Document.created_at, Document.id)
    )
    return {document_id: ahead for ahead, document_id in enumerate((await session.scalars(statement)).all())}
