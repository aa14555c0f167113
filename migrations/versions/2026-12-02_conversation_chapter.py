"""A conversation asked within a chapter remembers it (`conversations.chapter`, the chapter's number of
the one document in `document_ids`), so reopening it picks that chapter again. Null for every
conversation before this revision and for those asked of whole books.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("conversations", sa.Column("chapter", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "chapter")
