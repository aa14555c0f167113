"""Row-level security holds in the database itself, whatever the application code forgets."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import make_sessionmaker
from app.models import TENANT_TABLES
from app.tenancy import Tenant, bind_tenant
from tests.support.accounts import register


async def _document(session, user_id: str, name: str) -> str:
    doc_id = str(uuid.uuid4())
    await session.execute(
        text(
            "insert into documents (id, user_id, semester, subject, book, filename, storage_key, sha256,"
            " size_bytes) values (:id, :user_id, 'Y1S1', 'Logic', 'forallx', :name, :key, :sha, 100)"
        ),
        {
            "id": doc_id,
            "user_id": user_id,
            "name": name,
            "key": f"users/{user_id}/raw_data/Y1S1/Logic/forallx/{name}",
            "sha": uuid.uuid4().hex,
        },
    )
    return doc_id


@pytest.fixture
async def two_tenants(client, app_engine):
    """Users A and B, each with one document, one chunk and its term count, one conversation and one
    message, one deck with one card and its review, and a month of usage."""
    a, b = await register(client, name="A"), await register(client, name="B")
    sessionmaker = make_sessionmaker(app_engine)
    for user in (a, b):
        async with sessionmaker() as session, session.begin():
            await bind_tenant(session, Tenant(uuid.UUID(user["id"])))
            doc_id = await _document(session, user["id"], f"{user['id']}.pdf")
            await session.execute(
                text(
                    "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text)"
                    " values (:u, :d, 0, 1, 1, :text)"
                ),
                {"u": user["id"], "d": doc_id, "text": f"secret text of {user['id']}"},
            )
            await session.execute(
                text(
                    "insert into document_terms (user_id, document_id, lexeme, passages)"
                    " values (:u, :d, 'secret', 1)"
                ),
                {"u": user["id"], "d": doc_id},
            )
            conv_id = str(uuid.uuid4())
            await session.execute(
                text("insert into conversations (id, user_id, title) values (:c, :u, 'a chat')"),
                {"c": conv_id, "u": user["id"]},
            )
            await session.execute(
                text(
                    "insert into messages (user_id, conversation_id, role, content)"
                    " values (:u, :c, 'user', 'question')"
                ),
                {"c": conv_id, "u": user["id"]},
            )
            deck_id, card_id = str(uuid.uuid4()), str(uuid.uuid4())
            await session.execute(
                text(
                    "insert into decks (id, user_id, document_id, title, made_by)"
                    " values (:k, :u, :d, 'deck', 'offline')"
                ),
                {"k": deck_id, "u": user["id"], "d": doc_id},
            )
            await session.execute(
                text(
                    "insert into cards (id, user_id, deck_id, position, front, back, kind, page, quote)"
                    " values (:c, :u, :k, 0, 'front', 'back', 'term', 1, 'quote')"
                ),
                {"c": card_id, "u": user["id"], "k": deck_id},
            )
            await session.execute(
                text(
                    "insert into reviews (user_id, card_id, grade, reviewed_at, due)"
                    " values (:u, :c, 3, now(), now())"
                ),
                {"c": card_id, "u": user["id"]},
            )
            await session.execute(
                text("insert into usage_months (user_id, month, questions) values (:u, current_date, 1)"),
                {"u": user["id"]},
            )
            user["document_id"], user["deck_id"], user["card_id"] = doc_id, deck_id, card_id
    return a, b


async def test_with_no_user_set_every_tenant_table_is_empty(two_tenants, app_engine, superuser_engine):
    async with superuser_engine.connect() as conn:
        for table in TENANT_TABLES:
            assert await conn.scalar(text(f"select count(*) from {table}")) > 0, table
    async with app_engine.connect() as conn:
        for table in TENANT_TABLES:
            assert await conn.scalar(text(f"select count(*) from {table}")) == 0, table


async def test_a_raw_select_without_where_returns_only_my_rows(two_tenants, app_engine):
    a, b = two_tenants
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        for table in (
            "documents",
            "chunks",
            "document_terms",
            "conversations",
            "messages",
            "decks",
            "cards",
            "reviews",
        ):
            owners = set((await session.execute(text(f"select user_id::text from {table}"))).scalars())
            assert owners == {a["id"]}, table
        texts = (await session.execute(text("select text from chunks"))).scalars().all()
        assert texts == [f"secret text of {a['id']}"]
        # B's document by its id: not there.
        found = await session.scalar(
            text("select count(*) from documents where id = :id"), {"id": b["document_id"]}
        )
        assert found == 0


async def test_writing_a_row_for_another_user_fails(two_tenants, app_engine):
    a, b = two_tenants
    sessionmaker = make_sessionmaker(app_engine)
    async with sessionmaker() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        with pytest.raises(DBAPIError, match="row-level security"):
            await _document(session, b["id"], "planted.pdf")
    async with sessionmaker() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        # Moving my own row to B is refused too.
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.execute(text("update documents set user_id = :b"), {"b": b["id"]})
    async with sessionmaker() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        # Updating or deleting B's rows touches nothing.
        result = await session.execute(text("delete from documents where id = :id"), {"id": b["document_id"]})
        assert result.rowcount == 0
        await session.rollback()


async def test_a_chunk_or_term_count_cannot_point_at_another_users_document(two_tenants, app_engine):
    a, b = two_tenants
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        with pytest.raises(DBAPIError, match="foreign key"):
            await session.execute(
                text(
                    "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text)"
                    " values (:a, :doc_of_b, 5, 1, 1, 'x')"
                ),
                {"a": a["id"], "doc_of_b": b["document_id"]},
            )
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        with pytest.raises(DBAPIError, match="foreign key"):
            await session.execute(
                text(
                    "insert into document_terms (user_id, document_id, lexeme, passages)"
                    " values (:a, :doc_of_b, 'planted', 1)"
                ),
                {"a": a["id"], "doc_of_b": b["document_id"]},
            )


@pytest.mark.parametrize(
    "statement",
    [
        "insert into decks (user_id, document_id, title, made_by)"
        " values (:a, :document_of_b, 'x', 'offline')",
        "insert into cards (user_id, deck_id, position, front, back, kind, page, quote)"
        " values (:a, :deck_of_b, 0, 'f', 'b', 'term', 1, 'q')",
        "insert into reviews (user_id, card_id, grade, reviewed_at, due)"
        " values (:a, :card_of_b, 3, now(), now())",
    ],
    ids=["deck on B's document", "card in B's deck", "review of B's card"],
)
async def test_a_deck_card_or_review_cannot_point_at_another_users(two_tenants, app_engine, statement):
    a, b = two_tenants
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        with pytest.raises(DBAPIError, match="foreign key"):
            await session.execute(
                text(statement),
                {
                    "a": a["id"],
                    "document_of_b": b["document_id"],
                    "deck_of_b": b["deck_id"],
                    "card_of_b": b["card_id"],
                },
            )


async def test_the_tenant_does_not_leak_into_the_next_transaction(two_tenants, app_engine):
    a, _ = two_tenants
    # One connection, used first for A, then for nobody: the setting must not carry over.
    async with app_engine.connect() as conn:
        async with conn.begin():
            await conn.execute(text("select set_config('app.user_id', :id, true)"), {"id": a["id"]})
            assert await conn.scalar(text("select count(*) from documents")) == 1
        async with conn.begin():
            assert await conn.scalar(text("select count(*) from documents")) == 0


async def test_a_session_keeps_its_tenant_across_commits(two_tenants, app_engine):
    a, _ = two_tenants
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(a["id"])))
        assert await session.scalar(text("select count(*) from documents")) == 1
        await session.commit()
        assert await session.scalar(text("select count(*) from documents")) == 1
    async with make_sessionmaker(app_engine)() as session:
        assert await session.scalar(text("select count(*) from documents")) == 0


async def test_the_app_refuses_to_start_as_a_role_that_row_level_security_does_not_bind(services):
    """Connected as the cluster superuser (which bypasses every policy), the app does not start, and
    says why; as its own role it does."""
    import os

    from fastapi import FastAPI
    from sqlalchemy.engine import make_url

    from app.admin.isolation import UnsafeDatabaseRole
    from app.config import get_settings
    from app.main import lifespan

    superuser = make_url(services.database_url).set(username="postgres").render_as_string(False)
    saved = os.environ.get("APP_DATABASE_URL")
    os.environ["APP_DATABASE_URL"] = superuser
    get_settings.cache_clear()
    try:
        with pytest.raises(UnsafeDatabaseRole, match=r"'postgres' .*is a superuser.*APP_DATABASE_URL"):
            async with lifespan(FastAPI()):
                pass
    finally:
        if saved is None:
            os.environ.pop("APP_DATABASE_URL")
        else:
            os.environ["APP_DATABASE_URL"] = saved
        get_settings.cache_clear()
    async with lifespan(FastAPI()):
        pass


async def test_the_worker_refuses_to_start_as_a_role_that_row_level_security_does_not_bind(services):
    from sqlalchemy.engine import make_url

    from app.admin.isolation import UnsafeDatabaseRole
    from app.worker import make_worker

    superuser = make_url(services.database_url).set(username="postgres").render_as_string(False)
    worker = make_worker(services.redis_url, superuser, burst=True, handle_signals=False)
    try:
        with pytest.raises(UnsafeDatabaseRole, match=r"'postgres' .*is a superuser"):
            await worker.main()
    finally:
        await worker.close()
