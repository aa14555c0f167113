"""`GET /api/health`: each part checked for real; 503 naming the part that is down."""

import asyncio
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["health"])
CHECK_TIMEOUT_SECONDS = 3


async def _check_database(request: Request) -> None:
    async with request.app.state.engine.connect() as conn:
        version = await conn.scalar(text("select extversion from pg_extension where extname = 'vector'"))
    if version is None:
        raise RuntimeError("the pgvector extension is not installed")


async def _check_queue(request: Request) -> None:
    await request.app.state.arq.ping()


async def _check_storage(request: Request) -> None:
    await request.app.state.storage.check()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    checks = {
        "vectordb": _check_database(request),
        "queue": _check_queue(request),
        "storage": _check_storage(request),
    }
    results = await asyncio.gather(
        *(asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS) for check in checks.values()),
        return_exceptions=True,
    )
    failed = {}
    for part, result in zip(checks, results, strict=True):
        if isinstance(result, BaseException):
            # The reason goes to the log; the public answer names the part only.
            log.warning("health check %s failed: %r", part, result)
            failed[part] = "unavailable"
    body = {
        "status": "ok" if not failed else "unavailable",
        "storage": request.app.state.storage.backend,
        "vectordb": "pgvector",
        "queue": "redis",
    }
    if failed:
        body["failed"] = failed
    return JSONResponse(body, status_code=503 if failed else 200)
