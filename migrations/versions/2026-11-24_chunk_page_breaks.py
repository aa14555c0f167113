"""Page breaks inside a chunk, so a quote can name the exact page it is on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chunks",
        sa.Column("page_breaks", postgresql.ARRAY(sa.Integer()), server_default="{}", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("chunks", "page_breaks")
