"""Ingestion: the ready documents whose vectors are of another space, for the worker to embed again.

`documents.embedding_model` names the space a document's vectors are in: the model, and the header
embedded with each passage (`app.ingestion.embeddings.vector_space`). Search reads the configured
space only, so after a deployment changes its model or EMBEDDING_HEADERS, documents of the old space
would drop out of chat until their owner scanned the library. The worker's reconciler re-queues them
instead — for every user, which row-level security forbids the app role. As for the backlog (0003), a
SECURITY DEFINER function owned by the NOLOGIN system role answers only (id, user_id), and that role
may read one more status column, `embedding_model`, never content. The app role may call it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

from app.config import get_settings

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
SYSTEM_ROLE = f"{APP_ROLE}_system"


def upgrade() -> None:
    op.execute(f'grant select (embedding_model) on documents to "{SYSTEM_ROLE}"')
    op.execute(
        """
        create function documents_of_another_space(space text)
        returns table (id uuid, user_id uuid)
        language sql stable security definer set search_path = public, pg_temp as $$
          select d.id, d.user_id from documents d
          where d.status = 'ready' and d.embedding_model is distinct from space
          order by d.updated_at
          limit 1000
        $$
        """
    )
    # A new owner needs CREATE on the schema at the moment of the hand-over, not after.
    op.execute(f'grant create on schema public to "{SYSTEM_ROLE}"')
    op.execute(f'alter function documents_of_another_space(text) owner to "{SYSTEM_ROLE}"')
    op.execute(f'revoke create on schema public from "{SYSTEM_ROLE}"')
    op.execute("revoke all on function documents_of_another_space(text) from public")
    op.execute(f'grant execute on function documents_of_another_space(text) to "{APP_ROLE}"')


def downgrade() -> None:
    op.execute("drop function documents_of_another_space(text)")
    op.execute(f'revoke select (embedding_model) on documents from "{SYSTEM_ROLE}"')
