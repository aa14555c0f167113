"""Documents record the moment each was added, so a student's files queue in upload order.

`now()` is the transaction's start: the files of one multi-file upload all had the same `created_at`,
and their order in the queue (app/ingestion/queue.py ranks a student's waiting files by it) was left
to chance. `clock_timestamp()` is the moment of the insert.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("documents", "created_at", server_default=sa.text("clock_timestamp()"))


def downgrade() -> None:
    op.alter_column("documents", "created_at", server_default=sa.text("now()"))
