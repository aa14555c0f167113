"""The web app: `create_app()` wires the lifespan (services, engine, queue, storage) and the routers."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq import create_pool
from arq.connections import RedisSettings
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from app import audit_log, health, metrics
from app.admin import api as admin_api
from app.admin import pages as admin_pages
from app.admin.isolation import UnsafeDatabaseRole, refuse_unsafe_app_role
from app.auth import pages as auth_pages
from app.auth import routes as auth_routes
from app.auth.renewal import SessionRenewalMiddleware
from app.chat import api as chat_api
from app.chat import pages as chat_pages
from app.config import PROJECT_ROOT, get_settings
from app.db import make_engine, make_sessionmaker, pool_options
from app.embedded import EmbeddedServices
from app.errors import ReadableTooLargeMiddleware, install_error_handlers
from app.ingestion import api as ingestion_api
from app.ingestion import pages as ingestion_pages
from app.ingestion.embeddings import get_embedder
from app.library import api as library_api
from app.library import pages as library_pages
from app.library.storage import make_storage
from app.logs import RequestLogMiddleware, RouteRecorderMiddleware, configure_logging
from app.migrate import upgrade_to_head
from app.overload import Gate, install_overload_handlers
from app.security.csrf import CrossSiteRequestMiddleware
from app.security.headers import SecurityHeadersMiddleware
from app.security.rate_limit import RateLimiter
from app.security.text_guard import NulGuardMiddleware
from app.sentry import init_sentry
from app.study import api as study_api
from app.study import making
from app.study import pages as study_pages
from app.usage import api as usage_api

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    services = EmbeddedServices(settings)
    urls = await services.start()
    if not settings.database_url:
        # Embedded database: nobody else runs migrations for it.
        await upgrade_to_head(urls.database_url)
    app.state.engine = make_engine(urls.app_database_url, **pool_options(settings))
    metrics.watch_pool(app.state.engine, process="web", pool_size=settings.db_pool_size)
    try:
        await refuse_unsafe_app_role(app.state.engine)  # row-level security binds no other role
    except UnsafeDatabaseRole:
        await app.state.engine.dispose()
        services.stop()
        raise
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.arq = await create_pool(RedisSettings.from_dsn(urls.redis_url))
    app.state.storage = make_storage(settings)
    app.state.rate_limiter = RateLimiter(urls.redis_url, settings)
    refusal_counts = audit_log.write_refusal_counts_in_the_background(app.state.arq, app.state.sessionmaker)
    # The question embedder loads now, not on a student's first question (loading holds the GIL for
    # seconds, long enough for uvicorn to take a busy process for dead).
    question_embedder = get_embedder(settings, threads=settings.question_embedding_threads)
    await asyncio.to_thread(getattr(question_embedder, "load", lambda: None))
    app.state.question_embedder = question_embedder  # one for every question (and its HTTP client)
    app.state.embed_gate = Gate(
        "the question embedder",
        capacity=settings.embed_concurrency,
        max_waiting=settings.overload_queue,
        timeout=settings.overload_wait_seconds,
        retry_after=settings.overload_retry_after,
    )
    making.start()  # the study child, spawned now rather than on a student's first deck
    try:
        yield
    finally:
        making.stop()
        refusal_counts.cancel()
        await app.state.arq.aclose()
        await app.state.engine.dispose()
        services.stop()
        metrics.process_ended()


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_format_used, settings.log_level)
    init_sentry(settings, component="web")
    app = FastAPIOffline(
        title="StudyRAG",
        summary="Ask your own textbooks; every answer cites book and page.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_overload_handlers(app, pool_retry_after=settings.overload_retry_after)
    # Added last is outermost: the headers land on every response, refusals included. Bodies are
    # limited here (routes that take uploads raise their own limit), inside the middleware that
    # turns Starlette's bare 413 into a page or JSON that says what the limits are.
    app.add_middleware(RouteRecorderMiddleware)
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_request_kb * 1024)
    app.add_middleware(ReadableTooLargeMiddleware)
    app.add_middleware(SessionRenewalMiddleware)
    app.add_middleware(CrossSiteRequestMiddleware, trusted_origins=settings.trusted_origins)
    app.add_middleware(SecurityHeadersMiddleware, settings=settings)
    # Outermost: a request's id and its log line and metrics cover every middleware above.
    app.add_middleware(RequestLogMiddleware)
    app.mount("/static", StaticFiles(directory=PROJECT_ROOT / "static"), name="static")
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(auth_routes.router)
    app.include_router(auth_pages.router)
    app.include_router(library_api.router)
    app.include_router(ingestion_api.router)
    app.include_router(chat_api.router)
    app.include_router(chat_pages.router)
    app.include_router(library_pages.router)
    app.include_router(ingestion_pages.router)
    app.include_router(admin_api.router)
    app.include_router(admin_pages.router)
    app.include_router(usage_api.router)
    app.include_router(study_api.router)
    app.include_router(study_pages.router)
    return app


app = create_app()
