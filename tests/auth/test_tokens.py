"""Tokens: a bad token is worth exactly as much as no token, on every route; page sessions slide."""

import re
import time
import uuid

import jwt
import pytest

from app.config import get_settings
from app.routing import api_routes
from tests.support.accounts import PASSWORD, bearer_token, new_email, register


def _forge(claims: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().jwt_secret.get_secret_value(), algorithm=algorithm)


def _claims(user_id: str, **changes) -> dict:
    now = time.time()
    claims = {
        "sub": user_id,
        "aud": ["fastapi-users:auth"],
        "exp": int(now) + 600,
        "jti": str(uuid.uuid4()),
        "iat": now,
    }
    return {**claims, **changes}


@pytest.fixture
async def bad_tokens(client) -> dict[str, str]:
    email = new_email()
    user = await register(client, email)
    good = _claims(user["id"])
    revoked = await bearer_token(client, email)
    logout = await client.post("/auth/jwt/logout", headers={"Authorization": f"Bearer {revoked}"})
    assert logout.status_code == 204
    return {
        "expired": _forge(_claims(user["id"], exp=int(time.time()) - 5)),
        "wrong signature": _forge(good, key="another-secret-that-is-long-enough-to-sign-with"),
        "alg none": jwt.encode(good, None, algorithm="none"),
        "wrong audience": _forge({**good, "aud": ["someone-else"]}),
        "revoked": revoked,
        "unknown user": _forge(_claims(str(uuid.uuid4()))),
    }


def _requests(app) -> list[tuple[str, str]]:
    calls = []
    for path, route in api_routes(app):
        concrete = re.sub(r"\{run_id\}", "1", path)
        concrete = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), concrete)
        calls += [(method, concrete) for method in sorted(route.methods - {"HEAD"})]
    return calls


async def test_bad_tokens_get_what_no_token_gets_on_every_route(app, bad_tokens):
    import httpx

    # Other tests may add routes that fail on purpose; their 500s must come back as answers here.
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711), raise_app_exceptions=False)
    headers = {"Origin": "https://testserver"}
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers=headers
    ) as client:
        await _sweep(app, client, bad_tokens)


async def _sweep(app, client, bad_tokens: dict[str, str]) -> None:
    protected = 0
    for method, path in _requests(app):
        anonymous = await client.request(method, path)
        if anonymous.status_code not in (401, 303, 404) or (
            anonymous.status_code == 303 and "/login" not in anonymous.headers.get("location", "")
        ):
            continue  # open to everyone (health, docs, log-in and sign-up pages)
        protected += 1
        for name, token in bad_tokens.items():
            by_bearer = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
            assert by_bearer.status_code == anonymous.status_code, (name, "bearer", method, path)
            client.cookies.set("studyrag_auth", token, domain="testserver.local")
            by_cookie = await client.request(method, path)
            client.cookies.clear()
            assert by_cookie.status_code == anonymous.status_code, (name, "cookie", method, path)
            issued = [
                c for c in by_cookie.headers.get_list("set-cookie") if re.match(r'studyrag_auth=[^";]', c)
            ]
            assert not issued, (name, method, path)  # a refused token is never swapped for a good one
    assert protected >= 25, protected  # the sweep really reached the app's routes


async def test_a_page_session_in_use_is_renewed_and_an_old_bearer_token_is_not(client):
    email = new_email()
    user = await register(client, email)
    lifetime = get_settings().access_token_lifetime_seconds
    aged = _forge(_claims(user["id"], iat=time.time() - lifetime / 2, exp=int(time.time() + lifetime / 2)))

    client.cookies.set("studyrag_auth", aged, domain="testserver.local")
    page = await client.get("/library")
    assert page.status_code == 200, (await client.get("/users/me")).text
    renewed = page.cookies.get("studyrag_auth")
    assert renewed and renewed != aged
    claims = jwt.decode(renewed, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == pytest.approx(lifetime, abs=2)
    client.cookies.clear()

    fresh = await client.post("/auth/cookie/login", data={"username": email, "password": PASSWORD})
    assert fresh.status_code == 204
    assert "studyrag_auth" not in (await client.get("/library")).headers.get("set-cookie", "")
    client.cookies.clear()

    by_bearer = await client.get("/users/me", headers={"Authorization": f"Bearer {aged}"})
    assert by_bearer.status_code == 200 and "set-cookie" not in by_bearer.headers


async def test_logging_out_an_old_session_is_not_undone_by_renewal(client):
    email = new_email()
    user = await register(client, email)
    lifetime = get_settings().access_token_lifetime_seconds
    aged = _forge(_claims(user["id"], iat=time.time() - lifetime / 2, exp=int(time.time() + lifetime / 2)))
    client.cookies.set("studyrag_auth", aged, domain="testserver.local")
    response = await client.post("/logout")
    assert response.status_code == 303
    cookies = response.headers.get_list("set-cookie")
    assert len([c for c in cookies if c.startswith("studyrag_auth=")]) == 1
    assert 'studyrag_auth="";' in cookies[0] or "Max-Age=0" in cookies[0]


async def test_logging_out_ends_every_token_of_the_session_renewals_included(client):
    """A page session in use is renewed with fresh tokens; an earlier one (say, copied from the browser
    before) must die with the log-out too, not live on until it expires."""
    email = new_email()
    user = await register(client, email)
    lifetime = get_settings().access_token_lifetime_seconds
    earlier = _forge(_claims(user["id"], iat=time.time() - lifetime / 2, exp=int(time.time() + lifetime / 2)))
    client.cookies.set("studyrag_auth", earlier, domain="testserver.local")
    page = await client.get("/library")
    renewed = page.cookies.get("studyrag_auth")
    assert renewed and renewed != earlier
    client.cookies.clear()
    other = await bearer_token(client, email)  # another session of the account (another device)
    client.cookies.set("studyrag_auth", renewed, domain="testserver.local")
    assert (await client.post("/logout")).status_code == 303
    client.cookies.clear()
    for token in (renewed, earlier):
        assert (
            await client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 401
    # The other session is not logged out with this one.
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {other}"})).status_code == 200
