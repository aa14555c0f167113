"""`/api/health` reports real checks, and names the part that is down."""

from redis.asyncio import Redis

from app.db import make_engine
from app.library.storage import LocalStorage


async def test_health_is_ok_with_every_part_up(client):
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "storage": "local", "vectordb": "pgvector", "queue": "redis"}


async def test_health_names_each_part_that_is_down(client, app, tmp_path):
    working = (app.state.arq, app.state.engine, app.state.storage)
    dead_engine = make_engine(f"postgresql+asyncpg://nobody@/nothing?host={tmp_path}")
    try:
        app.state.arq = Redis(unix_socket_path=str(tmp_path / "no-redis.sock"))
        response = await client.get("/api/health")
        assert response.status_code == 503
        assert response.json()["failed"] == {"queue": "unavailable"}

        app.state.arq = working[0]
        app.state.engine = dead_engine
        (tmp_path / "objects").write_text("a file where a directory should be")
        app.state.storage = LocalStorage(tmp_path / "objects")
        response = await client.get("/api/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["failed"] == {"vectordb": "unavailable", "storage": "unavailable"}
        assert str(tmp_path) not in response.text  # reasons go to the log, not to the public
    finally:
        app.state.arq, app.state.engine, app.state.storage = working
        await dead_engine.dispose()


async def test_openapi_docs_are_served_without_a_cdn(client):
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr.net" not in docs.text
    bundle = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/api/health", "/auth/register", "/auth/jwt/login", "/auth/cookie/login", "/users/me"):
        assert path in paths
