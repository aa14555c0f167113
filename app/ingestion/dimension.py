"""Keep `chunks.embedding` at the configured model's dimension (EMBEDDING_DIM).

The first migration creates the column at EMBEDDING_DIM. When a deployment later switches to a model
of another dimension, `studyrag migrate` calls `ensure_embedding_dimension`: the old vectors cannot be
compared with new ones, so they are dropped, the column and its HNSW index are rebuilt, and every
ready document goes back to `uploaded`, which the worker's reconciler re-ingests. Runs as the owner.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_CURRENT = text(
    "select atttypmod from pg_attribute where attrelid = 'chunks'::regclass and attname = 'embedding'"
)


async def embedding_dimension(conn: AsyncConnection) -> int:
    return int(await conn.scalar(_CURRENT))


async def ensure_embedding_dimension(conn: AsyncConnection, dimension: int) -> bool:
    """Rebuild for `dimension` if the column has another; True when it did. Call inside a transaction."""
    if await embedding_dimension(conn) == dimension:
        return False
    # The HNSW indexes (one per bucket of tenants, migration 0011), made again as they were.
    hnsw = (
        await conn.execute(
            text(
                "select indexname, indexdef from pg_indexes"
                " where tablename = 'chunks' and indexdef ilike '% using hnsw %'"
            )
        )
    ).all()
    for name, _ in hnsw:
        await conn.execute(text(f'drop index "{name}"'))
    await conn.execute(text("truncate chunks"))  # TRUNCATE is not filtered by row-level security
    await conn.execute(text(f"alter table chunks alter column embedding type vector({int(dimension)})"))
    for _, definition in hnsw:
        await conn.execute(text(definition))
    # The owner is bound by the forced policies too; lift them for this one statement's transaction.
    await conn.execute(text("alter table documents no force row level security"))
    await conn.execute(
        text(
            "update documents set status = 'uploaded', pages_done = 0, chunk_count = 0,"
            " embedding_model = null, updated_at = now() - interval '1 day'"
            " where status in ('ready', 'embedding', 'parsing', 'queued')"
        )
    )
    await conn.execute(text("alter table documents force row level security"))
    return True
