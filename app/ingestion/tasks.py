"""The ingestion job: fetch → parse (child process) → chunk → embed → replace the chunks, with progress.

Postgres holds the truth about a document's status; Redis only carries the work. The job is
idempotent: it takes a row lock on the document before replacing its chunks, so two runs of the same
job (arq may run one twice) leave exactly one set.
"""

import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arq import Retry
from arq.constants import in_progress_key_prefix
from botocore.exceptions import BotoCoreError
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from app import metrics
from app.config import Settings
from app.ingestion.chapters import chapters_for, outline_paths
from app.ingestion.chunking import Cut, chunk_pages
from app.ingestion.embeddings import counted
from app.ingestion.parse_pdf import NO_TEXT
from app.ingestion.parsing import FileRefused, Parsed, extract_pages
from app.library import formats
from app.library.storage import ObjectMissing
from app.models import Chunk, Document, DocumentTerm
from app.models.document import DocumentStatus
from app.models.document_term import term_counts_sql
from app.queue import enqueue_ingest, job_id
from app.tenancy import Tenant, bind_tenant
from app.usage import service as usage

log = logging.getLogger(__name__)

# arq's job context: its own keys (redis, job_try) and what the worker's startup put there (settings,
# sessionmaker, storage, embedder, embed_lock).
JobContext = dict[str, Any]

EMBED_BATCH = 32
PROGRESS_EVERY_SECONDS = 0.5
GENERIC_FAILURE = (
    "Something went wrong while reading this file; it has been logged. Use Scan library to retry."
)
RETRY_LATER = "This file could not be processed right now; use Scan library to retry."
KEEPS_FAILING = (
    "Reading this file stopped the reader several times; it may be damaged or unusually complex. "
    "Use Scan library to try once more."
)
RETRYABLE_FAILURES = (
    GENERIC_FAILURE,
    RETRY_LATER,
    KEEPS_FAILING,
)  # Scan library tries these again; the rest are final
# Passing faults of the database or the store: retried with backoff. Anything else about a file is final.
TRANSIENT = (OperationalError, InterfaceError, OSError, BotoCoreError)


class _Progress:
    """Writes status, pages_done and a heartbeat, at most twice a second (and always at a change)."""

    def __init__(self, ctx: JobContext, tenant: Tenant, document_id: uuid.UUID) -> None:
        self.ctx, self.tenant, self.document_id = ctx, tenant, document_id
        self.last = 0.0
        self.status: str | None = None

    async def set(self, *, force: bool = False, **values: Any) -> None:
        now = time.monotonic()
        changed = values.get("status") not in (None, self.status)
        if not (force or changed or now - self.last >= PROGRESS_EVERY_SECONDS):
            return
        self.last = now
        self.status = values.get("status", self.status)
        async with self.ctx["sessionmaker"]() as session, session.begin():
            await bind_tenant(session, self.tenant)
            await session.execute(
                update(Document)
                .where(Document.id == self.document_id)
                .values(heartbeat_at=text("now()"), updated_at=text("now()"), **values)
            )

    async def beat(self) -> None:
        async with self.ctx["sessionmaker"]() as session, session.begin():
            await bind_tenant(session, self.tenant)
            await session.execute(
                update(Document).where(Document.id == self.document_id).values(heartbeat_at=text("now()"))
            )


@asynccontextmanager
async def _heartbeat(progress: _Progress, every: float) -> AsyncIterator[None]:
    """A sign of life every `every` seconds while the job runs — also through a long page or a long
    embedding batch — so the reconciler never takes a live job for dead, and takes a dead one (a
    worker killed mid-job) in INGEST_STALE_SECONDS instead of minutes."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await progress.beat()
            except Exception as exc:  # a missed beat is retried at the next one
                log.warning("heartbeat of %s failed: %r", progress.document_id, exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def _load(ctx: JobContext, tenant: Tenant, document_id: uuid.UUID) -> Document | None:
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    async with sessionmaker() as session:
        await bind_tenant(session, tenant)
        return await session.get(Document, document_id, options=[undefer(Document.chapters)])


# How many of the document's passages hold each lexeme, for the refusal's term weights.
_COUNT_TERMS = text(term_counts_sql("c.document_id = :document_id"))


async def _replace_chunks(
    ctx: JobContext,
    tenant: Tenant,
    document_id: uuid.UUID,
    passages: list[Cut],
    vectors: list[list[float]],
    *,
    parsed: Parsed,
    fmt: formats.Format,
    embedding_tokens: int = 0,
) -> bool:
    """One transaction: lock the document, drop its chunks, write the new set and its term counts, mark
    it ready with its units' text and its chapters, and add the work to its owner's usage of the month.
    `fmt`: the document's format (slides, sections and chapters have titles that citations name)."""
    pages = len(parsed.pages)
    async with ctx["sessionmaker"]() as session, session.begin():
        await bind_tenant(session, tenant)
        locked = await session.scalar(select(Document.id).where(Document.id == document_id).with_for_update())
        if locked is None:
            return False  # deleted while we worked
        await session.execute(delete(Chunk).where(Chunk.document_id == document_id))
        rows = [
            {
                "user_id": tenant.user_id,
                "document_id": document_id,
                "ordinal": passage.ordinal,
                "page_start": passage.page_start,
                "page_end": passage.page_end,
                "text": passage.text,
                "page_breaks": list(passage.page_breaks),
                "sections": [
                    parsed.titles.get(n, "") for n in range(passage.page_start, passage.page_end + 1)
                ]
                if fmt is not formats.PDF
                else [],
                "embedding": vector,
            }
            for passage, vector in zip(passages, vectors, strict=True)
        ]
        for start in range(0, len(rows), 500):
            await session.execute(insert(Chunk), rows[start : start + 500])
        await session.execute(delete(DocumentTerm).where(DocumentTerm.document_id == document_id))
        await session.execute(_COUNT_TERMS, {"document_id": document_id})
        await session.execute(
            update(Document)
            .where(Document.id == document_id)
            .values(
                status=DocumentStatus.READY,
                attempts=0,
                page_count=pages,
                pages_done=pages,
                chunk_count=len(rows),
                **_contents(parsed, fmt),
                embedding_model=ctx["vector_space"],
                error=None,
                heartbeat_at=text("now()"),
                updated_at=text("now()"),
            )
        )
        await usage.record(
            session,
            tenant,
            held=True,
            documents_ingested=1,
            pages_ingested=pages,
            embedding_tokens=embedding_tokens,
        )
    return True


def _contents(parsed: Parsed, fmt: formats.Format) -> dict[str, Any]:
    """The `units` (each unit's title and text: the viewer's and the study aids') and `chapters` of a
    parsed document, as stored on it."""
    chapters = chapters_for(fmt.name, parsed.pages, parsed.outline, parsed.titles)
    return {
        "units": [{"title": parsed.titles.get(n, ""), "text": body} for n, body in parsed.pages],
        "chapters": [asdict(chapter) for chapter in chapters],  # read back by library.service.chapters_of
    }


async def _within_passage_caps(
    ctx: JobContext,
    settings: Settings,
    tenant: Tenant,
    document_id: uuid.UUID,
    count: int,
    *,
    noun: str = "PDF",
) -> None:
    """Refuse a file whose passages pass the per-file cap, or would take its owner's library past the
    per-library cap (the byte quota counts only the PDF, not what it unpacks to)."""
    if count > settings.max_document_passages:
        raise FileRefused(
            "too_many_passages",
            f"This {noun} makes {count:,} passages; the limit is {settings.max_document_passages:,} a file. "
            "Split it, or upload the part you study.",
        )
    async with ctx["sessionmaker"]() as session:
        await bind_tenant(session, tenant)
        held = await session.scalar(
            select(func.coalesce(func.sum(Document.chunk_count), 0)).where(
                Document.user_id == tenant.user_id, Document.id != document_id
            )
        )
    if held + count > settings.max_tenant_passages:
        raise FileRefused(
            "library_full",
            f"Your library holds {held:,} passages and this {noun} would add {count:,}; the limit is "
            f"{settings.max_tenant_passages:,}. Delete books you no longer need to make room.",
        )


def embedded_texts(
    passages: list[Cut], parsed: Parsed, fmt: formats.Format, *, book: str | None
) -> list[str]:
    """What is embedded for each passage: its text after a header naming where it sits in the outline
    ("Truth tables > Complete truth tables"), after its book's name when one is given ("forallx: ...").
    The stored text has no header."""
    chapters = chapters_for(fmt.name, parsed.pages, parsed.outline, parsed.titles)
    page_count = max((number for number, _ in parsed.pages), default=0)
    paths = outline_paths(parsed.outline, chapters, page_count)
    texts = []
    for passage in passages:
        where = paths.get(passage.page_start) or parsed.titles.get(passage.page_start, "")
        header = ": ".join(part for part in (book, where) if part)
        texts.append(f"{header}\n\n{passage.text}" if header else passage.text)
    return texts


async def _embed(
    ctx: JobContext, passages: list[Cut], texts: list[str], progress: _Progress, page_count: int
) -> tuple[list[list[float]], int]:
    """The passages' vectors (of `texts`, one for each), and the tokens an embeddings endpoint billed
    for them (0 when local)."""
    embedder = ctx["embedder"]
    vectors: list[list[float]] = []
    tokens = 0
    for start in range(0, len(passages), EMBED_BATCH):
        batch = passages[start : start + EMBED_BATCH]
        async with ctx["embed_lock"]:  # one embedding batch at a time per worker: the CPU is the limit
            made, billed = await asyncio.to_thread(
                counted, embedder, embedder.embed_documents, texts[start : start + EMBED_BATCH]
            )
        vectors.extend(made)
        tokens += billed
        await progress.set(pages_done=min(batch[-1].page_end, page_count))
    return vectors, tokens


@dataclass
class JobReport:
    """What one ingestion job did, for its log line and the metrics."""

    timings: dict[str, float] = field(default_factory=dict)
    pages: int = 0
    ocr_pages: int = 0  # of them, read by OCR
    passages: int = 0
    format: str = ""
    reason: str | None = None  # why it failed: the refusal's kind, or ours (error, retry_later, ...)


async def ingest_document(ctx: JobContext, document_id: str, user_id: str) -> str:
    """Ingest one document of one user. Returns the final status (for logs and tests); logs one line
    with the document id, its stage timings and the outcome, and counts them in the metrics."""
    report = JobReport()
    started = time.perf_counter()
    outcome = "retry"  # unless the job ends here: a passing fault raises Retry
    try:
        outcome = await _ingest(ctx, document_id, user_id, report)
        return outcome
    finally:
        elapsed = time.perf_counter() - started
        _report(document_id, user_id, outcome, report, elapsed)


def _report(document_id: str, user_id: str, outcome: str, report: JobReport, elapsed: float) -> None:
    for stage, seconds in report.timings.items():
        metrics.INGEST_STAGE_SECONDS.labels(stage).observe(seconds)
    metrics.INGEST_JOBS.labels(outcome).inc()
    if outcome == "failed":
        metrics.INGEST_FAILURES.labels(report.reason or "unknown").inc()
    if outcome == "ready" and report.pages:
        metrics.INGEST_PAGES.inc(report.pages)
        metrics.INGEST_PAGES_PER_SECOND.observe(report.pages / max(elapsed, 1e-6))
    stages = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in report.timings.items())
    log.info(
        "ingest %s: %s%s, %s pages (%s by OCR), %s passages in %.2fs (%s)",
        document_id,
        outcome,
        f" ({report.reason})" if report.reason else "",
        report.pages,
        report.ocr_pages,
        report.passages,
        elapsed,
        stages or "no stage ran",
        extra={
            "document_id": document_id,
            "user_id": user_id,
            "outcome": outcome,
            "reason": report.reason,
            "pages": report.pages,
            "ocr_pages": report.ocr_pages,
            "passages": report.passages,
            "format": report.format,
            "seconds": round(elapsed, 3),
            "timings": {stage: round(seconds, 3) for stage, seconds in report.timings.items()},
        },
    )


async def _ingest(ctx: JobContext, document_id: str, user_id: str, report: JobReport) -> str:
    tenant, doc_id = Tenant(uuid.UUID(user_id)), uuid.UUID(document_id)
    settings: Settings = ctx["settings"]
    progress = _Progress(ctx, tenant, doc_id)
    timings = report.timings
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    try:
        document = await _load(ctx, tenant, doc_id)
        if document is None:
            return "gone"
        if document.status == DocumentStatus.READY and document.embedding_model == ctx["vector_space"]:
            if document.chapters is None:
                return await _refresh_contents(ctx, tenant, document, report)
            return "ready"
        if document.attempts >= settings.ingest_max_tries:
            # Every earlier start ended without a word (a worker killed mid-job): stop trying.
            report.reason = "keeps_failing"
            await progress.set(status=DocumentStatus.FAILED, error=KEEPS_FAILING, force=True)
            return "failed"
        # Beats well inside the stale window, whatever the two settings say.
        beat_every = min(settings.ingest_heartbeat_seconds, settings.ingest_stale_seconds / 3)
        running = ctx.setdefault("running_documents", set())
        running.add(doc_id)
        async with _heartbeat(progress, beat_every):
            await progress.set(
                status=DocumentStatus.PARSING, pages_done=0, error=None, attempts=Document.attempts + 1
            )
            fmt = formats.BY_NAME[document.format]
            noun = "PDF" if fmt is formats.PDF else "file"
            report.format = fmt.name

            async def parsed_so_far(done: int, total: int) -> None:
                await progress.set(pages_done=done, page_count=total or None)

            parsed = await _parse(ctx, document, fmt, on_progress=parsed_so_far, lap=lap)
            pages = parsed.pages
            report.pages, report.ocr_pages = len(pages), parsed.ocr_pages
            passages = chunk_pages(pages)
            report.passages = len(passages)
            lap("chunk")
            if not passages:
                raise FileRefused(
                    "no_text",
                    NO_TEXT if fmt is formats.PDF else f"This file ({fmt.label}) holds no text to study.",
                )
            await _within_passage_caps(ctx, settings, tenant, doc_id, len(passages), noun=noun)
            await progress.set(status=DocumentStatus.EMBEDDING, pages_done=0, page_count=len(pages))
            texts = (
                embedded_texts(
                    passages,
                    parsed,
                    fmt,
                    book=document.book if settings.embedding_headers == "book_outline" else None,
                )
                if settings.embedding_headers != "none"
                else [passage.text for passage in passages]
            )
            vectors, tokens = await _embed(ctx, passages, texts, progress, len(pages))
            lap("embed")
            written = await _replace_chunks(
                ctx,
                tenant,
                doc_id,
                passages,
                vectors,
                parsed=parsed,
                fmt=fmt,
                embedding_tokens=tokens,
            )
            lap("write")
        return "ready" if written else "gone"
    except FileRefused as refused:
        report.reason = refused.kind
        await progress.set(status=DocumentStatus.FAILED, error=refused.message, force=True)
        return "failed"
    except ObjectMissing:
        report.reason = "object_missing"
        await progress.set(
            status=DocumentStatus.FAILED, error="The stored file is missing; upload it again.", force=True
        )
        return "failed"
    except TRANSIENT as exc:
        tries = ctx.get("job_try", 1)
        if tries < settings.ingest_max_tries:
            log.warning("ingest %s: transient error (try %s), retrying: %r", document_id, tries, exc)
            raise Retry(defer=min(2**tries, 60)) from exc
        report.reason = "retry_later"
        await _fail_quietly(progress, RETRY_LATER)
        return "failed"
    except Exception:
        log.exception("ingest %s failed", document_id, extra={"document_id": document_id})
        report.reason = "error"
        await _fail_quietly(progress, GENERIC_FAILURE)
        return "failed"
    finally:
        ctx.get("running_documents", set()).discard(doc_id)


async def _parse(
    ctx: JobContext,
    document: Document,
    fmt: formats.Format,
    *,
    on_progress: Callable[[int, int], Awaitable[None]],
    lap: Callable[[str], None],
) -> Parsed:
    """Fetch the stored file into a temporary directory and parse it in the limited child."""
    settings: Settings = ctx["settings"]
    with tempfile.TemporaryDirectory(prefix="studyrag-ingest-") as tmp:
        path = Path(tmp) / f"document{fmt.extensions[0]}"
        await ctx["storage"].download(document.storage_key, path)
        lap("fetch")
        parsed = await extract_pages(
            path,
            max_pages=settings.max_pdf_pages,
            time_limit=settings.parse_timeout_seconds,
            memory_mb=settings.parse_memory_mb,
            on_progress=on_progress,
            max_page_chars=settings.max_page_chars,
            max_document_chars=settings.max_document_chars,
            format=fmt.name,
            ocr=settings.ocr_options if fmt is formats.PDF else None,
            max_unpacked=settings.max_unpacked_bytes,
            max_ratio=settings.max_unpack_ratio,
        )
        lap("parse")
    return parsed


async def _refresh_contents(ctx: JobContext, tenant: Tenant, document: Document, report: JobReport) -> str:
    """A ready document ingested before page text and chapters were kept: read the file again and store
    them, leaving its passages and embeddings as they are (no re-embedding; chat keeps working). A file
    that no longer reads gets empty ones, so it is not queued again."""
    fmt = formats.BY_NAME[document.format]
    report.format = fmt.name
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.timings[stage] = now - clock
        clock = now

    async def quiet(done: int, total: int) -> None:
        return None

    try:
        values = _contents(await _parse(ctx, document, fmt, on_progress=quiet, lap=lap), fmt)
    except (FileRefused, ObjectMissing) as exc:
        log.warning("ingest %s: page text and chapters could not be read again: %r", document.id, exc)
        report.reason = "contents_unreadable"
        values = {"units": [], "chapters": []}
    async with ctx["sessionmaker"]() as session, session.begin():
        await bind_tenant(session, tenant)
        await session.execute(
            update(Document)
            .where(Document.id == document.id, Document.status == DocumentStatus.READY)
            .values(heartbeat_at=text("now()"), **values)
        )
    return "ready"


async def _fail_quietly(progress: _Progress, message: str) -> None:
    try:
        await progress.set(status=DocumentStatus.FAILED, error=message, force=True)
    except Exception:
        log.exception("could not record the failure of %s", progress.document_id)


async def reconcile(ctx: JobContext) -> int:
    """Requeue documents whose ingestion is pending with no job, or whose job went quiet (a dead worker).

    Reads the backlog of every user through `ingestion_backlog()`, the narrow system path (ids and
    statuses only). Returns how many jobs it (re)queued.
    """
    settings: Settings = ctx["settings"]
    redis = ctx["redis"]
    async with ctx["sessionmaker"]() as session:
        rows = (
            await session.execute(
                text("select id, user_id, status from ingestion_backlog(:stale)"),
                {"stale": settings.ingest_stale_seconds},
            )
        ).all()
    running = ctx.get("running_documents", set())  # this worker's own jobs are alive, whatever it says
    rows = [row for row in rows if row[0] not in running]
    requeued = 0
    # Each owner's requeued files line up behind one another, not ahead of others.
    ranks: dict[uuid.UUID, int] = {}
    for document_id, user_id, status in rows:
        ranks[user_id] = ahead = ranks.get(user_id, -1) + 1
        if status in ("parsing", "embedding"):
            # Its worker died mid-job: the job is still in the queue, held by an in-progress mark that
            # would only expire after the job timeout. Lift the mark so a live worker takes it now.
            await redis.delete(in_progress_key_prefix + job_id(document_id))
        if await enqueue_ingest(redis, document_id, user_id, files_ahead=ahead):
            requeued += 1
        async with ctx["sessionmaker"]() as session, session.begin():
            await bind_tenant(session, Tenant(user_id))
            await session.execute(
                update(Document).where(Document.id == document_id).values(heartbeat_at=text("now()"))
            )
    if rows:
        log.info("reconciler: %s stale documents, %s requeued", len(rows), requeued)
    return requeued + await reembed_other_spaces(ctx)


async def reembed_other_spaces(ctx: JobContext) -> int:
    """Queue the ready documents whose vectors are of another space than this worker makes (the model
    or EMBEDDING_HEADERS changed): search reads one space only, so until they are embedded again they
    would be missing from chat. They show as queued meanwhile. Read for every user through
    `documents_of_another_space()` (ids only); each is marked under its owner's row-level security."""
    async with ctx["sessionmaker"]() as session:
        rows = (
            await session.execute(
                text("select id, user_id from documents_of_another_space(:space)"),
                {"space": ctx["vector_space"]},
            )
        ).all()
    queued = 0
    ranks: dict[uuid.UUID, int] = {}
    for document_id, user_id in rows:
        async with ctx["sessionmaker"]() as session, session.begin():
            await bind_tenant(session, Tenant(user_id))
            marked = await session.execute(
                update(Document)
                .where(Document.id == document_id, Document.status == DocumentStatus.READY)
                .values(status=DocumentStatus.QUEUED, attempts=0, heartbeat_at=text("now()"))
            )
        if marked.rowcount:
            ranks[user_id] = ahead = ranks.get(user_id, -1) + 1
            queued += bool(await enqueue_ingest(ctx["redis"], document_id, user_id, files_ahead=ahead))
    if rows:
        log.info("reconciler: %s documents of another vector space, %s queued", len(rows), queued)
    return queued
