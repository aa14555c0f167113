"""Documents other than PDFs: a file's format, the text of its units, and the units' titles per chunk.

A chunk's `page_start`/`page_end` keep counting the format's unit: pages of a PDF (and of a scanned
PDF), slides of a PPTX, chapters of an EPUB, sections of a DOCX/Markdown/text/HTML file. For formats
whose units have names, `documents.units` holds each unit's title and text (what the viewer shows in
place of a PDF), and `chunks.sections` the titles of the units a chunk spans, in order, so a source can
say "slide 3" or "§ Sorting (section 4 of 9)" without reading the document. PDFs keep both empty.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FORMATS = ("pdf", "pptx", "docx", "epub", "md", "txt", "html")  # app.library.formats.FORMATS


def upgrade() -> None:
    op.add_column("documents", sa.Column("format", sa.String(8), server_default="pdf", nullable=False))
    op.create_check_constraint(op.f("ck_documents_format"), "documents", f"format in {FORMATS}")
    op.add_column("documents", sa.Column("units", postgresql.JSONB(), nullable=True))
    op.add_column(
        "chunks", sa.Column("sections", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("chunks", "sections")
    op.drop_column("documents", "units")
    op.drop_constraint(op.f("ck_documents_format"), "documents", type_="check")
    op.drop_column("documents", "format")
