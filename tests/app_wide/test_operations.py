"""Operations: a log line per request with its id, `/metrics` with what happened, Sentry only when asked."""

import importlib
import json
import logging
import re
import threading
import uuid
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from limits import parse
from pydantic import SecretStr

from app.config import get_settings
from app.logs import JsonFormatter, TextFormatter
from app.metrics import worker_metrics_app
from app.security.rate_limit import Rule
from tests.support.accounts import new_email, register
from tests.support.corpus import BAD
from tests.support.ingestion import WorkerProcess, run_worker_until_idle, wait_for
from tests.support.library import new_student, text_pdf
from tests.support.ports import free_port


def local_client(app, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 4711))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when it is not there yet."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = "^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def scrape(app) -> str:
    async with local_client(app) as local:
        response = await local.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_each_request_logs_one_line_with_its_id_route_status_and_user_id(client, caplog):
    email = new_email()
    user = await register(client, email)
    login = await client.post(
        "/auth/jwt/login", data={"username": email, "password": "a fine long passphrase"}
    )
    token = login.json()["access_token"]
    caplog.set_level(logging.INFO, logger="studyrag.request")
    document_id = uuid.uuid4()
    response = await client.get(f"/api/files/{document_id}", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 404
    rid = response.headers["x-request-id"]
    (record,) = [r for r in caplog.records if r.name == "studyrag.request" and r.request_id == rid]
    assert record.route == "/api/files/{document_id}"  # the template: ids stay out of logs and metrics
    assert (record.method, record.status, record.user_id) == ("GET", 404, user["id"])
    assert record.duration_ms >= 0
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == rid and line["user_id"] == user["id"] and line["status"] == 404
    assert line["route"] == "/api/files/{document_id}" and line["level"] == "info"
    # A route of an included router is named by its whole template, prefixes and all.
    failed = await client.post("/auth/jwt/login", data={"username": email, "password": "wrong"})
    (login,) = [r for r in caplog.records if getattr(r, "request_id", None) == failed.headers["x-request-id"]]
    assert (login.route, login.status) == ("/auth/jwt/login", 400)
    for shown in (JsonFormatter().format(record), TextFormatter().format(record)):
        assert email not in shown and token not in shown and str(document_id) not in shown
        assert rid in shown


async def test_lines_logged_during_a_request_carry_its_id(own_app, caplog):
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/test-only/logs-something")
    async def logs_something():
        logging.getLogger("app.test").warning("something worth a look")
        return {"ok": True}

    own_app.include_router(router)
    caplog.set_level(logging.INFO)
    async with local_client(own_app) as local:
        response = await local.get("/test-only/logs-something")
    rid = response.headers["x-request-id"]
    (record,) = [r for r in caplog.records if r.name == "app.test"]
    assert json.loads(JsonFormatter().format(record))["request_id"] == rid
    assert f"request_id={rid}" in TextFormatter().format(record)


async def test_a_request_shows_up_in_metrics_by_route_template_and_status(app, client):
    before = await scrape(app)
    labels = {"method": "GET", "route": "/api/jobs/{document_id}", "status": "401"}
    for _ in range(3):
        assert (await client.get(f"/api/jobs/{uuid.uuid4()}")).status_code == 401

    after = await scrape(app)
    assert (
        sample(after, "studyrag_http_requests_total", **labels)
        == sample(before, "studyrag_http_requests_total", **labels) + 3
    )
    assert sample(after, "studyrag_http_request_duration_seconds_count", **labels) >= 3
    for name in (
        "studyrag_db_pool_connections_in_use",
        "studyrag_ingest_queue_depth",
        "studyrag_ingest_oldest_queued_seconds",
    ):
        assert re.search(rf"^{name}(\{{[^}}]*\}})? ", after, re.MULTILINE), name
    assert "/api/jobs/" + "{document_id}" in after and not re.search(r"/api/jobs/[0-9a-f]{8}-", after)


async def test_metrics_are_for_this_machine_or_the_metrics_token(app, monkeypatch):
    async with local_client(app, host="203.0.113.9") as remote:
        assert (await remote.get("/metrics")).status_code == 403
        monkeypatch.setattr(get_settings(), "metrics_token", SecretStr("scrape-secret-token"))
        assert (await remote.get("/metrics")).status_code == 403
        wrong = await remote.get("/metrics", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 403
        right = await remote.get("/metrics", headers={"Authorization": "Bearer scrape-secret-token"})
        assert right.status_code == 200 and "studyrag_http_requests_total" in right.text
    async with local_client(app, host="::1") as local:
        assert (await local.get("/metrics")).status_code == 200


async def test_queue_depth_and_the_oldest_jobs_age_come_from_the_queue(app):
    from arq.constants import default_queue_name, job_key_prefix

    from app.metrics import queue_state
    from app.queue import enqueue_ingest, job_id

    redis = app.state.arq
    depth, _ = await queue_state(redis)
    document_id, user_id = uuid.uuid4(), uuid.uuid4()
    assert await enqueue_ingest(redis, document_id, user_id, files_ahead=3)
    try:
        waiting, oldest = await queue_state(redis)
        assert waiting == depth + 1
        assert 0 <= oldest < 3600  # queued just now, whatever its rank
        text = await scrape(app)
        assert sample(text, "studyrag_ingest_queue_depth") >= 1
    finally:
        await redis.zrem(default_queue_name, job_id(document_id))
        await redis.delete(job_key_prefix + job_id(document_id))


async def test_ingestion_jobs_log_their_stages_and_count_in_metrics(app, client, services, caplog):
    student = await new_student(client)
    before = await scrape(app)
    good = await student.upload_one(("rivers.pdf", text_pdf("Rivers carry sediment to the sea.")))
    bad = await student.upload_one(BAD / "encrypted_user_password.pdf", book="locked")
    caplog.set_level(logging.INFO, logger="app.ingestion.tasks")
    await run_worker_until_idle(services)

    lines = {r.document_id: r for r in caplog.records if getattr(r, "outcome", None)}
    ready, failed = lines[good["id"]], lines[bad["id"]]
    assert ready.outcome == "ready" and ready.pages == 1 and ready.passages == 1
    assert set(ready.timings) == {"fetch", "parse", "chunk", "embed", "write"}
    assert failed.outcome == "failed" and failed.reason == "password"
    assert "Rivers carry" not in JsonFormatter().format(ready)  # no passage text in logs

    after = await scrape(app)
    for stage in ("fetch", "parse", "chunk", "embed", "write"):
        count = "studyrag_ingest_stage_seconds_count"
        assert sample(after, count, stage=stage) > sample(before, count, stage=stage), stage
    failures = "studyrag_ingest_job_failures_total"
    assert sample(after, failures, reason="password") == sample(before, failures, reason="password") + 1
    assert sample(after, "studyrag_ingest_pages_total") >= sample(before, "studyrag_ingest_pages_total") + 1
    assert sample(after, "studyrag_ingest_pages_per_second_count") > 0


async def test_a_worker_on_its_own_serves_its_metrics_to_this_machine_or_the_token(client):
    port = free_port()
    student = await new_student(client)
    worker = await WorkerProcess(WORKER_METRICS_PORT=str(port), METRICS_TOKEN="scrape-secret-token").start()
    try:
        good = await student.upload_one(("tides.pdf", text_pdf("Tides follow the moon around the earth.")))
        bad = await student.upload_one(BAD / "encrypted_user_password.pdf", book="locked")
        await wait_for(student, [good["id"], bad["id"]])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
            served = await scraper.get("/metrics")
    finally:
        await worker.stop()
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/plain")
    # Its own counts: the two jobs it ran (this process ran no other).
    assert sample(served.text, "studyrag_ingest_jobs_total", outcome="ready") >= 1
    assert sample(served.text, "studyrag_ingest_job_failures_total", reason="password") >= 1
    assert sample(served.text, "studyrag_ingest_stage_seconds_count", stage="embed") >= 1

    # From elsewhere, only with the token (the rule of the web's /metrics).
    app = worker_metrics_app("scrape-secret-token")

    def status(**environ: str) -> str:
        seen: list[str] = []
        app({"PATH_INFO": "/metrics", **environ}, lambda line, headers: seen.append(line))
        return seen[0]

    assert status(REMOTE_ADDR="10.0.0.7") == "403 Forbidden"
    assert status(REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer guess") == "403 Forbidden"
    assert status(REMOTE_ADDR="10.0.0.7", HTTP_AUTHORIZATION="Bearer scrape-secret-token") == "200 OK"
    assert status(REMOTE_ADDR="127.0.0.1") == "200 OK"


async def test_questions_time_their_stages_and_rate_limit_refusals_are_counted(app, client, monkeypatch):
    student = await new_student(client)
    before = await scrape(app)
    asked = await client.post("/api/chat", json={"query": "What is a river?"}, headers=student.headers)
    assert asked.status_code == 200
    limiter = app.state.rate_limiter
    monkeypatch.setitem(limiter.rules, "chat", Rule(parse("100000/minute"), parse("1/hour")))
    codes = [
        (await client.post("/api/chat", json={"query": "And a lake?"}, headers=student.headers)).status_code
        for _ in range(3)
    ]
    assert 429 in codes

    after = await scrape(app)
    for stage in ("embed", "retrieve", "answer"):
        count = "studyrag_chat_stage_seconds_count"
        assert sample(after, count, stage=stage) > sample(before, count, stage=stage), stage
    refused = "studyrag_rate_limit_refusals_total"
    assert sample(after, refused, action="chat", scope="user") > sample(
        before, refused, action="chat", scope="user"
    )


# --- Sentry ------------------------------------------------------------------------------------------


class _Envelopes(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding")
        if encoding == "gzip":
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "br":  # the SDK's choice where brotli is installed (locust, for bench/, brings it)
            body = importlib.import_module("brotli").decompress(body)
        self.received.append(body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def sentry_server() -> Iterator[str]:
    _Envelopes.received.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Envelopes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://public-key@127.0.0.1:{server.server_address[1]}/1"
    server.shutdown()
    server.server_close()


def test_without_a_dsn_sentry_is_never_started(monkeypatch):
    import sentry_sdk

    from app.sentry import init_sentry

    monkeypatch.setattr(get_settings(), "sentry_dsn", None)
    assert init_sentry(get_settings(), component="web") is False
    assert not sentry_sdk.get_client().is_active()


async def test_an_unhandled_error_is_reported_with_its_request_id_and_nothing_personal(
    own_app, client, sentry_server, monkeypatch
):
    import sentry_sdk
    from fastapi import APIRouter

    from app.sentry import init_sentry

    email = new_email()
    await register(client, email)
    login = await client.post(
        "/auth/jwt/login", data={"username": email, "password": "a fine long passphrase"}
    )
    token = login.json()["access_token"]
    router = APIRouter()

    @router.get("/api/test-only/sentry-boom")
    async def boom():
        raise RuntimeError("the reported failure")

    own_app.include_router(router)
    monkeypatch.setattr(get_settings(), "sentry_dsn", SecretStr(sentry_server))
    try:
        assert init_sentry(get_settings(), component="web") is True
        transport = httpx.ASGITransport(app=own_app, raise_app_exceptions=False, client=("203.0.113.7", 4711))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as raw:
            crashed = await raw.get(
                f"/api/test-only/sentry-boom?who={email}",
                headers={"Authorization": f"Bearer {token}", "Cookie": "studyrag_auth=secret-cookie"},
            )
        assert crashed.status_code == 500
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.init()  # no DSN: a client that sends nothing, for the rest of the suite

    sent = b"\n".join(_Envelopes.received).decode()
    events = [json.loads(line) for line in sent.splitlines() if '"exception"' in line]
    assert events, sent
    rid = crashed.headers["x-request-id"]
    assert all(event["tags"]["request_id"] == rid for event in events)
    assert "the reported failure" in sent
    for secret in (email, token, "secret-cookie", "203.0.113.7"):
        assert secret not in sent, secret
