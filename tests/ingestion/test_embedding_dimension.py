"""Switching to a model of another dimension rebuilds the vector column and re-queues every document."""

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import make_engine
from app.embedded import _bootstrap_database
from app.ingestion.dimension import embedding_dimension, ensure_embedding_dimension
from app.migrate import upgrade


async def test_a_new_dimension_drops_old_vectors_and_requeues(services):
    url = make_url(services.database_url)
    name = f"studyrag_dim_{uuid.uuid4().hex[:8]}"
    await _bootstrap_database(url.query["host"], name)
    owner_url = url.set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, owner_url)
    superuser = make_engine(url.set(database=name, username="postgres").render_as_string(hide_password=False))
    owner = make_engine(owner_url)
    try:
        user_id, doc_id = uuid.uuid4(), uuid.uuid4()
        async with superuser.begin() as conn:
            await conn.execute(
                text(
                    "insert into users (id, email, hashed_password, is_active, is_superuser, is_verified)"
                    " values (:u, 'dim@example.com', 'x', true, false, false)"
                ),
                {"u": user_id},
            )
            await conn.execute(
                text(
                    "insert into documents (id, user_id, semester, subject, book, filename, storage_key,"
                    " sha256, size_bytes, status, embedding_model)"
                    " values (:d, :u, 'S', 'S', 'B', 'f.pdf', 'k', 'h', 1, 'ready', 'old')"
                ),
                {"d": doc_id, "u": user_id},
            )
            await conn.execute(
                text(
                    "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text,"
                    " embedding) values (:u, :d, 0, 1, 1, 't', :v)"
                ),
                {"u": user_id, "d": doc_id, "v": str([0.1] * 384)},
            )

        async with owner.begin() as conn:
            assert await ensure_embedding_dimension(conn, 384) is False  # already right: nothing happens
            assert await ensure_embedding_dimension(conn, 8) is True
        async with owner.begin() as conn:
            assert await embedding_dimension(conn) == 8
            assert await ensure_embedding_dimension(conn, 8) is False

        async with superuser.connect() as conn:
            assert await conn.scalar(text("select count(*) from chunks")) == 0
            status, model = (await conn.execute(text("select status, embedding_model from documents"))).one()
            assert (status, model) == ("uploaded", None)
            forced = await conn.scalar(
                text("select relforcerowsecurity from pg_class where relname = 'documents'")
            )
            assert forced is True
            indexes = (
                await conn.execute(
                    text("select indexdef from pg_indexes where indexname like 'ix_chunks_embedding_hnsw%'")
                )
            ).scalars()
            hnsw = [i for i in indexes if "hnsw (embedding vector_cosine_ops)" in i]
            assert len(hnsw) == 16 and all("% 16) = " in i for i in hnsw)  # one per bucket of tenants
    finally:
        await owner.dispose()
        await superuser.dispose()
        admin = make_engine(
            url.set(username="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )
        async with admin.connect() as conn:
            await conn.execute(text(f'drop database "{name}" with (force)'))
        await admin.dispose()
