"""Ingestion: passage count and heartbeat per document; a narrow system path to the backlog.

The reconciler must find stuck documents of every user, which row-level security forbids to the app
role. Instead of a role that bypasses RLS, a SECURITY DEFINER function owned by a NOLOGIN role returns
only (id, user_id, status) of documents whose ingestion is pending or has gone quiet; that role may
read only those columns, through its own policy. The app role may call the function, nothing more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.config import get_settings

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
SYSTEM_ROLE = f"{APP_ROLE}_system"


def upgrade() -> None:
    op.add_column("documents", sa.Column("chunk_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("documents", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        f"""
        do $$ begin
          if not exists (select from pg_roles where rolname = '{SYSTEM_ROLE}') then
            create role "{SYSTEM_ROLE}" nologin nosuperuser nobypassrls nocreatedb nocreaterole;
          end if;
        end $$
        """
    )
    op.execute(f'grant "{SYSTEM_ROLE}" to current_user')  # so the owner may hand the function over
    op.execute(f'grant usage on schema public to "{SYSTEM_ROLE}"')
    op.execute(
        f'grant select (id, user_id, status, updated_at, heartbeat_at) on documents to "{SYSTEM_ROLE}"'
    )
    op.execute(f'create policy ingestion_backlog on documents for select to "{SYSTEM_ROLE}" using (true)')
    op.execute(
        """
        create function ingestion_backlog(stale_seconds integer)
        returns table (id uuid, user_id uuid, status text)
        language sql stable security definer set search_path = public, pg_temp as $$
          select d.id, d.user_id, d.status::text from documents d
          where d.status in ('uploaded', 'queued', 'parsing', 'embedding')
            and coalesce(d.heartbeat_at, d.updated_at) < now() - make_interval(secs => stale_seconds)
          order by d.updated_at
          limit 1000
        $$
        """
    )
    # A new owner needs CREATE on the schema at the moment of the hand-over, not after.
    op.execute(f'grant create on schema public to "{SYSTEM_ROLE}"')
    op.execute(f'alter function ingestion_backlog(integer) owner to "{SYSTEM_ROLE}"')
    op.execute(f'revoke create on schema public from "{SYSTEM_ROLE}"')
    op.execute("revoke all on function ingestion_backlog(integer) from public")
    op.execute(f'grant execute on function ingestion_backlog(integer) to "{APP_ROLE}"')


def downgrade() -> None:
    op.execute("drop function ingestion_backlog(integer)")
    op.execute("drop policy ingestion_backlog on documents")
    op.execute(f'revoke all on documents from "{SYSTEM_ROLE}"')
    op.execute(f'revoke usage on schema public from "{SYSTEM_ROLE}"')
    op.drop_column("documents", "heartbeat_at")
    op.drop_column("documents", "chunk_count")
