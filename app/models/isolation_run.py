import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Identity, Index, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class IsolationAuditRun(Base):
    """One run of the tenant-isolation audit: who ran it, from where, and each check's result."""

    __tablename__ = "isolation_audit_runs"
    __table_args__ = (Index("ix_isolation_audit_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    duration_ms: Mapped[int] = mapped_column(Integer)
    # The admin who ran it; NULL for the command line. Not `user_id`: this is no tenant's data.
    run_by: Mapped[uuid.UUID | None]
    via: Mapped[str] = mapped_column(String(16))  # page, api or cli
    passed: Mapped[bool] = mapped_column(Boolean)
    results: Mapped[list] = mapped_column(JSONB)  # [{name, passed, offenders}]
