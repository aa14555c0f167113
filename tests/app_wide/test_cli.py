"""`studyrag` as a person runs it: migrate, create-admin, and serve stopped by Ctrl-C."""

import asyncio
import os
import signal
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

from tests.support.accounts import new_email
from tests.support.cli import STUDYRAG, run
from tests.support.paths import ROOT, TEST_VAR
from tests.support.ports import free_port


async def test_migrate_is_idempotent(services):
    code, output = await run("migrate")
    assert code == 0, output
    assert "latest migration" in output


async def test_create_admin_creates_or_promotes(services, owner_engine):
    email = new_email("admin")
    env = {**os.environ, "STUDYRAG_ADMIN_PASSWORD": "a long admin passphrase"}
    code, output = await run("create-admin", email, "--name", "Root", env=env)
    assert code == 0, output
    code, output = await run("create-admin", email, env=env)
    assert code == 0, output
    async with owner_engine.connect() as conn:
        row = (
            await conn.execute(text("select is_superuser, name from users where email = :e"), {"e": email})
        ).one()
    assert row == (True, "Root")

    weak = {**os.environ, "STUDYRAG_ADMIN_PASSWORD": "password"}
    code, output = await run("create-admin", new_email("admin"), env=weak)
    assert code == 1
    assert "most commonly used" in output


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(path) in cmdline:
            found.append(process)
    return found


async def test_serve_runs_everything_embedded_and_ctrl_c_stops_it_all(services):
    var_dir = TEST_VAR / "serve"
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "APP_DATABASE_URL", "REDIS_URL", "JWT_SECRET")
    }
    env.update(ENVIRONMENT="development", VAR_DIR=str(var_dir))
    process = await asyncio.create_subprocess_exec(
        STUDYRAG,
        "serve",
        "--port",
        str(port),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(240):
                try:
                    health = await http.get(f"http://127.0.0.1:{port}/api/health")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.25)
            else:
                raise AssertionError("studyrag serve did not answer within a minute")
        assert health.json()["status"] == "ok"
        assert (var_dir / "pg" / "PG_VERSION").exists()
        assert _processes_using(var_dir / "pg"), "embedded Postgres runs from var/"

        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, output.decode()
    assert "Stopped." in output.decode()
    await asyncio.sleep(0.5)
    assert _processes_using(var_dir) == [], "Postgres, Redis, web and worker all stopped"
    assert not (var_dir / "pg" / "postmaster.pid").exists()


async def test_ingest_command_uploads_and_ingests_with_progress(services, client):
    from tests.support.accounts import bearer_token, register
    from tests.support.corpus import BAD, BOOKS
    from tests.support.library import Student

    email = new_email("bulk")
    user = await register(client, email)
    code, output = await run(
        "ingest",
        str(BOOKS / "nlp_working_programmer.pdf"),
        str(BAD / "encrypted_user_password.pdf"),
        str(BAD / "png_renamed.pdf"),
        "--user",
        email,
        "--semester",
        "Y3S2",
        "--subject",
        "NLP",
        "--book",
        "NLTK",
    )
    assert code == 1, output  # two of three did not make it, and it says so
    assert "skipped" in output and "png_renamed.pdf" in output
    assert "password-protected" in output
    assert "78/78" in output

    student = Student(client, user, await bearer_token(client, email))
    files = {f["filename"]: f["status"] for f in (await student.get("/api/files")).json()}
    assert files == {"nlp_working_programmer.pdf": "ready", "encrypted_user_password.pdf": "failed"}

    code, output = await run(
        "ingest",
        str(BOOKS / "forallx_magnus.pdf"),
        "--user",
        "nobody@example.com",
        "--semester",
        "Y",
        "--subject",
        "S",
        "--book",
        "B",
    )
    assert code == 1 and "No account with the email nobody@example.com" in output
