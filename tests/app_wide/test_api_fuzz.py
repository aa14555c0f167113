"""Fuzz the API from its own OpenAPI schema with Schemathesis: no server errors, every answer as documented.

How it runs, and why:

* The app runs as a real uvicorn subprocess (as the browser tests' `live_server` does) on the suite's
  embedded Postgres and Redis, and Schemathesis calls it over real HTTP. Schemathesis's `from_asgi`
  would drive the app through Starlette's sync `TestClient`, i.e. on an event loop of its own, while the
  in-process app's engine and arq pool belong to pytest-asyncio's session loop (the `app` fixture):
  asyncpg connections used from another loop break. A subprocess owns its loop and its lifespan, and is
  what production runs. Its output goes to a log file; the part written while a failing request ran
  (the server-side traceback) is attached to the failure, and a traceback logged during any request
  fails the test even when the client saw no 5xx (e.g. a stream that dies after its 200).
* The schema is `app.openapi()`, built in-process at collection time, so that pytest has one test per
  operation (`-k "POST /api/upload"` works). The fixture checks that the running server serves exactly
  that document at /openapi.json, so what is fuzzed is what is served.
* Every call is made as a fresh user with a bearer token. The user owns a tiny PDF and a conversation
  first, and reads by id (GET) name those about half the time, so 200 answers are checked against their
  schemas too, not only 404s for random ids. Schemathesis may add generated credentials (a random
  `studyrag_auth` cookie); the real `Authorization` header is sent with every call and overrides a
  generated one.
* Bounded for CI: MAX_EXAMPLES per operation in the fuzzing phase, plus the (small, deterministic)
  examples and coverage phases; derandomized with a fixed seed, no shrinking, no example database, no
  stateful phase. About 20-40 s for the whole module on 2 cores.
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
from hypothesis import strategies as st

from tests.support.accounts import PASSWORD, new_email
from tests.support.library import pdf_bytes
from tests.support.paths import ROOT, TEST_VAR
from tests.support.ports import free_port

MAX_EXAMPLES = 25
SEED = 20240611
SERVER_ERROR_MARK = "Traceback (most recent call last)"

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "request-timeout": 30,
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            {
                # fastapi-users' log-in form (OAuth2PasswordRequestForm): FastAPI reads an empty form field
                # as a missing one (422), and Schemathesis sends a nullable field's null as the text
                # "null" (grant_type=null), which the form refuses. Both are the framework's form
                # handling, not ours; every other check still runs on these operations.
                "include-path-regex": "^/auth/(jwt|cookie)/login$",
                "checks": {"positive_data_acceptance": {"enabled": False}},
            },
            {
                # Email addresses: JSON Schema's `format: email` allows special-use domains (`.test`,
                # `.invalid`, `.localhost`) that email-validator refuses (422) on purpose.
                "include-path-regex": "^/(auth/register|users/me)$",
                "checks": {"positive_data_acceptance": {"enabled": False}},
            },
        ],
        # Every built-in check stays on. One is tuned: `positive_data_acceptance` (a schema-valid request
        # must not be refused) expects 2xx/3xx/401/403/404/409/429 by default. This API also refuses
        # well-formed requests for reasons no JSON Schema can state: wrong credentials, a weak password or
        # a taken email (400, fastapi-users), folder-name rules and "a book needs its subject" (400), "not
        # a PDF" or an empty file (415), size and quota limits (413). Those statuses are accepted here;
        # whether each is *documented* on the operation is still enforced by `status_code_conformance`.
        # What the check still catches is a 422 (or any other status) for input the schema calls valid.
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": [
                    "2xx",
                    "3xx",
                    "400",
                    "401",
                    "403",
                    "404",
                    "409",
                    "413",
                    "415",
                    "429",
                    "5xx",
                ]
            }
        },
    }
)


def _openapi() -> dict:
    from app.main import app

    return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi(), config=CONFIG).exclude(
    # Logging out revokes the token's `jti` (app/auth/backend.py), so every later call would be a 401.
    # Both logout routes share the revocable JWT strategy: the cookie one revokes the bearer token too.
    path=["/auth/jwt/logout", "/auth/cookie/logout"],
)

# Path parameter name -> an id the fuzz user owns; filled by the `auth_headers` fixture.
OWNED_IDS: dict[str, str] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """For reads (GET), name one of the user's own files or conversations about half the time.

    Deletes keep to generated ids, so the user's data outlives the operations that run before the reads.
    """
    owned = {name: OWNED_IDS[name] for name in path_parameters or () if name in OWNED_IDS}
    if not owned or context.operation.method.upper() != "GET":
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **owned}])


class LiveServer:
    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url, self.log = base_url, log

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


@pytest.fixture(scope="module")
def live_api(services) -> LiveServer:
    port = free_port()
    log = TEST_VAR / f"fuzz-server-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
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
    with httpx.Client(base_url=live_api.base_url, timeout=60) as http:
        response = http.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "Fuzz"})
        assert response.status_code == 201, response.text
        response = http.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        response = http.post(
            "/api/upload",
            data={"semester": "Fuzz Semester", "subject": "Fuzz Subject", "book": "Fuzz Book"},
            files=[("file", ("fuzz.pdf", pdf_bytes("fuzz"), "application/pdf"))],
            headers=headers,
        )
        assert response.status_code == 201, response.text
        OWNED_IDS["document_id"] = response.json()["files"][0]["id"]
        response = http.post("/api/chat", json={"query": "What is in my library?"}, headers=headers)
        assert response.status_code == 200, response.text
        OWNED_IDS["conversation_id"] = response.json()["conversation_id"]
    yield headers
    OWNED_IDS.clear()


@schema.parametrize()
def test_api_conforms_to_its_schema(case, live_api, auth_headers):
    offset = live_api.log_size()
    try:
        case.call_and_validate(base_url=live_api.base_url, headers=auth_headers)
    except BaseException as exc:
        if server_log := live_api.log_since(offset).strip():
            exc.add_note(f"Server log while this request ran:\n{server_log}")
        raise
    server_log = live_api.log_since(offset)
    assert SERVER_ERROR_MARK not in server_log, (
        f"The server logged an error for {case.method} {case.formatted_path} although its answer passed "
        f"the checks. Reproduce with:\n{case.as_curl_command(headers=auth_headers)}\n\n"
        f"Server log while this request ran:\n{server_log}"
    )
