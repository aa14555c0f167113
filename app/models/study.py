import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

CARD_KINDS = ("definition", "term", "cloze", "question")


class Deck(Base):
    """Flashcards made from one book, or one chapter of it. Deleting the book deletes its decks."""

    __tablename__ = "decks"
    __table_args__ = (
        UniqueConstraint("id", "user_id"),
        ForeignKeyConstraint(
            ["document_id", "user_id"], ["documents.id", "documents.user_id"], ondelete="CASCADE"
        ),
        Index("ix_decks_user_id_created_at", "user_id", "created_at"),
    )
    __mapper_args__ = {"eager_defaults": True}  # created_at comes back with the insert

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID]
    chapter: Mapped[int | None] = mapped_column(Integer)  # the chapter's number; null: the whole book
    title: Mapped[str] = mapped_column(String(300))
    made_by: Mapped[str] = mapped_column(String(16))  # "offline" or "model"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Card(Base):
    """One flashcard, cited to the page its quote is text of, with its FSRS schedule."""

    __tablename__ = "cards"
    __table_args__ = (
        UniqueConstraint("id", "user_id"),
        ForeignKeyConstraint(["deck_id", "user_id"], ["decks.id", "decks.user_id"], ondelete="CASCADE"),
        CheckConstraint(f"kind in {CARD_KINDS}", name="kind"),
        Index("ix_cards_deck_id_position", "deck_id", "position"),
        Index("ix_cards_user_id_due", "user_id", "due"),
    )
    __mapper_args__ = {"eager_defaults": True}  # due, reviews and created_at come back with the insert

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[uuid.UUID]
    deck_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer)  # the order it was ranked in, most important first
    front: Mapped[str] = mapped_column(Text)
    back: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    page: Mapped[int] = mapped_column(Integer)
    quote: Mapped[str] = mapped_column(Text)
    # The FSRS card state (`fsrs.Card.to_dict()` without its id); null until the first review.
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    due: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    reviews: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Review(Base):
    """One grade given to a card: the review history FSRS's optimiser can learn from."""

    __tablename__ = "reviews"
    __table_args__ = (
        ForeignKeyConstraint(["card_id", "user_id"], ["cards.id", "cards.user_id"], ondelete="CASCADE"),
        CheckConstraint("grade between 1 and 4", name="grade"),
        Index("ix_reviews_user_id_reviewed_at", "user_id", "reviewed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )
    user_id: Mapped[uuid.UUID]
    card_id: Mapped[uuid.UUID]
    grade: Mapped[int] = mapped_column(SmallInteger)
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when the card comes back
