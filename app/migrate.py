"""Run Alembic migrations programmatically, as the database owner."""

import asyncio

from alembic import command
from alembic.config import Config

from app.config import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_to_head(database_url: str) -> None:
    # Alembic's async env runs its own event loop; keep it off ours.
    await asyncio.to_thread(upgrade, database_url)
    await match_embedding_dimension(database_url)


async def match_embedding_dimension(database_url: str) -> bool:
    """After the migrations: make chunks.embedding follow EMBEDDING_DIM (see app.ingestion.dimension)."""
    from app.config import get_settings
    from app.db import make_engine
    from app.ingestion.dimension import ensure_embedding_dimension

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            return await ensure_embedding_dimension(conn, get_settings().embedding_dim)
    finally:
        await engine.dispose()
