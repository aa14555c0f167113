"""Scan library: ingest the user's stored files that are not ingested yet — new books only.

Finds (1) objects under `users/<id>/raw_data/` with no document (put there by other tools, as S3 lets
them), (2) documents still waiting (`uploaded`), and (3) documents embedded with another model than
the configured one (re-embedded, never mixed), and (4) failures that were not the file's fault.
Running it again changes nothing.
"""

import asyncio
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from arq.connections import ArqRedis
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit_log
from app.config import Settings
from app.db import after_commit
from app.ingestion.embeddings import get_embedder, vector_space
from app.ingestion.tasks import RETRYABLE_FAILURES
from app.library.formats import FormatRefused, check_format, format_for_name
from app.library.keys import document_key, user_prefix
from app.library.names import InvalidName
from app.library.service import Folder, inspect_file
from app.library.storage import ObjectMissing, Storage
from app.models import Document
from app.models.document import DocumentStatus
from app.queue import enqueue_ingest, queue_positions
from app.tenancy import Tenant, owned


@dataclass
class ScanResult:
    found: int = 0  # stored files with no record until now
    queued: int = 0  # documents put on the ingestion queue by this scan
    skipped: list[dict[str, str]] = field(default_factory=list)  # {key, reason}


async def _adopt(
    session: AsyncSession, tenant: Tenant, storage: Storage, settings: Settings, key: str, result: ScanResult
) -> Document | None:
    """A document for a stored object that has none, if its path and content are acceptable."""
    relative = key.removeprefix(user_prefix(tenant.user_id) + "raw_data/").split("/")
    if len(relative) != 4:
        result.skipped.append({"key": key, "reason": "Not inside a semester / subject / book folder."})
        return None
    try:
        folder = Folder.parse(*relative[:3])
        if (
            document_key(
                tenant.user_id,
                semester=folder.semester,
                subject=folder.subject,
                book=folder.book,
                filename=relative[3],
            )
            != key
        ) or format_for_name(relative[3]) is None:
            raise InvalidName("The file name is not one StudyRAG accepts; rename it.")
    except InvalidName as exc:
        result.skipped.append({"key": key, "reason": str(exc)})
        return None
    with tempfile.TemporaryDirectory(prefix="studyrag-scan-") as tmp:
        path = Path(tmp) / "object"
        try:
            await storage.download(key, path)
        except ObjectMissing:
            return None
        with path.open("rb") as source:
            digest, size, head = await asyncio.to_thread(inspect_file, source, settings.max_upload_bytes)
            if size > settings.max_upload_bytes:
                result.skipped.append(
                    {"key": key, "reason": f"This file is over {settings.max_upload_mb} MB."}
                )
                return None
            if size == 0:
                result.skipped.append({"key": key, "reason": "This file is empty."})
                return None
            try:
                kind, _ = await asyncio.to_thread(
                    check_format,
                    source,
                    head,
                    relative[3],
                    max_unpacked=settings.max_unpacked_bytes,
                    max_ratio=settings.max_unpack_ratio,
                )
            except FormatRefused as refused:
                result.skipped.append({"key": key, "reason": str(refused)})
                return None
    same = await session.scalar(owned(select(Document), Document, tenant).where(Document.sha256 == digest))
    if same is not None:
        result.skipped.append(
            {"key": key, "reason": f"The same file is already in your library as {same.filename}."}
        )
        return None
    document = Document(
        id=uuid.uuid4(),
        user_id=tenant.user_id,
        semester=folder.semester,
        subject=folder.subject,
        book=folder.book,
        filename=relative[3],
        storage_key=key,
        sha256=digest,
        size_bytes=size,
        format=kind.name,
        status=DocumentStatus.QUEUED,
    )
    session.add(document)
    await session.flush()
    result.found += 1
    return document


async def scan_library(
    session: AsyncSession,
    tenant: Tenant,
    storage: Storage,
    settings: Settings,
    *,
    queue: ArqRedis,
) -> ScanResult:
    result = ScanResult()
    # Documents of another vector space are embedded again.
    embedding_model = vector_space(get_embedder(settings).model_name, settings.embedding_headers)
    known = set((await session.scalars(owned(select(Document.storage_key), Document, tenant))).all())
    to_queue: list[uuid.UUID] = []
    for key in await storage.list_keys(user_prefix(tenant.user_id) + "raw_data/"):
        if key not in known and (document := await _adopt(session, tenant, storage, settings, key, result)):
            to_queue.append(document.id)
    waiting = owned(select(Document.id), Document, tenant).where(
        or_(
            Document.status == DocumentStatus.UPLOADED,
            (Document.status == DocumentStatus.READY) & (Document.embedding_model != embedding_model),
            (Document.status == DocumentStatus.FAILED) & Document.error.in_(RETRYABLE_FAILURES),
        )
    )
    waiting_ids = list((await session.scalars(waiting)).all())
    if waiting_ids:
        await session.execute(
            update(Document)
            .where(Document.id.in_(waiting_ids))
            .values(status=DocumentStatus.QUEUED, attempts=0)
        )
    to_queue.extend(waiting_ids)
    result.queued = len(to_queue)

    positions = await queue_positions(session, tenant) if to_queue else {}

    async def enqueue_all() -> None:
        for document_id in to_queue:
            await enqueue_ingest(
                queue, document_id, tenant.user_id, files_ahead=positions.get(document_id, 0)
            )

    if to_queue:
        after_commit(session, enqueue_all)
    await audit_log.record(
        session,
        action="scan",
        user_id=tenant.user_id,
        detail={"found": result.found, "queued": result.queued},
    )
    return result
