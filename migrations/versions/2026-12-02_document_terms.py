"""Per-document full-text term counts, so the refusal's term weights no longer read every passage.

`absent_weight` (app/chat/retrieval.py) weighs each question term by its idf among the scope's
passages. Counting those through the GIN index on `chunks.tsv` cost 20–30 ms of Postgres a question
for one book and 1.5–2.4 s for a 50,000-passage library (bench/retrieval.py). `document_terms` holds,
per document and lexeme, how many of its passages hold it; the sum over the scope's documents is the
same count. Tenant-owned: row-level security forced, the policy on app.user_id, rows tied to their
document's owner. Existing documents are filled from their passages.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.config import get_settings

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
CURRENT_USER = "nullif(current_setting('app.user_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "document_terms",
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("passages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id", "user_id"],
            ["documents.id", "documents.user_id"],
            name=op.f("fk_document_terms_document_id_user_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "lexeme", name=op.f("pk_document_terms")),
    )
    op.create_index("ix_document_terms_user_id_lexeme", "document_terms", ["user_id", "lexeme"])
    # Filled while the policies do not bind the owner yet: every tenant's passages, in one statement.
    op.execute("alter table chunks no force row level security")
    op.execute(
        "insert into document_terms (document_id, lexeme, user_id, passages)"
        " select c.document_id, lexeme, c.user_id, count(*)"
        " from chunks c, unnest(tsvector_to_array(c.tsv)) lexeme group by c.document_id, lexeme, c.user_id"
    )
    op.execute("alter table chunks force row level security")
    op.execute("alter table document_terms enable row level security")
    op.execute("alter table document_terms force row level security")
    op.execute(
        "create policy tenant_isolation on document_terms "
        f"using (user_id = {CURRENT_USER}) with check (user_id = {CURRENT_USER})"
    )
    op.execute(f'grant select, insert, delete on document_terms to "{APP_ROLE}"')


def downgrade() -> None:
    op.execute(f'revoke all on document_terms from "{APP_ROLE}"')
    op.drop_index("ix_document_terms_user_id_lexeme", table_name="document_terms")
    op.drop_table("document_terms")
