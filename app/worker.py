"""The arq worker: `studyrag worker` (or `arq app.worker.WorkerSettings` with REDIS_URL set)."""

import logging
import os

from arq import cron
from arq.connections import RedisSettings
from sqlalchemy import delete, func

from app.config import get_settings
from app.db import make_engine, make_sessionmaker
from app.models import RevokedToken

log = logging.getLogger(__name__)


async def purge_revoked_tokens(ctx) -> int:
    """Forget revoked tokens that have expired anyway: they are refused for their age alone."""
    async with ctx["sessionmaker"]() as session, session.begin():
        result = await session.execute(delete(RevokedToken).where(RevokedToken.expires_at < func.now()))
    return result.rowcount


async def startup(ctx) -> None:
    url = ctx.get("app_database_url")
    if url is None:
        settings = get_settings()
        if not settings.database_url:
            raise RuntimeError("Set DATABASE_URL, or start the worker with `studyrag worker`.")
        url = settings.app_url_for(settings.database_url)
    ctx["engine"] = make_engine(url)
    ctx["sessionmaker"] = make_sessionmaker(ctx["engine"])


async def shutdown(ctx) -> None:
    await ctx["engine"].dispose()


class WorkerSettings:
    functions = [purge_revoked_tokens]
    cron_jobs = [cron(purge_revoked_tokens, minute={7}, run_at_startup=False)]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL") or "redis://localhost:6379")
    max_jobs = 4
    job_timeout = 30 * 60
