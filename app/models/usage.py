import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


def _count() -> Mapped[int]:
    return mapped_column(BigInteger, default=0, server_default="0")


class UsageMonth(Base):
    """What one user did and held in one calendar month (UTC): the counts behind the cost estimate.

    Counters add up as things happen; `storage_bytes`, `documents` and `passages` are the most the user
    held that month, recorded at each upload and ingestion."""

    __tablename__ = "usage_months"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the first day of the month
    questions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    llm_tokens_in: Mapped[int] = _count()
    llm_tokens_out: Mapped[int] = _count()
    embedding_tokens: Mapped[int] = _count()
    documents_ingested: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pages_ingested: Mapped[int] = _count()
    storage_bytes: Mapped[int] = _count()
    documents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    passages: Mapped[int] = _count()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
