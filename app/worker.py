"""The arq worker: `studyrag worker`, or `arq app.worker.WorkerSettings` with REDIS_URL and DATABASE_URL."""

import asyncio
import logging
import os
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, cast

from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Function, Worker
from sqlalchemy import CursorResult, delete
from sqlalchemy import func as sql_func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.admin.isolation import refuse_unsafe_app_role
from app.config import get_settings
from app.db import make_engine, make_sessionmaker, pool_options
from app.ingestion.embeddings import get_embedder, vector_space
from app.ingestion.tasks import JobContext, ingest_document, reconcile
from app.library.storage import make_storage
from app.models import RevokedToken
from app.sentry import init_sentry

log = logging.getLogger(__name__)


async def purge_revoked_tokens(ctx: JobContext) -> int:
    """Forget revoked tokens that have expired anyway: they are refused for their age alone."""
    sessionmaker: async_sessionmaker[AsyncSession] = ctx["sessionmaker"]
    async with sessionmaker() as session, session.begin():
        # A DELETE's result is a CursorResult (it has the rowcount); AsyncSession.execute is typed only
        # as returning a Result, so the cast says what SQLAlchemy returns here.
        result = cast(
            CursorResult[Any],
            await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < sql_func.now())),
        )
    return result.rowcount


async def startup(ctx: JobContext) -> None:
    settings = get_settings()
    url = ctx.get("app_database_url")
    if url is None:
        if not settings.database_url:
            raise RuntimeError("Set DATABASE_URL, or start the worker with `studyrag worker`.")
        url = settings.app_url_for(settings.database_url)
    ctx["settings"] = settings
    init_sentry(settings, component="worker")
    if settings.worker_metrics_port:
        token = settings.metrics_token
        ctx["metrics_server"] = metrics.serve_worker_metrics(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            token.get_secret_value() if token else None,
        )
    ctx["engine"] = make_engine(url, **pool_options(settings))
    metrics.watch_pool(ctx["engine"], process="worker", pool_size=settings.db_pool_size)
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
    ctx["vector_space"] = vector_space(embedder.model_name, settings.embedding_headers)
    ctx["embed_lock"] = asyncio.Lock()
    ctx["running_documents"] = set()  # shared with every job's ctx (arq copies the dict, not the set)
    await _reconcile_quietly(
        ctx
    )  # before the first poll: a burst worker (tests, bench) sees what it requeues
    ctx["reconciler"] = asyncio.create_task(_reconcile_every(ctx, RECONCILE_SECONDS))


RECONCILE_SECONDS = 5


async def _reconcile_quietly(ctx: JobContext) -> None:
    try:
        await reconcile(ctx)
    except Exception:  # the next round tries again
        log.exception("reconciler failed")


async def _reconcile_every(ctx: JobContext, seconds: float) -> None:
    """The reconciler beside the jobs, not as an arq cron job: a cron job waits for a free job slot,
    and a worker busy with long jobs (say, those it took over from a dead worker's queue) would not
    notice a dead job for minutes."""
    while True:
        await asyncio.sleep(seconds)
        await _reconcile_quietly(ctx)


async def shutdown(ctx: JobContext) -> None:
    if reconciler := ctx.get("reconciler"):
        reconciler.cancel()
        with suppress(asyncio.CancelledError):
            await reconciler
    await ctx["engine"].dispose()
    if server := ctx.get("metrics_server"):
        server.shutdown()
        server.server_close()
    metrics.process_ended()


_settings = get_settings()


class WorkerSettings:
    # Typed as arq's WorkerSettingsBase declares them, so that run_worker takes this class.
    functions: Sequence[Function | WorkerCoroutine] = [
        func(
            ingest_document,
            keep_result=0,  # the job id is the document's: once done, it may be queued again
            max_tries=_settings.ingest_max_tries,
            timeout=_settings.parse_timeout_seconds + 3600,
        ),
        purge_revoked_tokens,
    ]
    cron_jobs: Sequence[CronJob] | None = [
        cron(purge_revoked_tokens, minute={7}, run_at_startup=False),
    ]
    on_startup: StartupShutdown | None = startup
    on_shutdown: StartupShutdown | None = shutdown
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL") or "redis://localhost:6379")
    max_jobs = _settings.ingest_max_jobs
    job_timeout = 30 * 60


def make_worker(redis_url: str, app_database_url: str, **options: Any) -> Worker:
    """A worker with these settings on the given services, run in-process (tests, `bench/`)."""
    return Worker(
        functions=WorkerSettings.functions,
        on_startup=WorkerSettings.on_startup,
        on_shutdown=WorkerSettings.on_shutdown,
        redis_settings=RedisSettings.from_dsn(redis_url),
        ctx={"app_database_url": app_database_url},
        **options,
    )
