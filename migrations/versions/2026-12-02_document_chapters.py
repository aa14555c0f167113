"""Each document keeps its chapters (`documents.chapters`), and PDFs keep their pages' text too.

`chapters` is `[{"number", "title", "first_page", "last_page"}]`: from the PDF's outline, or from
headings found in the text (app.library.contents). Null means "not read yet": documents ingested
before this revision get their chapters and page text from a light re-read (parse only, no
re-embedding): `ingestion_backlog()` now also names ready documents whose chapters are null, so the
reconciler queues them. It reads that from `chapters_read`, a generated column: the system role that
owns the function sees status columns, never content. An empty list means the document has none.

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

from app.config import get_settings

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYSTEM_ROLE = f"{get_settings().app_db_role}_system"
PENDING = "d.status in ('uploaded', 'queued', 'parsing', 'embedding')"
# Ready, but read before chapters were kept: the job re-reads the file (no re-embedding).
UNREAD = "(d.status = 'ready' and not d.chapters_read)"


def _backlog(condition: str) -> str:
    # Replaced in place (the migration's role is a member of the owner, 0005), so owner and grants stay.
    return f"""
        create or replace function ingestion_backlog(stale_seconds integer)
        returns table (id uuid, user_id uuid, status text)
        language sql stable security definer set search_path = public, pg_temp as $$
          select d.id, d.user_id, d.status::text from documents d
          where {condition}
            and coalesce(d.heartbeat_at, d.updated_at) < now() - make_interval(secs => stale_seconds)
          order by d.updated_at
          limit 1000
        $$
        """


def upgrade() -> None:
    op.add_column("documents", sa.Column("chapters", postgresql.JSONB(), nullable=True))
    # The system role reads status columns only, never content such as chapter titles.
    op.add_column(
        "documents",
        sa.Column("chapters_read", sa.Boolean(), sa.Computed("chapters is not null", persisted=True)),
    )
    op.execute(f'grant select (chapters_read) on documents to "{SYSTEM_ROLE}"')
    op.execute(_backlog(f"({PENDING} or {UNREAD})"))


def downgrade() -> None:
    op.execute(_backlog(PENDING))
    op.execute(f'revoke select (chapters_read) on documents from "{SYSTEM_ROLE}"')
    op.drop_column("documents", "chapters_read")
    op.drop_column("documents", "chapters")
