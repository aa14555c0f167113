"""The arq worker: `studyrag worker`, or `arq app.worker.WorkerSettings` with REDIS_URL and DATABASE_URL."""

import asyncio
import logging
import os

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import Worker
from sqlalchemy import delete
from sqlalchemy import func as sql_func

from app.admin.isolation import refuse_unsafe_app_role
from app.config import get_settings
from app.db import make_engine, make_sessionmaker, pool_options
from app.ingestion.embeddings import get_embedder
from app.ingestion.tasks import ingest_document, reconcile
from app.library.storage import make_storage
from app.models import RevokedToken

log = logging.getLogger(__name__)


async def purge_revoked_tokens(ctx) -> int:
    """Forget revoked tokens that have expired anyway: they are refused for their age alone."""
    async with ctx["sessionmaker"]() as session, session.begin():
        result = await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < sql_func.now()))
    return result.rowcount


async def startup(ctx) -> None:
    settings = get_settings()
    url = ctx.get("app_database_url")
    if url is None:
        if not settings.database_url:
            raise RuntimeError("Set DATABASE_URL, or start the worker with `studyrag worker`.")
        url = settings.app_url_for(settings.database_url)
    ctx["settings"] = settings
    ctx["engine"] = make_engine(url, **pool_options(settings))
    await refuse_unsafe_app_role(ctx["engine"])  # the worker writes every tenant's rows: RLS must bind it
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])
    ctx["storage"] = make_storage(settings)
    embedder = get_embedder(settings)
    if embedder.dimension != settings.embedding_dim:
        raise RuntimeError(
            f"The embedding model {embedder.model_name} makes {embedder.dimension}-d vectors but the "
            f"database stores {settings.embedding_dim}-d. Set EMBEDDING_DIM to match, then migrate."
        )
    ctx["embedder"] = embedder
    ctx["embed_lock"] = asyncio.Lock()


async def shutdown(ctx) -> None:
    await ctx["engine"].dispose()


_settings = get_settings()


class WorkerSettings:
    functions = [
        func(
            ingest_document,
            keep_result=0,  # the job id is the document's: once done, it may be queued again
            max_tries=_settings.ingest_max_tries,
            timeout=_settings.parse_timeout_seconds + 3600,
        ),
        purge_revoked_tokens,
    ]
    cron_jobs = [
        cron(purge_revoked_tokens, minute={7}, run_at_startup=False),
        cron(reconcile, second=set(range(0, 60, 5)), run_at_startup=True, unique=True, timeout=60),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL") or "redis://localhost:6379")
    max_jobs = _settings.ingest_max_jobs
    job_timeout = 30 * 60


def make_worker(redis_url: str, app_database_url: str, **options) -> Worker:
    """A worker with these settings on the given services, run in-process (tests, `bench/`)."""
    return Worker(
        functions=WorkerSettings.functions,
        on_startup=WorkerSettings.on_startup,
        on_shutdown=WorkerSettings.on_shutdown,
        redis_settings=RedisSettings.from_dsn(redis_url),
        ctx={"app_database_url": app_database_url},
        **options,
    )
