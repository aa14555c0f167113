"""The schema comes from Alembic, round-trips, and leaves the app role powerless over RLS."""

from sqlalchemy import text

from app.config import get_settings
from app.migrate import downgrade, upgrade
from app.models import TENANT_TABLES


async def test_downgrade_to_base_and_upgrade_again(services, owner_engine):
    import asyncio

    await asyncio.to_thread(downgrade, services.database_url, "base")
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("select to_regclass('public.documents')")) is None
    await asyncio.to_thread(upgrade, services.database_url)
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("select to_regclass('public.documents')")) is not None


async def test_every_tenant_table_has_forced_rls_and_a_policy_on_app_user_id(owner_engine):
    async with owner_engine.connect() as conn:
        discovered = set(
            (
                await conn.execute(
                    text(
                        "select table_name from information_schema.columns"
                        " where table_schema = 'public' and column_name = 'user_id'"
                    )
                )
            ).scalars()
        )
        assert discovered == set(TENANT_TABLES)
        for table in TENANT_TABLES:
            enabled, forced = (
                await conn.execute(
                    text("select relrowsecurity, relforcerowsecurity from pg_class where relname = :t"),
                    {"t": table},
                )
            ).one()
            assert enabled and forced, table
            policies = (
                await conn.execute(
                    text(
                        "select policyname, roles::text[], cmd, qual, with_check"
                        " from pg_policies where tablename = :t"
                    ),
                    {"t": table},
                )
            ).all()
            assert policies, table
            for name, roles, cmd, qual, with_check in policies:
                if roles == ["public"]:
                    assert "app.user_id" in (qual or "") + (with_check or ""), (table, name)
                else:
                    # The narrow exceptions: NOLOGIN roles that own SECURITY DEFINER functions.
                    role = get_settings().app_db_role
                    assert (table, name, tuple(roles), cmd) in {
                        ("documents", "ingestion_backlog", (f"{role}_system",), "SELECT"),
                        ("documents", "audit_read", (f"{role}_auditor",), "SELECT"),
                        ("chunks", "audit_read", (f"{role}_auditor",), "SELECT"),
                        ("documents", "audit_forget", (f"{role}_auditor",), "DELETE"),
                        ("documents", "admin_read", (f"{role}_admin_reader",), "SELECT"),
                        ("audit_log", "admin_read", (f"{role}_admin_reader",), "SELECT"),
                        ("audit_log", "admin_logged", (f"{role}_admin_reader",), "INSERT"),
                        ("usage_months", "admin_read", (f"{role}_admin_reader",), "SELECT"),
                    }


async def test_the_system_role_cannot_log_in_and_reads_only_status_columns(owner_engine):
    system = f"{get_settings().app_db_role}_system"
    async with owner_engine.connect() as conn:
        can_login = await conn.scalar(
            text("select rolcanlogin from pg_roles where rolname = :r"), {"r": system}
        )
        columns = set(
            (
                await conn.execute(
                    text(
                        "select column_name from information_schema.column_privileges"
                        " where grantee = :r and table_name = 'documents'"
                    ),
                    {"r": system},
                )
            ).scalars()
        )
    assert can_login is False
    status = {"id", "user_id", "status", "updated_at", "heartbeat_at", "chapters_read", "embedding_model"}
    assert columns == status


async def test_app_role_owns_nothing_and_cannot_bypass_rls(owner_engine):
    role = get_settings().app_db_role
    async with owner_engine.connect() as conn:
        superuser, bypass = (
            await conn.execute(
                text("select rolsuper, rolbypassrls from pg_roles where rolname = :r"), {"r": role}
            )
        ).one()
        assert not superuser and not bypass
        owned = await conn.scalar(
            text("select count(*) from pg_tables where schemaname = 'public' and tableowner = :r"),
            {"r": role},
        )
        assert owned == 0


async def test_chunks_have_vector_tsvector_and_the_indexes(owner_engine):
    async with owner_engine.connect() as conn:
        indexes = dict(
            (
                await conn.execute(
                    text("select indexname, indexdef from pg_indexes where tablename = 'chunks'")
                )
            ).all()
        )
        embedding_type = await conn.scalar(
            text(
                "select format_type(atttypid, atttypmod) from pg_attribute"
                " where attrelid = 'chunks'::regclass and attname = 'embedding'"
            )
        )
        generated = await conn.scalar(
            text(
                "select attgenerated::text from pg_attribute"
                " where attrelid = 'chunks'::regclass and attname = 'tsv'"
            )
        )
    assert embedding_type == f"vector({get_settings().embedding_dim})"
    assert generated == "s"
    for bucket in range(16):  # one HNSW index per bucket of tenants
        definition = indexes[f"ix_chunks_embedding_hnsw_{bucket:02d}"]
        assert "USING hnsw (embedding vector_cosine_ops)" in definition
        assert f"% 16) = {bucket})" in definition
    assert "ix_chunks_embedding_hnsw" not in indexes
    assert "USING gin (tsv)" in indexes["ix_chunks_tsv"]
    assert "(user_id, document_id)" in indexes["ix_chunks_user_id_document_id"]


async def test_the_models_and_the_migrations_agree(owner_engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import app.models  # noqa: F401
    from app.db import Base

    def diff(sync_conn):
        return compare_metadata(
            MigrationContext.configure(sync_conn, opts={"compare_type": True}), Base.metadata
        )

    async with owner_engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_answers_stored_before_0015_get_their_mode_from_what_they_hold(services, superuser_engine):
    """A refusal, an extractive answer and a generated one, written under 0014 (no `mode` column), are
    told apart by the upgrade; the questions keep none."""
    import asyncio
    import json
    import uuid

    await asyncio.to_thread(downgrade, services.database_url, "0014")
    user_id, conversation_id = uuid.uuid4(), uuid.uuid4()
    source = json.dumps([{"n": 1, "document_id": str(uuid.uuid4()), "page": 3}])
    rows = {
        "question": ("user", "What is a tree?", "[]"),
        "refusal": ("assistant", "This is not in your library (in S1). Try a wider scope.", "[]"),
        "extractive": ("assistant", "*No language model is configured — these are the passages*", source),
        "generated": ("assistant", "A tree is a connected acyclic graph [1].", source),
    }
    try:
        async with superuser_engine.begin() as conn:
            await conn.execute(
                text(
                    "insert into users (id, email, hashed_password, is_active, is_superuser, is_verified)"
                    " values (:id, :email, 'x', true, false, false)"
                ),
                {"id": user_id, "email": f"migrated-{user_id}@example.com"},
            )
            await conn.execute(
                text("insert into conversations (id, user_id) values (:id, :user)"),
                {"id": conversation_id, "user": user_id},
            )
            for n, (role, content, sources) in enumerate(rows.values()):
                await conn.execute(
                    text(
                        "insert into messages (user_id, conversation_id, role, content, sources, created_at)"
                        " values (:user, :conversation, :role, :content, cast(:sources as jsonb),"
                        " now() + make_interval(secs => :n))"
                    ),
                    {
                        "user": user_id,
                        "conversation": conversation_id,
                        "role": role,
                        "content": content,
                        "sources": sources,
                        "n": n,
                    },
                )
    finally:
        await asyncio.to_thread(upgrade, services.database_url)
    async with superuser_engine.connect() as conn:
        modes = (
            await conn.execute(
                text("select mode from messages where conversation_id = :c order by created_at"),
                {"c": conversation_id},
            )
        ).scalars()
        assert list(modes) == [None, "not_found", "extractive", "generated"]
