"""The isolation audit's read path: ownership columns only, through one SECURITY DEFINER function.

Like the ingestion backlog (0003): a NOLOGIN role may read just the ownership columns of documents and
chunks, by its own policies, and `audit_consistency()` — owned by it, callable by the app role —
returns only the ids of rows whose ownership is inconsistent. Chunks are scanned only when the
composite foreign key that makes a mismatch impossible is missing or not validated.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

from app.config import get_settings

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
AUDITOR = f"{APP_ROLE}_auditor"


def upgrade() -> None:
    op.execute(
        f"""
        do $$ begin
          if not exists (select from pg_roles where rolname = '{AUDITOR}') then
            create role "{AUDITOR}" nologin nosuperuser nobypassrls nocreatedb nocreaterole;
          end if;
        end $$
        """
    )
    op.execute(f'grant "{AUDITOR}" to current_user')
    op.execute(f'grant usage on schema public to "{AUDITOR}"')
    op.execute(f'grant select (id, user_id, storage_key) on documents to "{AUDITOR}"')
    op.execute(f'grant select (id, user_id, document_id) on chunks to "{AUDITOR}"')
    for table in ("documents", "chunks"):
        op.execute(f'create policy audit_read on {table} for select to "{AUDITOR}" using (true)')
    op.execute(
        """
        create function audit_consistency() returns table (problem text, item text)
        language plpgsql stable security definer set search_path = public, pg_catalog, pg_temp as $$
        begin
          return query
            select 'storage key outside its owner''s prefix', d.id::text from documents d
            where not starts_with(d.storage_key, 'users/' || d.user_id::text || '/')
            limit 100;
          if not exists (
            select from pg_constraint
            where conname = 'fk_chunks_document_id_user_id_documents' and convalidated
          ) then
            return query
              select 'passage owned by another user than its document', c.id::text
              from chunks c join documents d on d.id = c.document_id
              where c.user_id <> d.user_id
              limit 100;
          end if;
        end
        $$
        """
    )
    op.execute(f'grant create on schema public to "{AUDITOR}"')
    op.execute(f'alter function audit_consistency() owner to "{AUDITOR}"')
    op.execute(f'revoke create on schema public from "{AUDITOR}"')
    op.execute("revoke all on function audit_consistency() from public")
    op.execute(f'grant execute on function audit_consistency() to "{APP_ROLE}"')


def downgrade() -> None:
    op.execute("drop function audit_consistency()")
    for table in ("documents", "chunks"):
        op.execute(f"drop policy audit_read on {table}")
    op.execute(f'revoke all on documents from "{AUDITOR}"')
    op.execute(f'revoke all on chunks from "{AUDITOR}"')
    op.execute(f'revoke usage on schema public from "{AUDITOR}"')
