"""Passage embeddings stay inline in the row; the text and its tsvector go to TOAST instead.

pgvector's `vector` type defaults to EXTERNAL storage. A passage row (~1,000 characters of text, its
tsvector and a 384-d vector of 1,540 bytes) is over the 2 kB TOAST threshold, so the vector was the
value moved out of line: an exact scan of a tenant's passages then fetched every vector from TOAST
through its index. With MAIN storage the vector stays in the heap row and the text and tsvector
(EXTENDED) are compressed or moved out first. bench/retrieval.py, exact scan of ~960 passages:
8.7 ms before, 2.2 ms after (EXPLAIN ANALYZE, 100k passages).

Only rows written from now on are stored this way (ingestion rewrites a document's passages);
`VACUUM FULL chunks` rewrites the old ones, under an exclusive lock.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("alter table chunks alter column embedding set storage main")


def downgrade() -> None:
    op.execute("alter table chunks alter column embedding set storage external")
