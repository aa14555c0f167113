"""One Settings class: secrets stay secret, and a placeholder JWT secret never reaches production."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from app.config import PLACEHOLDER_JWT_SECRET, Settings, get_settings
from app.embedded import EmbeddedServices
from tests.support.paths import TEST_VAR


@pytest.mark.parametrize("environment", ["production", "test"])
def test_placeholder_jwt_secret_is_refused_outside_development(environment, monkeypatch):
    monkeypatch.delenv("JWT_SECRET", raising=False)
    with pytest.raises(ValidationError, match="JWT_SECRET must be set"):
        Settings(environment=environment)
    with pytest.raises(ValidationError, match="JWT_SECRET must be set"):
        Settings(environment=environment, jwt_secret="")


def test_production_wants_a_long_secret():
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(environment="production", jwt_secret="short-secret")
    assert Settings(environment="production", jwt_secret="x" * 40).jwt_secret.get_secret_value() == "x" * 40


def test_development_replaces_the_placeholder_with_a_kept_random_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv("JWT_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        first = get_settings().jwt_secret.get_secret_value()
        get_settings.cache_clear()
        assert get_settings().jwt_secret.get_secret_value() == first  # same across restarts
        assert first != PLACEHOLDER_JWT_SECRET and len(first) >= 32
        assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0
    finally:
        get_settings.cache_clear()


def test_secrets_do_not_show_in_repr():
    settings = Settings(environment="production", jwt_secret="y" * 40, openai_api_key="sk-very-secret")
    assert "y" * 40 not in repr(settings)
    assert "sk-very-secret" not in repr(settings)


def test_app_role_url_is_derived_from_the_owner_url():
    settings = Settings(environment="development", app_db_password="pw", app_database_url=None)
    url = settings.app_url_for("postgres://owner:secret@db.internal:5432/studyrag")
    assert url == "postgresql+asyncpg://studyrag_app:pw@db.internal:5432/studyrag"
    explicit = Settings(environment="development", app_database_url="postgresql://app:x@h/db")
    assert explicit.app_url_for("postgresql://owner@h/db") == "postgresql+asyncpg://app:x@h/db"


async def test_with_urls_set_nothing_embedded_starts(services):
    settings = get_settings().model_copy(
        update={"database_url": services.database_url, "redis_url": services.redis_url}
    )
    embedded = EmbeddedServices(settings)
    urls = await embedded.start()
    assert not embedded.started_anything
    assert make_url(urls.database_url) == make_url(services.database_url)
    assert urls.redis_url == services.redis_url


async def test_embedded_redis_is_shared_stopped_only_by_its_starter_and_keeps_data(services):
    import redis

    from app.embedded import _redis_answers

    settings = get_settings().model_copy(
        update={"database_url": services.database_url, "redis_url": None, "var_dir": TEST_VAR / "redis-share"}
    )
    owner, guest = EmbeddedServices(settings), EmbeddedServices(settings)
    first = await owner.start()
    socket_path = Path(first.redis_url.removeprefix("unix://"))
    try:
        second = await guest.start()
        assert second.redis_url == first.redis_url
        assert not guest.started_anything
        redis.Redis(unix_socket_path=str(socket_path)).set("queued-job", "kept")
        guest.stop()
        assert _redis_answers(socket_path), "a guest leaves the server running"
    finally:
        owner.stop()
    assert not _redis_answers(socket_path)

    again = EmbeddedServices(settings)
    await again.start()
    try:
        assert redis.Redis(unix_socket_path=str(socket_path)).get("queued-job") == b"kept"
    finally:
        again.stop()


async def test_a_relative_var_dir_starts_embedded_redis(services, monkeypatch):
    from app.config import Settings

    relative = (
        TEST_VAR.relative_to(Path.cwd()) / "relative-var" if TEST_VAR.is_relative_to(Path.cwd()) else None
    )
    assert relative is not None, "the suite runs from the repository"
    monkeypatch.setenv("VAR_DIR", str(relative))
    settings = Settings(database_url=services.database_url)
    assert settings.var_dir == (Path.cwd() / relative).resolve()
    embedded = EmbeddedServices(settings)
    urls = await embedded.start()
    try:
        assert urls.redis_url.startswith("unix://")
    finally:
        embedded.stop()
