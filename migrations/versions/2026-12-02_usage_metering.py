"""Usage per user per month, the admin's read of it, and per-user monthly limits.

`usage_months` is a tenant table like the others (row-level security forced, a policy on
`app.user_id`): a user's requests and the worker acting for them add to their own row. Admins read
every user's counts only through `admin_usage(month)`, a SECURITY DEFINER function on the logged admin
path of 0006: it checks `app.admin_id` names an active admin and writes `admin.read` first, and it
returns counts, never content. Storage, documents and passages are what the user held at most that
month; for the current month at least what they hold now, and for a month without a row, what they
held at their last recorded month.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.config import get_settings

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = get_settings().app_db_role
READER = f"{APP_ROLE}_admin_reader"
GATE = f"{APP_ROLE}_admin"
CURRENT_USER = "nullif(current_setting('app.user_id', true), '')::uuid"
COUNTERS = ("questions", "llm_tokens_in", "llm_tokens_out", "embedding_tokens", "documents_ingested")
FUNCTION = "admin_usage(date)"


def _count(name: str, kind=sa.BigInteger) -> sa.Column:
    return sa.Column(name, kind(), server_default="0", nullable=False)


def upgrade() -> None:
    op.add_column("users", sa.Column("question_limit", sa.Integer(), nullable=True))
    op.add_column("users", sa.Column("llm_token_limit", sa.BigInteger(), nullable=True))
    op.create_table(
        "usage_months",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        _count("questions", sa.Integer),
        _count("llm_tokens_in"),
        _count("llm_tokens_out"),
        _count("embedding_tokens"),
        _count("documents_ingested", sa.Integer),
        _count("pages_ingested"),
        _count("storage_bytes"),
        _count("documents", sa.Integer),
        _count("passages"),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_usage_months_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "month", name="pk_usage_months"),
    )
    op.execute("alter table usage_months enable row level security")
    op.execute("alter table usage_months force row level security")
    op.execute(
        "create policy tenant_isolation on usage_months "
        f"using (user_id = {CURRENT_USER}) with check (user_id = {CURRENT_USER})"
    )
    op.execute(f'grant select, insert, update on usage_months to "{APP_ROLE}"')

    op.execute(f'grant select on usage_months to "{READER}"')
    op.execute(f'create policy admin_read on usage_months for select to "{READER}" using (true)')
    op.execute(
        """
        create function admin_usage(p_month date)
        returns table (
          user_id uuid, questions bigint, llm_tokens_in bigint, llm_tokens_out bigint,
          embedding_tokens bigint, documents_ingested bigint, pages_ingested bigint,
          storage_bytes bigint, documents bigint, passages bigint
        )
        language plpgsql security definer set search_path = public, pg_catalog, pg_temp as $$
        declare
          this_month boolean := p_month = date_trunc('month', now() at time zone 'utc')::date;
        begin
          perform admin_guard('usage of every user', jsonb_build_object('month', p_month));
          return query
            select u.id,
                   coalesce(m.questions, 0)::bigint, coalesce(m.llm_tokens_in, 0),
                   coalesce(m.llm_tokens_out, 0), coalesce(m.embedding_tokens, 0),
                   coalesce(m.documents_ingested, 0)::bigint, coalesce(m.pages_ingested, 0),
                   case when this_month then greatest(coalesce(m.storage_bytes, 0), live.bytes)
                        else coalesce(m.storage_bytes, earlier.storage_bytes, 0) end,
                   case when this_month then greatest(coalesce(m.documents, 0), live.documents)
                        else coalesce(m.documents, earlier.documents, 0) end::bigint,
                   case when this_month then greatest(coalesce(m.passages, 0), live.passages)
                        else coalesce(m.passages, earlier.passages, 0) end
            from users u
            left join usage_months m on m.user_id = u.id and m.month = p_month
            left join lateral (
              select e.storage_bytes, e.documents, e.passages from usage_months e
              where e.user_id = u.id and e.month < p_month order by e.month desc limit 1
            ) earlier on true
            left join lateral (
              select count(*) as documents, coalesce(sum(d.size_bytes), 0)::bigint as bytes,
                     coalesce(sum(d.chunk_count), 0)::bigint as passages
              from documents d where d.user_id = u.id and this_month
            ) live on true;
        end
        $$
        """
    )
    op.execute(f'grant create on schema public to "{READER}"')
    op.execute(f'alter function {FUNCTION} owner to "{READER}"')
    op.execute(f'revoke create on schema public from "{READER}"')
    op.execute(f"revoke all on function {FUNCTION} from public")
    op.execute(f'grant execute on function {FUNCTION} to "{GATE}"')


def downgrade() -> None:
    op.execute(f"drop function {FUNCTION}")
    op.execute("drop policy admin_read on usage_months")
    op.drop_table("usage_months")
    op.drop_column("users", "llm_token_limit")
    op.drop_column("users", "question_limit")
