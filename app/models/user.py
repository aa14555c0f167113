from datetime import datetime

from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID
from sqlalchemy import BigInteger, DateTime, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class User(SQLAlchemyBaseUserTableUUID, Base):
    """An account. `is_superuser` is the admin flag. Not tenant-scoped: log-in must find a user by email."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Tokens issued before this are refused (set at deactivation, so reactivation revives no old session).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Per-user quotas; NULL means the deployment's default.
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    quota_documents: Mapped[int | None] = mapped_column(Integer)
    # Monthly usage limits; NULL means the deployment's default (MONTHLY_*_LIMIT, itself unset: none).
    question_limit: Mapped[int | None] = mapped_column(Integer)
    llm_token_limit: Mapped[int | None] = mapped_column(BigInteger)


# fastapi-users declares User's own columns (id, email, is_active, ...) as plain values for type
# checkers, as its UserProtocol needs; a query naming one as SQL takes it from here (`user_columns.id`).
user_columns = User.__table__.c
