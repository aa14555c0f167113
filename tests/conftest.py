"""Real services for the whole suite: embedded Postgres (+pgvector) and Redis, started once.

The environment is set before any `app` module is imported, so settings, cookie flags and the app
itself are built for the test cluster; the cluster is new for every run. Helpers live in tests.support.

Isolation: tests that go through the app commit for real, as the app does, and keep apart by using
fresh users (`tests.support.accounts.new_email`), not by a transaction rolled back after each test.
What they check is written on connections the app opens itself (each request's session from its pool;
`audit.record_now`'s refusals and failures on a connection of their own, committed although the
request is rolled back; the arq worker, in this process or as `studyrag worker`; uvicorn servers in
other processes) and read back on others (the owner's, the superuser's). One outer transaction could
hold none of that without changing what is tested: a refusal's audit row must outlive its request's
rollback, and one connection cannot serve a request, its audit write and a worker at once. Tests that
plant what must never be committed and look only through their own connection (a disabled policy, a
dropped constraint) use `superuser_rollback`, rolled back after the test.
"""

import os
import secrets
import shutil

import pytest

from tests.support.paths import TEST_VAR

os.environ.update(
    ENVIRONMENT="test",
    VAR_DIR=str(TEST_VAR),
    JWT_SECRET=secrets.token_urlsafe(48),
    DO_NOT_TRACK="1",
    # The whole suite signs up hundreds of users from one address; tests of the limits set their own.
    **{
        f"RATE_LIMIT_{name}": "100000/minute"
        for name in (
            "LOGIN_PER_IP",
            "LOGIN_PER_ACCOUNT",
            "REGISTER_PER_IP",
            "UPLOAD_PER_IP",
            "UPLOAD_PER_USER",
            "CHAT_PER_IP",
            "STUDY_PER_IP",
            "STUDY_PER_USER",
            "CHAT_PER_USER",
        )
    },
)
for name in ("DATABASE_URL", "APP_DATABASE_URL", "REDIS_URL", "S3_BUCKET", "OPENAI_API_KEY"):
    os.environ.pop(name, None)

import httpx  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine  # noqa: E402

from app.config import get_settings  # noqa: E402
from app.db import make_engine  # noqa: E402
from app.embedded import EmbeddedServices, ServiceUrls  # noqa: E402


@pytest.fixture(scope="session")
async def services() -> ServiceUrls:
    shutil.rmtree(TEST_VAR, ignore_errors=True)
    TEST_VAR.mkdir(parents=True)
    embedded = EmbeddedServices(get_settings(), database="studyrag_test")
    urls = await embedded.start()
    os.environ.update(urls.as_env())
    get_settings.cache_clear()

    from app.migrate import upgrade_to_head

    await upgrade_to_head(urls.database_url)
    yield urls
    embedded.stop()
    shutil.rmtree(TEST_VAR, ignore_errors=True)


@pytest.fixture(scope="session")
async def app(services):
    from app.main import app as application

    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def own_app(app):
    """An app of this test's own, built as the shared one is and on its services (engine, queue, storage;
    a copy of its state, not entered twice): for a test that adds routes, which the shared app must
    never grow for the tests after it."""
    from starlette.datastructures import State

    from app.main import create_app

    own = create_app()
    own.state = State(dict(app.state._state))
    return own


@pytest.fixture
async def client(app) -> httpx.AsyncClient:
    # https: the auth cookie is `Secure` outside development.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    # Origin: requests come from our own pages, as a browser's do (cross-site ones are refused).
    headers = {"Origin": "https://testserver"}
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver", headers=headers) as c:
        yield c


@pytest.fixture(scope="session")
async def owner_engine(services) -> AsyncEngine:
    engine = make_engine(services.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def superuser_engine(services) -> AsyncEngine:
    """The cluster superuser, which bypasses row-level security: for checking what really is stored."""
    engine = make_engine(make_url(services.database_url).set(username="postgres").render_as_string(False))
    yield engine
    await engine.dispose()


@pytest.fixture
async def superuser_rollback(superuser_engine) -> AsyncConnection:
    """A superuser connection inside a transaction that is rolled back after the test, whatever it did."""
    async with superuser_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            await transaction.rollback()


@pytest.fixture(scope="session")
async def app_engine(services) -> AsyncEngine:
    engine = make_engine(services.app_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def model(monkeypatch):
    """A chat model configured for the test: the fake OpenAI server (set `model.reply`; read
    `model.requests`)."""
    from pydantic import SecretStr

    from app.config import get_settings
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        settings = get_settings()
        monkeypatch.setattr(settings, "openai_api_key", SecretStr("test-key"))
        monkeypatch.setattr(settings, "openai_base_url", server.base_url)
        monkeypatch.setattr(settings, "chat_model", "fake-model")
        yield server
