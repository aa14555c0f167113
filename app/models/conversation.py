import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AnswerMode(StrEnum):
    """How an answer was made: written by the model from the passages, quoted from them (no model
    configured), or a refusal because the library does not hold the answer."""

    GENERATED = "generated"
    EXTRACTIVE = "extractive"
    NOT_FOUND = "not_found"


class Conversation(Base):
    """A chat with its scope: semester, subject and chosen documents (empty = the whole scope)."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("id", "user_id"),
        Index("ix_conversations_user_id_updated_at", "user_id", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    semester: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64))
    document_ids: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    # Asked within a chapter: its number, of the one document in `document_ids`.
    chapter: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Message(Base):
    """A turn of a conversation. Assistant messages keep their sources: chunk ids, pages and quotes."""

    __tablename__ = "messages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["conversation_id", "user_id"], ["conversations.id", "conversations.user_id"], ondelete="CASCADE"
        ),
        CheckConstraint("role in ('user', 'assistant')", name="role"),
        CheckConstraint(
            "mode is null or (role = 'assistant' and mode in ('generated', 'extractive', 'not_found'))",
            name="mode",
        ),
        Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[uuid.UUID]
    conversation_id: Mapped[uuid.UUID]
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    # An assistant message's AnswerMode (null for the question, and for answers stored before 0015 that
    # the migration could not tell).
    mode: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
