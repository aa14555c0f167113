"""Async Alembic environment. Runs as the database owner, never as the app role.

The URL comes from `config.attributes["database_url"]` (set by `studyrag migrate` and the tests), else
DATABASE_URL; with neither, the embedded Postgres is started for the duration of the migration.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (registers every table)
from app.config import asyncpg_url, get_settings
from app.db import Base
from app.embedded import EmbeddedServices

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = config.attributes.get("database_url") or get_settings().database_url
    services = None
    if not url:
        services = EmbeddedServices(get_settings().model_copy(update={"redis_url": "unused"}))
        url = (await services.start()).database_url
    engine = create_async_engine(asyncpg_url(url))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()
        if services:
            services.stop()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run them against a database.")
run_migrations_online()
