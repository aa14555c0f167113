"""Bursts get 429 with Retry-After and a readable message; the limits pass with their window.

The suite runs with very high limits (see conftest); each test here sets the rule it checks on the
running app's limiter, which counts in the real Redis. Each test comes from its own client address,
so counts of other tests never mix in.
"""

import asyncio
import random

import httpx
import pytest
from limits import parse

from app.security.rate_limit import Rule
from tests.support.accounts import PASSWORD, bearer_token, new_email, register
from tests.support.library import Student, pdf_bytes

HIGH = parse("100000/minute")


@pytest.fixture
async def from_new_address(app):
    ip = f"198.51.{random.randint(0, 255)}.{random.randint(1, 254)}"
    transport = httpx.ASGITransport(app=app, client=(ip, 4711))
    headers = {"Origin": "https://testserver"}
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver", headers=headers) as c:
        yield c


@pytest.fixture
def set_rule(app, monkeypatch):
    def set_rule(action: str, *, per_ip: str | None = None, per_user: str | None = None) -> None:
        rule = Rule(parse(per_ip) if per_ip else HIGH, parse(per_user) if per_user else HIGH)
        monkeypatch.setitem(app.state.rate_limiter.rules, action, rule)

    return set_rule


async def test_guessing_one_accounts_password_is_slowed_then_the_owner_gets_back_in(
    from_new_address, set_rule
):
    client = from_new_address
    victim = new_email()
    await register(client, victim)
    # A window long enough that three Argon2 checks on a loaded machine fit in it.
    set_rule("login", per_user="3 per 8 seconds")
    for _ in range(3):
        wrong = await client.post("/auth/jwt/login", data={"username": victim, "password": "not it at all"})
        assert wrong.status_code == 400
    blocked = await client.post("/auth/jwt/login", data={"username": victim, "password": PASSWORD})
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 8
    assert blocked.json()["detail"].startswith("Too many log-in attempts. Try again in")
    # The page says so too, in words, with the same header.
    page = await client.post("/login", data={"email": victim.upper(), "password": PASSWORD})
    assert page.status_code == 429 and "Too many log-in attempts" in page.text
    assert "retry-after" in page.headers
    # Other accounts are not affected...
    other = new_email()
    await register(client, other)
    assert (
        await client.post("/auth/jwt/login", data={"username": other, "password": PASSWORD})
    ).status_code == 200
    # ...and the owner is not locked out: once the window has passed, the right password works.
    await asyncio.sleep(int(blocked.headers["retry-after"]) + 0.2)
    assert (
        await client.post("/auth/jwt/login", data={"username": victim, "password": PASSWORD})
    ).status_code == 200


async def test_sign_ups_from_one_address_are_limited(from_new_address, set_rule):
    set_rule("register", per_ip="2/minute")
    for _ in range(2):
        await register(from_new_address)
    response = await from_new_address.post(
        "/auth/register", json={"email": new_email(), "password": PASSWORD, "name": "Burst"}
    )
    assert response.status_code == 429 and "retry-after" in response.headers
    page = await from_new_address.post(
        "/signup", data={"email": new_email(), "password": PASSWORD, "name": "x"}
    )
    assert page.status_code == 429 and "Too many sign-ups" in page.text


async def test_uploads_per_user_are_limited(from_new_address, set_rule):
    email = new_email()
    user = await register(from_new_address, email)
    student = Student(from_new_address, user, await bearer_token(from_new_address, email))
    set_rule("upload", per_user="2/minute")
    for n in range(2):
        await student.upload_one((f"u{n}.pdf", pdf_bytes(f"burst {n}")))
    refused = await student.upload(("u2.pdf", pdf_bytes("burst 2")))
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many uploads")
    assert len((await student.get("/api/files")).json()) == 2


async def test_questions_per_address_are_limited(from_new_address, set_rule):
    email = new_email()
    user = await register(from_new_address, email)
    student = Student(from_new_address, user, await bearer_token(from_new_address, email))
    set_rule("chat", per_ip="2/minute")
    body = {"query": "What is a sound argument?", "active_semester": "Y1", "active_subject": "Logic"}
    for _ in range(2):
        response = await from_new_address.post("/api/chat", json=body, headers=student.headers)
        assert response.status_code == 200, response.text
    refused = await from_new_address.post("/api/chat", json=body, headers=student.headers)
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Too many questions")
    streamed = await from_new_address.post("/api/chat/stream", json=body, headers=student.headers)
    assert streamed.status_code == 429


@pytest.mark.parametrize(
    ("url", "field", "decoy"),
    [("/login", "email", "username"), ("/auth/jwt/login", "username", "email")],
    ids=["page", "api"],
)
async def test_the_account_limit_counts_the_account_really_tried(
    from_new_address, set_rule, url, field, decoy
):
    """A second field naming another account (a fresh one each time) does not dodge the limit: it is
    counted on the account the route authenticates."""
    client = from_new_address
    victim = new_email()
    await register(client, victim)
    set_rule("login", per_user="3/minute")

    def attempt(password: str) -> dict:
        return {field: victim, decoy: new_email("decoy"), "password": password}

    for _ in range(3):
        wrong = await client.post(url, data=attempt("not it at all"))
        assert wrong.status_code == 400, wrong.text
    blocked = await client.post(url, data=attempt(PASSWORD))
    assert blocked.status_code == 429, blocked.status_code
    assert "retry-after" in blocked.headers
    assert "studyrag_auth" not in blocked.headers.get("set-cookie", "")
