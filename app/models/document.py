import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, deferred, mapped_column

from app.db import Base
from app.library.formats import FORMATS


class DocumentStatus(StrEnum):
    """Where a document is on its way to being searchable, in order."""

    UPLOADED = "uploaded"  # stored, not queued yet (Scan library queues it)
    QUEUED = "queued"
    PARSING = "parsing"
    EMBEDDING = "embedding"
    READY = "ready"
    FAILED = "failed"


DOCUMENT_STATUSES = tuple(status.value for status in DocumentStatus)


class Document(Base):
    """One stored file in a user's library: semester → subject → book → file."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("user_id", "sha256"),
        # Lets chunks reference (id, user_id), so a chunk can never belong to another user's document.
        UniqueConstraint("id", "user_id"),
        CheckConstraint(f"status in {DOCUMENT_STATUSES}", name="status"),
        CheckConstraint(f"format in {FORMATS}", name="format"),
        # One file of a name per book; also the index for browsing a user's folders.
        UniqueConstraint("user_id", "semester", "subject", "book", "filename"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    semester: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64))
    book: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    # What the file is, by its content (app.library.formats): decides the parser and the cited unit.
    format: Mapped[str] = mapped_column(String(8), default="pdf", server_default="pdf")
    # [{"title", "text"}] of each unit: what the viewer shows for a slide, section or chapter, and the
    # page text the study aids read (PDF pages have no title).
    units: Mapped[list[dict[str, str]] | None] = deferred(mapped_column(JSONB))
    # [{"number", "title", "first_page", "last_page"}] (app.library.contents.Chapter); null until read.
    chapters: Mapped[list[dict[str, object]] | None] = deferred(mapped_column(JSONB))
    # Whether they have been read: a status column the reconciler's system role may see (0016).
    chapters_read: Mapped[bool] = mapped_column(Boolean, Computed("chapters is not null", persisted=True))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int | None] = mapped_column(Integer)
    pages_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    chunk_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # ingestion starts
    status: Mapped[str] = mapped_column(String(16), default="uploaded", server_default="uploaded")
    error: Mapped[str | None] = mapped_column(Text)
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    # The moment of the insert, not the transaction's start: a student's files queue in this order.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.clock_timestamp()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # Last sign of life from the ingestion job: the reconciler requeues documents whose job went quiet.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
