"""Each document counts the times its ingestion started, so a file that keeps killing its worker ends.

A worker killed mid-parse (out of memory on a hostile PDF) loses arq's retry count with it, and the
reconciler would requeue the document for ever. Postgres keeps the count instead: past
INGEST_MAX_TRIES the document fails with a reason. Scan library's retry starts the count again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("documents", "attempts")
