"""Each document keeps its chapters (`documents.chapters`), and PDFs keep their pages' text too.

`chapters` is `[{"number", "title", "first_page", "last_page"}]`: from the PDF's outline, or from
headings found in the text (app.library.contents). Null means "not read yet": documents ingested
before this revision get their chapters and page text from a light re-read (parse only, no
re-embedding) queued by the reconciler; an empty list means the document has none.

`units` already held the text of each slide, section or chapter; it now holds each PDF page's too,
for the study aids. No new table: both live on the document, under its row-level security.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("chapters", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("documents", "chapters")
