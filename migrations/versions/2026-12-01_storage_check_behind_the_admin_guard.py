"""The storage check and the clean-up it leads to: for the admin role only, and every call logged.

`audit_storage(text[])` (0006) was executable by the app role itself: any statement of the app could
call `audit_storage('{}')` and read every tenant's document ids, with no admin and no log entry. It is
now executable only by `<app>_admin` — which the app role holds without inheriting, so a transaction
must `SET LOCAL ROLE` to it (only app/admin/access.py does) — like `audit_forget_documents`, and both
first pass `audit_guard`: with `app.admin_id` set it must name an active admin; without one it is the
operator at the command line (`studyrag audit`); either way an `admin.read` row is written before the
function answers.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from app.config import get_settings

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
AUDITOR = f"{APP_ROLE}_auditor"
READER = f"{APP_ROLE}_admin_reader"
GATE = f"{APP_ROLE}_admin"
ADMIN_ID = "nullif(current_setting('app.admin_id', true), '')::uuid"

STORAGE_QUERY = """
  with objects as (select distinct k as key from unnest(object_keys) k)
  select 'object under a prefix that is no user', o.key from objects o
  where not exists (select from users u where u.id::text = split_part(o.key, '/', 2))
  union all
  select 'object with no document', o.key from objects o
  where exists (select from users u where u.id::text = split_part(o.key, '/', 2))
    and not exists (select from documents d where d.storage_key = o.key)
  union all
  select 'document whose file is missing', d.id::text from documents d
  where not exists (select from objects o where o.key = d.storage_key)
"""
FORGET_QUERY = "delete from documents d where d.id = any(ids) returning d.id, d.user_id"


def _as_owner(owner: str, statement: str) -> None:
    # Replacing a function needs CREATE on the schema for its owner at that moment, as in 0006.
    op.execute(f'grant create on schema public to "{owner}"')
    op.execute(statement)
    op.execute(f'revoke create on schema public from "{owner}"')


def upgrade() -> None:
    # The reader may now also log the operator's calls (no admin id: a row without a user).
    op.execute(f"alter policy admin_logged on audit_log with check (user_id is not distinct from {ADMIN_ID})")
    op.execute(
        f"""
        create function audit_guard(what text, detail jsonb) returns void
        language plpgsql security definer set search_path = public, pg_catalog, pg_temp as $$
        declare
          admin uuid := {ADMIN_ID};
        begin
          if admin is not null and not exists (
            select from users u where u.id = admin and u.is_superuser and u.is_active
          ) then
            raise exception 'the admin read path is for active admins only' using errcode = '42501';
          end if;
          insert into audit_log (user_id, action, target, outcome, detail)
          values (
            admin, 'admin.read', what, 'ok',
            detail || jsonb_build_object('by', case when admin is null then 'operator' else 'admin' end)
          );
        end
        $$
        """
    )
    _as_owner(READER, f'alter function audit_guard(text, jsonb) owner to "{READER}"')
    op.execute("revoke all on function audit_guard(text, jsonb) from public")
    op.execute(f'grant execute on function audit_guard(text, jsonb) to "{AUDITOR}"')

    _as_owner(
        AUDITOR,
        f"""
        create or replace function audit_storage(object_keys text[]) returns table (problem text, item text)
        language sql volatile security definer set search_path = public, pg_catalog, pg_temp as $$
          select audit_guard('stored files against documents',
                             jsonb_build_object('objects', coalesce(cardinality(object_keys), 0)));
          {STORAGE_QUERY}
        $$
        """,
    )
    _as_owner(
        AUDITOR,
        f"""
        create or replace function audit_forget_documents(ids uuid[]) returns table (id uuid, user_id uuid)
        language sql security definer set search_path = public, pg_catalog, pg_temp as $$
          select audit_guard('documents whose file is missing', jsonb_build_object('remove', to_jsonb(ids)));
          {FORGET_QUERY}
        $$
        """,
    )
    op.execute(f'revoke execute on function audit_storage(text[]) from "{APP_ROLE}"')
    op.execute(f'grant execute on function audit_storage(text[]) to "{GATE}"')


def downgrade() -> None:
    op.execute(f'revoke execute on function audit_storage(text[]) from "{GATE}"')
    op.execute(f'grant execute on function audit_storage(text[]) to "{APP_ROLE}"')
    _as_owner(
        AUDITOR,
        f"""
        create or replace function audit_forget_documents(ids uuid[]) returns table (id uuid, user_id uuid)
        language sql security definer set search_path = public, pg_catalog, pg_temp as $$
          {FORGET_QUERY}
        $$
        """,
    )
    _as_owner(
        AUDITOR,
        f"""
        create or replace function audit_storage(object_keys text[]) returns table (problem text, item text)
        language sql stable security definer set search_path = public, pg_catalog, pg_temp as $$
          {STORAGE_QUERY}
        $$
        """,
    )
    op.execute("drop function audit_guard(text, jsonb)")
    op.execute(f"alter policy admin_logged on audit_log with check (user_id = {ADMIN_ID})")
