"""Prometheus metrics, correct across several web processes, at `GET /metrics`.

`studyrag serve` and `studyrag web` run several processes; each writes its samples to memory-mapped
files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, set by those commands before
any process starts, so it applies from the first import), and whichever process answers `/metrics`
adds them all up. The ingestion worker that `serve` starts writes there too. Without the variable (a
single process: tests, `uvicorn app.main:app`) the samples live in the process.

Queue depth and the age of the oldest queued job are read from Redis when `/metrics` is asked.
`/metrics` answers requests from this machine, or with `Authorization: Bearer <METRICS_TOKEN>`.

A worker on a machine of its own (`studyrag worker` with WORKER_METRICS_PORT) shares no directory with
any web process, so it serves its own samples (`serve_worker_metrics`), under the same rule.
"""

import ipaddress
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from arq.connections import ArqRedis
from arq.constants import default_queue_name, in_progress_key_prefix
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.exceptions import Forbidden

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "studyrag_http_requests_total",
    "Requests answered, by route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "studyrag_http_request_duration_seconds",
    "Time to answer a request (a stream: until its last byte), by route template and status.",
    ["method", "route", "status"],
)
CHAT_STAGE_SECONDS = Histogram(
    "studyrag_chat_stage_seconds",
    "Time of each stage of answering a question: embed, retrieve, answer.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
INGEST_STAGE_SECONDS = Histogram(
    "studyrag_ingest_stage_seconds",
    "Time of each stage of ingesting a document: fetch, parse, chunk, embed, write.",
    ["stage"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
INGEST_PAGES = Counter("studyrag_ingest_pages_total", "Pages of documents ingested.")
INGEST_PAGES_PER_SECOND = Histogram(
    "studyrag_ingest_pages_per_second",
    "Pages per second of each document ingested (its whole job).",
    buckets=(0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500),
)
INGEST_JOBS = Counter("studyrag_ingest_jobs_total", "Ingestion jobs ended, by outcome.", ["outcome"])
INGEST_FAILURES = Counter(
    "studyrag_ingest_job_failures_total",
    "Ingestion jobs that failed, by reason (the file's fault, e.g. encrypted or no_text, or ours).",
    ["reason"],
)
DB_POOL_IN_USE = Gauge(
    "studyrag_db_pool_connections_in_use",
    "Pooled Postgres connections checked out, summed over live processes of a kind.",
    ["process"],
    multiprocess_mode="livesum",
)
DB_POOL_OVERFLOW = Gauge(
    "studyrag_db_pool_overflow_in_use",
    "Connections open beyond DB_POOL_SIZE (out of DB_MAX_OVERFLOW), summed over live processes.",
    ["process"],
    multiprocess_mode="livesum",
)
RATE_LIMIT_REFUSALS = Counter(
    "studyrag_rate_limit_refusals_total", "Requests refused with 429 by a rate limit.", ["action", "scope"]
)
USAGE_LIMIT_REFUSALS = Counter(
    "studyrag_usage_limit_refusals_total", "Questions refused by a monthly usage limit.", ["limit"]
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method, route, str(status))
    REQUESTS.labels(*labels).inc()
    REQUEST_SECONDS.labels(*labels).observe(seconds)


def watch_pool(engine: AsyncEngine, *, process: str, pool_size: int) -> None:
    """Keep the pool gauges of this process up to date as connections are checked out and in."""
    in_use_gauge, overflow_gauge = DB_POOL_IN_USE.labels(process), DB_POOL_OVERFLOW.labels(process)
    in_use = 0

    def changed(delta: int) -> None:
        nonlocal in_use
        in_use = max(0, in_use + delta)
        in_use_gauge.set(in_use)
        overflow_gauge.set(max(0, in_use - pool_size))

    event.listen(engine.sync_engine, "checkout", lambda *_: changed(+1))
    event.listen(engine.sync_engine, "checkin", lambda *_: changed(-1))


def process_ended() -> None:
    """A process that stops leaves the live gauges (its pool is gone); its counters stay counted."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(os.getpid())


QUEUE_SCAN_LIMIT = 10_000  # the oldest job is looked for among this many, in the order they will run


async def queue_state(redis: ArqRedis) -> tuple[int, float]:
    """Jobs waiting in the ingestion queue (not running), and how long the oldest has waited (s)."""
    from app.queue import queued_at

    total = await redis.zcard(default_queue_name)
    entries = await redis.zrange(default_queue_name, 0, QUEUE_SCAN_LIMIT - 1, withscores=True)
    if not entries:
        return 0, 0.0
    async with redis.pipeline(transaction=False) as pipe:
        for member, _ in entries:
            job = member.decode() if isinstance(member, bytes) else member
            pipe.exists(in_progress_key_prefix + job)
        running = await pipe.execute()
    now = time.time()
    waiting = [queued_at(score) for (_, score), busy in zip(entries, running, strict=True) if not busy]
    oldest = max((now - at for at in waiting), default=0.0)
    return total - sum(map(bool, running)), max(0.0, oldest)


class _Snapshot:
    """Values read at scrape time, as a collector of their own."""

    def __init__(self, depth: int, oldest: float) -> None:
        self.depth, self.oldest = depth, oldest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "studyrag_ingest_queue_depth", "Ingestion jobs waiting in the queue.", value=self.depth
        )
        yield GaugeMetricFamily(
            "studyrag_ingest_oldest_queued_seconds",
            "How long the oldest waiting ingestion job has waited.",
            value=self.oldest,
        )


def render(depth: int, oldest: float) -> bytes:
    samples = _samples()
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(depth, oldest))
    return samples + generate_latest(snapshot)


def may_scrape(client: str | None, authorization: str, token: str | None) -> bool:
    """The metrics rule: a client on this machine, or one that sends the METRICS_TOKEN bearer token."""
    if token and secrets.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    try:
        return ipaddress.ip_address(client or "").is_loopback
    except ValueError:
        return False


def _allowed(request: Request, token: str | None) -> bool:
    from app.web import client_ip

    return may_scrape(client_ip(request), request.headers.get("authorization", ""), token)


def _samples() -> bytes:
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_metrics_app(token: str | None) -> "WSGIApplication":
    """The standalone worker's `/metrics` (WSGI): its own samples, for this machine or the token."""

    def app(environ: "WSGIEnvironment", start_response: "StartResponse") -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found; metrics are at /metrics.\n"]
        if not may_scrape(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION", ""), token):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"Metrics are served to this machine, or with the METRICS_TOKEN token.\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [_samples()]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None  # scrapes every few seconds would drown the worker's own log


class _Server6(WSGIServer):
    address_family = socket.AF_INET6


def serve_worker_metrics(host: str, port: int, token: str | None) -> WSGIServer:
    """Start serving the worker's metrics on a thread of its own; `.shutdown()` stops it. An IPv6 host
    ("::" is every address, as on Fly's private network) gets an IPv6 socket."""
    server_class = _Server6 if ":" in host else WSGIServer
    server = make_server(
        host, port, worker_metrics_app(token), server_class=server_class, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format; from this machine, or with the METRICS_TOKEN bearer token."""
    from app.config import get_settings

    token = get_settings().metrics_token
    if not _allowed(request, token.get_secret_value() if token else None):
        raise Forbidden("Metrics are served to this machine, or with the METRICS_TOKEN token.")
    try:
        depth, oldest = await queue_state(request.app.state.arq)
    except Exception:  # Redis down: the rest of the metrics still tell what happened
        depth, oldest = -1, -1.0
    return Response(render(depth, oldest), media_type=CONTENT_TYPE_LATEST)
