"""A whole class at once: no request needs two connections, overload answers 503, ingestion is fair,
and `studyrag serve` runs several web processes that share limits and outlive a crashed worker."""

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

from app.db import make_engine, make_sessionmaker
from app.overload import Gate
from app.worker import make_worker
from tests.support.accounts import new_email
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student, text_pdf
from tests.support.paths import ROOT, TEST_VAR
from tests.support.ports import free_port

STUDYRAG = str(Path(sys.executable).parent / "studyrag")
GLACIERS = text_pdf(
    "Glaciers form where snow accumulates faster than it melts; the snow compacts into firn and then ice.",
    "A glacier moves by internal deformation of the ice and by basal sliding over meltwater.",
)


@contextlib.asynccontextmanager
async def pool_of(app, services, *, size: int, wait: float):
    """The app's requests draw from a pool of `size` connections (no overflow) for the block."""
    engine = make_engine(services.app_database_url, pool_size=size, max_overflow=0, pool_timeout=wait)
    saved = app.state.engine, app.state.sessionmaker
    app.state.engine, app.state.sessionmaker = engine, make_sessionmaker(engine)
    try:
        yield engine
    finally:
        app.state.engine, app.state.sessionmaker = saved
        await engine.dispose()


@contextlib.contextmanager
def embed_gate(app, gate: Gate):
    saved = app.state.embed_gate
    app.state.embed_gate = gate
    try:
        yield gate
    finally:
        app.state.embed_gate = saved


async def student_with_glaciers(client, services):
    student = await new_student(client)
    await student.upload_one(("glaciers.pdf", GLACIERS), semester="Y1", subject="Geo", book="ice")
    await run_worker_until_idle(services)
    return student


def ask(student, question: str = "How does a glacier move?", path: str = "/api/chat"):
    return student.client.post(path, json={"query": question}, headers=student.headers)


async def test_more_questions_at_once_than_pooled_connections_all_complete(client, app, services):
    student = await student_with_glaciers(client, services)
    async with pool_of(app, services, size=2, wait=20):
        replies = await asyncio.gather(*(ask(student) for _ in range(12)))
    assert [r.status_code for r in replies] == [200] * 12, [r.text for r in replies if r.status_code != 200]
    for reply in replies:
        assert reply.json()["sources"][0]["filename"] == "glaciers.pdf"


async def test_no_free_connection_is_a_503_with_retry_after_then_service_recovers(client, app, services):
    student = await student_with_glaciers(client, services)
    async with pool_of(app, services, size=1, wait=0.5) as engine:
        async with engine.connect() as held:  # every connection of the pool is taken
            await held.execute(text("select 1"))
            api = await student.get("/api/files")
            page = await student.get("/library")
        assert api.status_code == 503
        assert api.headers["Retry-After"].isdigit()
        assert "busy" in api.json()["detail"]
        assert page.status_code == 503 and "busy" in page.text and "<html" in page.text
        assert (await student.get("/api/files")).status_code == 200  # and back at once


async def test_busy_embedder_is_a_503_before_any_answer_then_recovers(client, app, services):
    student = await student_with_glaciers(client, services)
    gate = Gate("test embedder", capacity=1, max_waiting=0, timeout=0.2, retry_after=7)
    with embed_gate(app, gate):
        async with gate.enter():  # someone else is embedding, and nobody may wait
            plain = await ask(student)
            streamed = await ask(student, path="/api/chat/stream")
        for reply in (plain, streamed):
            assert reply.status_code == 503, reply.text
            assert reply.headers["Retry-After"] == "7"
            assert reply.headers["content-type"].startswith("application/json")
        assert (await ask(student)).status_code == 200
    conversations = (await student.get("/api/conversations")).json()
    assert len(conversations) == 1, "refused questions were not saved"


async def test_one_students_upload_is_not_held_back_by_anothers_backlog(client, services, superuser_engine):
    busy, other = await new_student(client, "Busy"), await new_student(client, "Other")
    backlog = [(f"notes-{i}.pdf", text_pdf(f"Lecture {i}: the glacier budget, part {i}.")) for i in range(20)]
    uploaded = (await busy.upload(*backlog, book="notes")).json()["files"]
    assert [f["status"] for f in uploaded] == ["queued"] * 20
    (single,) = (await other.upload(("mine.pdf", GLACIERS), book="mine")).json()["files"]

    last = (await busy.get(f"/library/files/{uploaded[-1]['id']}/status")).text
    assert "19 of your files ahead" in last
    assert (await busy.get(f"/api/jobs/{uploaded[-1]['id']}")).json()["files_ahead"] == 19
    # Another student's backlog is not this student's: their one file is next of theirs.
    assert "next of your files" in (await other.get(f"/library/files/{single['id']}/status")).text

    worker = make_worker(
        services.redis_url, services.app_database_url, burst=True, poll_delay=0.05, handle_signals=False
    )
    worker.max_jobs = 1  # one job at a time: the order is the queue's order
    try:
        await worker.main()
    finally:
        await worker.close()
    async with superuser_engine.connect() as conn:
        finished = (
            await conn.execute(
                text(
                    "select user_id::text, status from documents"
                    " where user_id in (:a, :b) order by updated_at"
                ),
                {"a": busy.id, "b": other.id},
            )
        ).all()
    assert {status for _, status in finished} == {"ready"}
    owners = [user_id for user_id, _ in finished]
    assert owners.index(other.id) <= 1, "at most the backlog's first file, already due, ran before it"


def _serving_processes(serve: psutil.Process) -> tuple[list[psutil.Process], psutil.Process | None]:
    """The uvicorn web processes (children of uvicorn's supervisor) and the ingestion worker."""
    web, worker = [], None
    for child in serve.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            cmdline = " ".join(child.cmdline())
            if "app.cli worker" in cmdline:
                worker = child
            elif "multiprocessing.spawn" in cmdline and "uvicorn" in " ".join(child.parent().cmdline()):
                web.append(child)
    return web, worker


async def test_serve_with_two_web_processes_shares_limits_and_survives_a_killed_worker(services):
    port, var_dir = free_port(), TEST_VAR / "serve-two"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_DATABASE_URL", "REDIS_URL")}
    env.update(
        VAR_DIR=str(var_dir), RATE_LIMIT_LOGIN_PER_ACCOUNT="3/minute", RATE_LIMIT_LOGIN_PER_IP="6/minute"
    )
    serve = await asyncio.create_subprocess_exec(
        STUDYRAG, "serve", "--port", str(port), "--web-workers", "2", env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(240):
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{base}/api/health")).status_code == 200:
                        break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("studyrag serve did not answer within a minute")
        process = psutil.Process(serve.pid)
        web, worker = _serving_processes(process)
        assert len(web) == 2 and worker is not None, (web, worker)
        # Background ingestion gives way to the students' requests on the shared cores (WORKER_NICE).
        for _ in range(120):
            if worker.nice() == process.nice() + 10:
                break
            await asyncio.sleep(0.25)
        assert worker.nice() == process.nice() + 10 and {p.nice() for p in web} == {process.nice()}

        # Each attempt on a new connection, so the two processes share them; the limit is one count.
        email, codes = new_email(), []
        for _ in range(8):
            async with httpx.AsyncClient() as http:
                form = {"username": email, "password": "not the password"}
                codes.append((await http.post(f"{base}/auth/jwt/login", data=form)).status_code)
        assert codes == [400] * 3 + [429] * 5, codes  # the account's limit, then the address's
        # An address of one's own choosing is not believed: no proxy is trusted by default.
        async with httpx.AsyncClient() as http:
            form = {"username": new_email(), "password": "not the password"}
            spoofed = await http.post(
                f"{base}/auth/jwt/login", data=form, headers={"X-Forwarded-For": "198.51.100.4"}
            )
        assert spoofed.status_code == 429

        # /metrics adds up every web process: whichever answers counts all 3 refusals and 6 limits.
        login = 'studyrag_http_requests_total{method="POST",route="/auth/jwt/login",status="%s"} %s'
        for _ in range(4):  # scrapes on new connections, so both processes answer some
            async with httpx.AsyncClient() as http:
                scraped = (await http.get(f"{base}/metrics")).text
            assert login % (400, "3.0") in scraped and login % (429, "6.0") in scraped, scraped
        written = {p.name.rsplit("_", 1)[-1] for p in (var_dir / "metrics").glob("counter_*.db")}
        assert {f"{p.pid}.db" for p in web} <= written, (written, web)

        worker.send_signal(signal.SIGKILL)  # what the kernel does to a worker out of memory
        async with httpx.AsyncClient() as http:
            for _ in range(120):
                assert (await http.get(f"{base}/api/health")).status_code == 200, "the web app stays up"
                _, again = _serving_processes(process)
                if again is not None and again.pid != worker.pid:
                    break
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("the worker was not started again")
        assert serve.returncode is None

        serve.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(serve.communicate(), 60)
    finally:
        if serve.returncode is None:
            serve.kill()
    log = output.decode()
    assert serve.returncode == 0, log
    assert "ingestion worker killed by SIGKILL" in log, log


def test_client_address_comes_from_the_proxys_own_header_only_when_configured():
    from starlette.requests import Request

    from app.config import get_settings
    from app.web import client_ip

    headers = [(b"x-forwarded-for", b"198.51.100.4"), (b"fly-client-ip", b"203.0.113.50")]
    request = Request({"type": "http", "headers": headers, "client": ("10.0.0.9", 5000)})
    settings = get_settings()
    assert client_ip(request) == "10.0.0.9"
    settings.client_ip_header = "Fly-Client-IP"
    try:
        assert client_ip(request) == "203.0.113.50"
    finally:
        settings.client_ip_header = None
