"""Admins: a logged read path to tenant metadata, storage checks, and the history of isolation audits.

Admin reads of tenant tables go through SECURITY DEFINER functions owned by a NOLOGIN role
(`<app>_admin_reader`) that may read only counts and metadata: sizes and passage counts of documents,
and the audit log. The functions may be executed only by another NOLOGIN role (`<app>_admin`) that the
app role holds without inheriting it, so a request must `SET LOCAL ROLE` to call them — no ordinary
request does. Every call checks that `app.admin_id` names an active admin and writes an `admin.read`
row to the audit log in the same statement: no read is unlogged.

The isolation audit's storage check compares the stored object keys (passed in) with documents through
`audit_storage()`, which returns only document ids and the keys it was given. Removing documents whose
file is gone (`audit_forget_documents`) is for the admin role only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.config import get_settings

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
AUDITOR = f"{APP_ROLE}_auditor"
READER = f"{APP_ROLE}_admin_reader"
GATE = f"{APP_ROLE}_admin"
ADMIN_ID = "nullif(current_setting('app.admin_id', true), '')::uuid"

READER_FUNCTIONS = (
    "admin_guard(text, jsonb)",
    "admin_user_usage()",
    "admin_audit_log(uuid, text, text, text, bigint, integer)",
)


def _create_role(name: str) -> None:
    op.execute(
        f"""
        do $$ begin
          if not exists (select from pg_roles where rolname = '{name}') then
            create role "{name}" nologin nosuperuser nobypassrls nocreatedb nocreaterole;
          end if;
        end $$
        """
    )
    op.execute(f'grant "{name}" to current_user')  # so the owner may hand functions over


def _hand_over(function: str, owner: str) -> None:
    # A new owner needs CREATE on the schema at the moment of the hand-over, not after.
    op.execute(f'grant create on schema public to "{owner}"')
    op.execute(f'alter function {function} owner to "{owner}"')
    op.execute(f'revoke create on schema public from "{owner}"')
    op.execute(f"revoke all on function {function} from public")


def upgrade() -> None:
    # Tokens issued before this moment are refused: set when an admin deactivates the account.
    op.add_column("users", sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "isolation_audit_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("run_by", sa.Uuid(), nullable=True),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("results", sa.dialects.postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_isolation_audit_runs_started_at", "isolation_audit_runs", ["started_at"])
    op.execute(f'grant select, insert on isolation_audit_runs to "{APP_ROLE}"')

    _create_role(READER)
    _create_role(GATE)
    op.execute(f'grant usage on schema public to "{READER}"')
    op.execute(f'grant select (id, is_superuser, is_active) on users to "{READER}"')
    op.execute(f'grant select (user_id, size_bytes, chunk_count) on documents to "{READER}"')
    op.execute(f'grant select, insert on audit_log to "{READER}"')
    op.execute(f'create policy admin_read on documents for select to "{READER}" using (true)')
    op.execute(f'create policy admin_read on audit_log for select to "{READER}" using (true)')
    op.execute(
        f'create policy admin_logged on audit_log for insert to "{READER}" with check (user_id = {ADMIN_ID})'
    )
    op.execute(
        f"""
        create function admin_guard(what text, detail jsonb) returns uuid
        language plpgsql security definer set search_path = public, pg_catalog, pg_temp as $$
        declare
          admin uuid := {ADMIN_ID};
        begin
          if admin is null or not exists (
            select from users u where u.id = admin and u.is_superuser and u.is_active
          ) then
            raise exception 'the admin read path is for active admins only' using errcode = '42501';
          end if;
          insert into audit_log (user_id, action, target, outcome, detail)
          values (admin, 'admin.read', what, 'ok', detail);
          return admin;
        end
        $$
        """
    )
    op.execute(
        """
        create function admin_user_usage()
        returns table (user_id uuid, documents bigint, bytes bigint, chunks bigint)
        language plpgsql security definer set search_path = public, pg_catalog, pg_temp as $$
        begin
          perform admin_guard('usage of every user', '{}'::jsonb);
          return query
            select d.user_id, count(*), coalesce(sum(d.size_bytes), 0)::bigint,
                   coalesce(sum(d.chunk_count), 0)::bigint
            from documents d group by d.user_id;
        end
        $$
        """
    )
    op.execute(
        """
        create function admin_audit_log(
          p_user uuid, p_email text, p_action text, p_outcome text, p_before bigint, p_limit integer
        )
        returns table (
          id bigint, created_at timestamptz, user_id uuid, action text, target text, outcome text,
          ip text, detail jsonb
        )
        language plpgsql security definer set search_path = public, pg_catalog, pg_temp as $$
        begin
          perform admin_guard(
            'audit log',
            jsonb_strip_nulls(jsonb_build_object(
              'user', p_user, 'email', p_email, 'action', p_action, 'outcome', p_outcome
            ))
          );
          return query
            select a.id, a.created_at, a.user_id, a.action::text, a.target, a.outcome::text, a.ip::text,
                   a.detail
            from audit_log a
            -- A user's events, and attempts on their email by someone not logged in (failed log-ins).
            where ((p_user is null and p_email is null) or a.user_id = p_user or a.target = p_email)
              and (p_action is null or a.action = p_action)
              and (p_outcome is null or a.outcome = p_outcome)
              and (p_before is null or a.id < p_before)
            order by a.id desc
            limit least(greatest(p_limit, 1), 500);
        end
        $$
        """
    )
    for function in READER_FUNCTIONS:
        _hand_over(function, READER)
    for function in READER_FUNCTIONS[1:]:
        op.execute(f'grant execute on function {function} to "{GATE}"')

    # The auditor (0005) compares stored objects with documents; it may also read which users exist.
    op.execute(f'grant select (id) on users to "{AUDITOR}"')
    op.execute(f'grant delete on documents to "{AUDITOR}"')
    op.execute(f'create policy audit_forget on documents for delete to "{AUDITOR}" using (true)')
    op.execute(
        """
        create function audit_storage(object_keys text[]) returns table (problem text, item text)
        language sql stable security definer set search_path = public, pg_catalog, pg_temp as $$
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
        $$
        """
    )
    op.execute(
        """
        create function audit_forget_documents(ids uuid[]) returns table (id uuid, user_id uuid)
        language sql security definer set search_path = public, pg_catalog, pg_temp as $$
          delete from documents d where d.id = any(ids) returning d.id, d.user_id
        $$
        """
    )
    _hand_over("audit_storage(text[])", AUDITOR)
    _hand_over("audit_forget_documents(uuid[])", AUDITOR)
    op.execute(f'grant execute on function audit_storage(text[]) to "{APP_ROLE}"')
    op.execute(f'grant execute on function audit_forget_documents(uuid[]) to "{GATE}"')

    # The app role may become the admin role for a transaction, but never holds its powers otherwise.
    op.execute(f'grant "{GATE}" to "{APP_ROLE}" with inherit false, set true')


def downgrade() -> None:
    op.execute(f'revoke "{GATE}" from "{APP_ROLE}"')
    op.execute("drop function audit_forget_documents(uuid[])")
    op.execute("drop function audit_storage(text[])")
    op.execute("drop policy audit_forget on documents")
    op.execute(f'revoke delete on documents from "{AUDITOR}"')
    op.execute(f'revoke all on users from "{AUDITOR}"')
    for function in reversed(READER_FUNCTIONS):
        op.execute(f"drop function {function}")
    op.execute("drop policy admin_logged on audit_log")
    op.execute("drop policy admin_read on audit_log")
    op.execute("drop policy admin_read on documents")
    for table in ("users", "documents", "audit_log"):
        op.execute(f'revoke all on {table} from "{READER}"')
    op.execute(f'revoke usage on schema public from "{READER}"')
    op.drop_index("ix_isolation_audit_runs_started_at", table_name="isolation_audit_runs")
    op.drop_table("isolation_audit_runs")
    op.drop_column("users", "sessions_valid_after")
