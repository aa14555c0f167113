"""The library for one tenant: store uploads, browse, find, and delete documents and folders."""

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from arq.connections import ArqRedis
from sqlalchemy import Select, delete, func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from app import audit_log
from app.config import Settings
from app.db import after_commit, on_rollback
from app.exceptions import Conflict, InvalidInput, NotYours
from app.library.contents import Chapter, Page
from app.library.formats import SIGNATURE_WINDOW, FormatRefused, check_format
from app.library.keys import document_key
from app.library.names import InvalidName, file_name, folder_name
from app.library.schemas import UploadedFile
from app.library.storage import Storage
from app.models import Document, User
from app.models.document import DocumentStatus
from app.queue import enqueue_ingest, queue_positions
from app.tenancy import Tenant, owned
from app.usage import service as usage

MAX_QUERY_LENGTH = 200


class DocumentNotFound(NotYours):
    """No such document or folder in this tenant's library (it may exist, but not for them)."""

    default_message = "No such file in your library."


@dataclass(frozen=True)
class Folder:
    semester: str
    subject: str
    book: str

    @classmethod
    def parse(cls, semester: str | None, subject: str | None, book: str | None) -> "Folder":
        return cls(
            folder_name(semester, "semester"), folder_name(subject, "subject"), folder_name(book, "book")
        )

    def __str__(self) -> str:
        return f"{self.semester} / {self.subject} / {self.book}"


def _rejected(filename: str, code: str, error: str, http_status: int = 400) -> UploadedFile:
    return UploadedFile(filename=filename, status="rejected", code=code, error=error, http_status=http_status)


def inspect_file(source: BinaryIO, limit: int) -> tuple[str, int, bytes]:
    """SHA-256, size and first bytes of `source`, read in chunks; stops counting past `limit`."""
    source.seek(0)
    digest, size, head = hashlib.sha256(), 0, b""
    while chunk := source.read(1024 * 1024):
        if len(head) < SIGNATURE_WINDOW:
            head += chunk[: SIGNATURE_WINDOW - len(head)]
        size += len(chunk)
        if size > limit:
            break
        digest.update(chunk)
    source.seek(0)
    return digest.hexdigest(), size, head


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".rstrip("0").rstrip(".")


_QUOTA_LOCK = text("select pg_advisory_xact_lock(hashtextextended(:key, 0))")


def quotas_of(user: User, settings: Settings) -> tuple[int, int]:
    """(documents, bytes) the user may store: their own quotas, or the defaults where they set none.
    A quota of 0 is a quota (nothing more may be uploaded), not "the default"."""
    documents = settings.default_quota_documents if user.quota_documents is None else user.quota_documents
    size = settings.default_quota_bytes if user.quota_bytes is None else user.quota_bytes
    return documents, size


async def _usage(session: AsyncSession, tenant: Tenant) -> tuple[int, int]:
    statement = owned(select(func.count(), func.coalesce(func.sum(Document.size_bytes), 0)), Document, tenant)
    count, total = (await session.execute(statement)).one()
    return count, int(total)


async def _same_content_or_name(
    session: AsyncSession, tenant: Tenant, *, digest: str, folder: Folder, name: str
) -> UploadedFile | None:
    same = await session.scalar(owned(select(Document), Document, tenant).where(Document.sha256 == digest))
    if same is not None:
        where = f"{same.semester} / {same.subject} / {same.book} / {same.filename}"
        return _rejected(name, "duplicate", f"This file is already in your library as {where}.", 409)
    taken = await session.scalar(
        owned(select(Document.id), Document, tenant).where(
            Document.semester == folder.semester,
            Document.subject == folder.subject,
            Document.book == folder.book,
            Document.filename == name,
        )
    )
    if taken is not None:
        return _rejected(
            name,
            "exists",
            f"A file named {name} is already in {folder}. Rename the file or delete the old one first.",
            409,
        )
    return None


async def store_upload(
    session: AsyncSession,
    tenant: Tenant,
    storage: Storage,
    settings: Settings,
    *,
    folder: Folder,
    filename: str | None,
    source: BinaryIO,
    queue: ArqRedis | None = None,
) -> UploadedFile:
    """Validate one uploaded file, store it and (once committed) queue its ingestion on `queue`.

    A refusal is a result with a reason, never a crash.
    """
    try:
        name = file_name(filename)
    except InvalidName as exc:
        return _rejected(filename or "", "bad_name", str(exc))
    digest, size, head = await asyncio.to_thread(inspect_file, source, settings.max_upload_bytes)
    if size == 0:
        return _rejected(name, "empty", "This file is empty.")
    if size > settings.max_upload_bytes:
        return _rejected(
            name, "too_large", f"This file is over {settings.max_upload_mb} MB, the largest allowed.", 413
        )
    try:
        kind, name = await asyncio.to_thread(
            check_format,
            source,
            head,
            name,
            max_unpacked=settings.max_unpacked_bytes,
            max_ratio=settings.max_unpack_ratio,
        )
    except FormatRefused as refused:
        return _rejected(name, refused.code, str(refused), 415)

    # Parallel uploads of one user wait for each other here, until the holder's request commits: each
    # counts what the others stored, so together they cannot exceed the quota.
    await session.execute(_QUOTA_LOCK, {"key": f"quota:{tenant.user_id}"})
    user = await session.get(User, tenant.user_id)
    if user is None:  # the account was deleted while this request ran
        raise LookupError(f"user {tenant.user_id} no longer exists")
    quota_documents, quota_bytes = quotas_of(user, settings)
    count, used = await _usage(session, tenant)
    if count >= quota_documents:
        return _rejected(name, "quota", f"Your library is full ({quota_documents} documents).", 413)
    if used + size > quota_bytes:
        free = max(quota_bytes - used, 0)
        return _rejected(
            name, "quota", f"Not enough space: this file is {_mb(size)} MB and {_mb(free)} MB is free.", 413
        )
    if clash := await _same_content_or_name(session, tenant, digest=digest, folder=folder, name=name):
        return clash

    key = document_key(
        tenant.user_id, semester=folder.semester, subject=folder.subject, book=folder.book, filename=name
    )
    document = Document(
        id=uuid.uuid4(),
        user_id=tenant.user_id,
        semester=folder.semester,
        subject=folder.subject,
        book=folder.book,
        filename=name,
        storage_key=key,
        sha256=digest,
        size_bytes=size,
        format=kind.name,
        status=DocumentStatus.QUEUED if queue is not None else DocumentStatus.UPLOADED,
    )
    try:
        async with session.begin_nested():  # only this file is undone if it loses a race
            session.add(document)
            await session.flush()
    except IntegrityError:
        clash = await _same_content_or_name(session, tenant, digest=digest, folder=folder, name=name)
        return clash or _rejected(name, "conflict", "This file could not be added; try again.", 409)
    try:
        await storage.put(key, source, content_type=kind.media_type)
    except Exception:
        await session.delete(document)
        await session.flush()
        return _rejected(
            name, "storage", "The file could not be stored just now; try again in a minute.", 503
        )
    on_rollback(session, lambda: storage.delete(key))
    await usage.record(session, tenant, held=True)  # the month's most held, with this file
    if queue is not None:
        ahead = (await queue_positions(session, tenant)).get(document.id, 0)
        after_commit(session, lambda: enqueue_ingest(queue, document.id, tenant.user_id, files_ahead=ahead))
    await audit_log.record(
        session,
        action="upload",
        user_id=tenant.user_id,
        target=str(document.id),
        detail={"key": key, "size": size},
    )
    return UploadedFile(filename=name, status=document.status, id=document.id, key=key, job_id=document.id)


async def store_uploads(
    session: AsyncSession,
    tenant: Tenant,
    storage: Storage,
    settings: Settings,
    *,
    folder: Folder,
    files: list[tuple[str | None, BinaryIO]],
    queue: ArqRedis | None = None,
) -> list[UploadedFile]:
    """Each (file name, content) stored or refused on its own: the API and the no-JavaScript form share
    it. How many files one request may carry is bounded before parsing (the upload routes' limits)."""
    return [
        await store_upload(
            session, tenant, storage, settings, folder=folder, filename=name, source=source, queue=queue
        )
        for name, source in files
    ]


def _matching(
    tenant: Tenant,
    *,
    semester: str | None = None,
    subject: str | None = None,
    book: str | None = None,
    q: str | None = None,
) -> Select[tuple[Document]]:
    statement = owned(select(Document), Document, tenant)
    for column, value in ((Document.semester, semester), (Document.subject, subject), (Document.book, book)):
        if value:
            statement = statement.where(column == value)
    if q and (q := q.strip()[:MAX_QUERY_LENGTH]):
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(
                *(
                    column.ilike(pattern)
                    for column in (Document.filename, Document.book, Document.subject, Document.semester)
                )
            )
        )
    return statement


async def list_documents(
    session: AsyncSession,
    tenant: Tenant,
    *,
    semester: str | None = None,
    subject: str | None = None,
    book: str | None = None,
    q: str | None = None,
) -> list[Document]:
    """The tenant's documents, by folder and name, with their chapters (the library page lists them)."""
    statement = (
        _matching(tenant, semester=semester, subject=subject, book=book, q=q)
        .order_by(Document.semester, Document.subject, Document.book, Document.filename)
        .options(undefer(Document.chapters))
    )
    return list((await session.scalars(statement)).all())


async def get_document(
    session: AsyncSession,
    tenant: Tenant,
    document_id: uuid.UUID,
    *,
    action: str = "file.read",
    chapters: bool = False,
) -> Document:
    """The tenant's document (with its chapters loaded, if asked); DocumentNotFound (recorded as a
    refused `action`) for any other id."""
    statement = owned(select(Document), Document, tenant).where(Document.id == document_id)
    if chapters:
        statement = statement.options(undefer(Document.chapters))
    document = await session.scalar(statement)
    if document is None:
        raise DocumentNotFound(action=action, user_id=tenant.user_id, target=str(document_id))
    return document


async def delete_document(
    session: AsyncSession, tenant: Tenant, storage: Storage, *, document_id: uuid.UUID
) -> None:
    """The document, its chunks (by cascade) and, once that has committed, its stored file."""
    document = await get_document(session, tenant, document_id, action="file.delete")
    await session.delete(document)
    await session.flush()
    after_commit(session, lambda: storage.delete(document.storage_key))
    await audit_log.record(
        session,
        action="delete",
        user_id=tenant.user_id,
        target=str(document.id),
        detail={"key": document.storage_key},
    )


async def delete_folder(
    session: AsyncSession,
    tenant: Tenant,
    storage: Storage,
    *,
    semester: str,
    subject: str | None = None,
    book: str | None = None,
) -> int:
    """Every document under a semester, a subject or a book. Returns how many were deleted."""
    if book and not subject:
        raise InvalidInput("Name the subject of the book to delete.")
    ids = select(_matching(tenant, semester=semester, subject=subject, book=book).subquery().c.id)
    result = await session.execute(
        delete(Document).where(Document.id.in_(ids)).returning(Document.storage_key)
    )
    keys = list(result.scalars())
    target = " / ".join(part for part in (semester, subject, book) if part)
    if not keys:
        raise DocumentNotFound(action="folder.delete", user_id=tenant.user_id, target=target)

    async def remove_objects() -> None:
        for key in keys:
            await storage.delete(key)

    after_commit(session, remove_objects)
    await audit_log.record(
        session,
        action="delete_folder",
        user_id=tenant.user_id,
        target=target,
        detail={"documents": len(keys)},
    )
    return len(keys)


async def folder_names(session: AsyncSession, tenant: Tenant) -> dict[str, list[str]]:
    """The semesters, subjects and books in use, each list sorted (what the upload form offers)."""
    names = {}
    for key, column in (
        ("semesters", Document.semester),
        ("subjects", Document.subject),
        ("books", Document.book),
    ):
        statement = owned(select(column).distinct().order_by(column), Document, tenant)
        names[key] = list((await session.scalars(statement)).all())
    return names


async def units_of(session: AsyncSession, tenant: Tenant, document: Document) -> list[dict[str, str]]:
    """The slides, sections or chapters of a non-PDF document, as parsing stored them (loaded only here:
    the column is deferred)."""
    units = await session.scalar(
        owned(select(Document.units), Document, tenant).where(Document.id == document.id)
    )
    return units or []


class ChapterNotFound(NotYours):
    """No chapter of that number in this document."""

    default_message = "This book has no chapter of that number."


class ContentsNotReady(Conflict):
    """The document is not read yet (queued, parsing, failed, or ingested before page text was kept)."""

    default_message = "This file is not ready yet; wait until it shows Ready, then try again."


@dataclass(frozen=True)
class Contents:
    """A ready document with the text of its units (pages, slides, ...) and its chapters."""

    document: Document
    pages: list[Page]
    chapters: list[Chapter]

    def chapter(self, number: int, *, tenant: Tenant, action: str) -> Chapter:
        return chapter_of(self.document, number, tenant=tenant, action=action)

    def pages_of(self, chapter: Chapter | None) -> list[Page]:
        """The pages of `chapter`, or of the whole document for None."""
        return [page for page in self.pages if chapter is None or chapter.holds(page.number)]


def chapters_of(document: Document) -> list[Chapter]:
    """The document's chapters as stored at ingestion; none when not read yet (the column is deferred:
    load it with the document, `get_document(..., chapters=True)` or `contents_of`)."""
    return [
        Chapter(
            number=int(str(item["number"])),
            title=str(item["title"]),
            first_page=int(str(item["first_page"])),
            last_page=int(str(item["last_page"])),
            study=bool(item.get("study", True)),  # read before 2026-12-03: not known, offered
        )
        for item in document.chapters or []
    ]


def chapter_of(document: Document, number: int, *, tenant: Tenant, action: str) -> Chapter:
    """Chapter `number` of `document` (its chapters loaded); ChapterNotFound, recorded as a refused
    `action`."""
    for chapter in chapters_of(document):
        if chapter.number == number:
            return chapter
    raise ChapterNotFound(action=action, user_id=tenant.user_id, target=f"{document.id}#{number}")


async def contents_of(
    session: AsyncSession, tenant: Tenant, *, document_id: uuid.UUID, action: str = "file.read"
) -> Contents:
    """The tenant's document with its pages' text and its chapters. DocumentNotFound (recorded as a
    refused `action`) for any other id; ContentsNotReady until ingestion has stored them."""
    document = await session.scalar(
        owned(select(Document), Document, tenant)
        .where(Document.id == document_id)
        .options(undefer(Document.units), undefer(Document.chapters))
    )
    if document is None:
        raise DocumentNotFound(action=action, user_id=tenant.user_id, target=str(document_id))
    if document.status != DocumentStatus.READY or document.units is None or document.chapters is None:
        raise ContentsNotReady()
    pages = [Page(number, unit.get("text", "")) for number, unit in enumerate(document.units, start=1)]
    return Contents(document=document, pages=pages, chapters=chapters_of(document))


def library_tree(documents: list[Document]) -> dict[str, dict[str, dict[str, list[Document]]]]:
    """semester → subject → book → documents, in the order given."""
    tree: dict[str, dict[str, dict[str, list[Document]]]] = {}
    for document in documents:
        tree.setdefault(document.semester, {}).setdefault(document.subject, {}).setdefault(
            document.book, []
        ).append(document)
    return tree
