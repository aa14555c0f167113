"""Fuzz the JSON API from its own OpenAPI schema with Schemathesis: no 5xx, and every answer as documented.

How it runs, and why:

* The app runs as a real uvicorn subprocess (as the browser tests' `live_server` does) on the suite's
  embedded Postgres and Redis, and Schemathesis calls it over real HTTP with `requests`. Schemathesis's
  `from_asgi` would drive the app through Starlette's sync `TestClient`, i.e. on an event loop of its own,
  while the app's engine, arq pool and lifespan belong to pytest-asyncio's session loop (`app` fixture):
  asyncpg connections used from another loop break. A subprocess owns its loop, has its own lifespan,
  and is what production runs; its output goes to a log file, and the part of the log written while a
  failing request ran (the server-side traceback) is attached to the failure.
* The schema is `app.openapi()`, built in-process at collection time, so that pytest has one test per
  operation (`-k "POST /api/upload"` works). The fixture checks that the running server serves exactly
  that document at /openapi.json, so what is fuzzed is what is served.
* Every call is made as a fresh user with a bearer token, who owns one tiny PDF first (so reads return
  something). Generated security parameters are off: the real token is the credential under test.
* Bounded for CI: MAX_EXAMPLES per operation in the fuzzing phase (plus the examples and coverage phases),
  derandomized with a fixed seed, no shrinking, no example database, no stateful phase.
"""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import schemathesis

from tests.conftest import PASSWORD, ROOT, TEST_VAR, new_email
from tests.library_helpers import pdf_bytes

MAX_EXAMPLES = 15
SEED = 20240611

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "request-timeout": 30,
        "continue-on-failure": True,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
    }
)


def _openapi() -> dict:
    from app.main import app

    return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG).exclude(
    # Logging out revokes the token's `jti` (app/auth/backend.py): every later call would be a 401.
    # Both logout routes share the revocable JWT strategy, so the cookie one revokes the bearer token too.
    path=["/auth/jwt/logout", "/auth/cookie/logout"],
)


class LiveServer:
    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url, self.log = base_url, log

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_api(services) -> LiveServer:
    port = _free_port()
    log = TEST_VAR / f"fuzz-server-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env=dict(os.environ),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fuzz test server did not start:\n{log.read_text()}")
            time.sleep(0.25)
        served = httpx.get(f"{base_url}/openapi.json").json()
        assert served == schema.raw_schema, "the server serves another OpenAPI schema than the one fuzzed"
        yield LiveServer(base_url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def auth_headers(live_api) -> dict[str, str]:
    email = new_email("fuzz")
    with httpx.Client(base_url=live_api.base_url) as http:
        response = http.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "Fuzz"})
        assert response.status_code == 201, response.text
        response = http.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        # Folder names a fuzzer will not guess, so `DELETE /api/folders` cannot take the file away.
        response = http.post(
            "/api/upload",
            data={"semester": "Fuzz Semester", "subject": "Fuzz Subject", "book": "Fuzz Book"},
            files=[("file", ("fuzz.pdf", pdf_bytes("fuzz"), "application/pdf"))],
            headers=headers,
        )
        assert response.status_code == 201, response.text
        assert http.get("/api/files", headers=headers).json(), "the fuzz user's library is empty"
    return headers


@schema.parametrize()
def test_api_conforms_to_its_schema(case, live_api, auth_headers):
    offset = live_api.log_size()
    try:
        case.call_and_validate(base_url=live_api.base_url, headers=auth_headers)
    except BaseException as exc:
        server_log = live_api.log_since(offset).strip()
        if server_log:
            exc.add_note(f"Server log while this request ran:\n{server_log}")
        raise
