"""Auth through fastapi-users' routes: register, log in by bearer and cookie, log out for real."""

import time
import uuid

import jwt
import pytest
from sqlalchemy import text

from app.config import get_settings
from tests.support.accounts import PASSWORD, bearer_token, new_email, register, set_active


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_register_login_me_and_logout_revokes_the_token(client):
    email = new_email()
    user = await register(client, email, name="Grace")
    token = await bearer_token(client, email)

    me = await client.get("/users/me", headers=auth(token))
    assert me.status_code == 200
    assert me.json()["email"] == email
    assert me.json()["name"] == "Grace"
    assert me.json()["id"] == user["id"]
    assert "hashed_password" not in me.json()

    assert (await client.post("/auth/jwt/logout", headers=auth(token))).status_code == 204
    assert (await client.get("/users/me", headers=auth(token))).status_code == 401
    # A new log-in still works: logging out ends that token, not the account.
    assert (await client.get("/users/me", headers=auth(await bearer_token(client, email)))).status_code == 200


async def test_logging_out_one_session_leaves_the_others(client):
    email = new_email()
    await register(client, email)
    laptop, phone = await bearer_token(client, email), await bearer_token(client, email)
    await client.post("/auth/jwt/logout", headers=auth(laptop))
    assert (await client.get("/users/me", headers=auth(laptop))).status_code == 401
    assert (await client.get("/users/me", headers=auth(phone))).status_code == 200


async def test_cookie_login_sets_a_safe_cookie_and_logout_ends_it(client):
    email = new_email()
    await register(client, email)
    response = await client.post("/auth/cookie/login", data={"username": email, "password": PASSWORD})
    assert response.status_code == 204
    cookie = response.headers["set-cookie"].lower()
    assert "studyrag_auth=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" in cookie  # outside development
    token = client.cookies["studyrag_auth"]

    assert (await client.get("/users/me")).status_code == 200
    assert (await client.post("/auth/cookie/logout")).status_code == 204
    client.cookies.clear()
    client.cookies.set("studyrag_auth", token, domain="testserver.local")
    assert (await client.get("/users/me")).status_code == 401


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8 characters"),
        ("password123", "most commonly used"),
        ("qwertyuiop", "most commonly used"),
        (None, "must not be your email"),
    ],
)
async def test_weak_passwords_get_a_clear_400(client, password, reason):
    email = new_email()
    response = await client.post(
        "/auth/register", json={"email": email, "password": password or email, "name": ""}
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail["code"] == "REGISTER_INVALID_PASSWORD"
    assert reason in detail["reason"]


async def test_registering_the_same_email_twice_is_refused(client):
    email = new_email()
    await register(client, email)
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    assert response.status_code == 400
    assert response.json()["detail"] == "REGISTER_USER_ALREADY_EXISTS"


async def test_register_cannot_make_itself_admin(client):
    response = await client.post(
        "/auth/register", json={"email": new_email(), "password": PASSWORD, "is_superuser": True}
    )
    assert response.status_code == 201
    assert response.json()["is_superuser"] is False


def _forge(claims: dict, *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().jwt_secret.get_secret_value(), algorithm=algorithm)


async def test_expired_tampered_unsigned_and_foreign_tokens_are_refused(client):
    user = await register(client)
    good = {
        "sub": user["id"],
        "aud": ["fastapi-users:auth"],
        "exp": int(time.time()) + 600,
        "jti": str(uuid.uuid4()),
        "iat": time.time(),
    }
    assert (await client.get("/users/me", headers=auth(_forge(good)))).status_code == 200

    expired = _forge({**good, "exp": int(time.time()) - 5})
    wrong_key = _forge(good, key="another-secret-that-is-long-enough-to-use")
    header, payload, signature = _forge(good).split(".")
    tampered_payload = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(user["id"].encode(), str(uuid.uuid4()).encode())
    ).decode()
    tampered = f"{header}.{tampered_payload}.{signature}"
    unsigned = jwt.encode(good, None, algorithm="none")
    wrong_audience = _forge({**good, "aud": ["someone-else"]})
    no_jti = _forge({key: value for key, value in good.items() if key != "jti"})
    no_expiry = _forge({key: value for key, value in good.items() if key != "exp"})
    no_issue_time = _forge({key: value for key, value in good.items() if key != "iat"})

    tokens = (
        expired,
        wrong_key,
        tampered,
        unsigned,
        wrong_audience,
        no_jti,
        no_expiry,
        no_issue_time,
        "garbage",
    )
    for token in tokens:
        assert (await client.get("/users/me", headers=auth(token))).status_code == 401, token
        client.cookies.set("studyrag_auth", token, domain="testserver.local")
        assert (await client.get("/users/me")).status_code == 401, token
        client.cookies.clear()


async def test_deactivated_user_is_refused_at_once(client, owner_engine):
    email = new_email()
    user = await register(client, email)
    token = await bearer_token(client, email)
    cookie_login = await client.post("/auth/cookie/login", data={"username": email, "password": PASSWORD})
    assert cookie_login.status_code == 204

    await set_active(owner_engine, user["id"], False)
    assert (await client.get("/users/me", headers=auth(token))).status_code == 401
    assert (await client.get("/users/me")).status_code == 401
    relogin = await client.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
    assert relogin.status_code == 400


async def test_logins_and_failures_are_audited(client, superuser_engine):
    email = new_email()
    user = await register(client, email)
    await bearer_token(client, email)
    bad = await client.post("/auth/jwt/login", data={"username": email, "password": "not the password"})
    assert bad.status_code == 400

    async with superuser_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "select action, outcome, user_id, ip from audit_log "
                    "where user_id = :id or target = :email order by id"
                ),
                {"id": user["id"], "email": email},
            )
        ).all()
    events = [(action, outcome) for action, outcome, _, _ in rows]
    assert events == [("register", "ok"), ("login", "ok"), ("login", "failed")]
    assert all(ip == "203.0.113.7" for *_, ip in rows)


async def test_changing_the_password_signs_out_every_session(client):
    email = new_email()
    await register(client, email)
    laptop, phone = await bearer_token(client, email), await bearer_token(client, email)
    changed = await client.patch(
        "/users/me",
        json={"password": "another fine long passphrase", "current_password": PASSWORD},
        headers=auth(laptop),
    )
    assert changed.status_code == 200, changed.text
    for token in (laptop, phone):
        assert (await client.get("/users/me", headers=auth(token))).status_code == 401
    fresh = await bearer_token(client, email, password="another fine long passphrase")
    assert (await client.get("/users/me", headers=auth(fresh))).status_code == 200


async def test_changing_email_or_password_needs_the_current_password(client):
    email = new_email()
    await register(client, email, name="Ada")
    token = await bearer_token(client, email)
    new_password, new_address = "a different long passphrase", new_email()
    for body in (
        {"password": new_password},
        {"email": new_address},
        {"password": new_password, "current_password": "not the password"},
        {"email": new_address, "current_password": ""},
    ):
        refused = await client.patch("/users/me", json=body, headers=auth(token))
        assert refused.status_code == 400, (body, refused.text)
        assert "current password" in refused.json()["detail"]["reason"]
    me = await client.get("/users/me", headers=auth(token))
    assert me.status_code == 200 and me.json()["email"] == email  # nothing changed, still signed in
    # A name needs no proof; the same email is no change.
    renamed = await client.patch("/users/me", json={"name": "Grace", "email": email}, headers=auth(token))
    assert renamed.status_code == 200 and renamed.json()["name"] == "Grace", renamed.text
    moved = await client.patch(
        "/users/me", json={"email": new_address, "current_password": PASSWORD}, headers=auth(token)
    )
    assert moved.status_code == 200 and moved.json()["email"] == new_address, moved.text
    assert await bearer_token(client, new_address)


async def test_passwords_are_stored_at_the_configured_cost_and_old_hashes_upgraded(client, owner_engine):
    """A new account's hash has the configured Argon2id cost; an account hashed at argon2-cffi's old
    default (64 MiB, 3 passes, 4 lanes) still logs in, and its stored hash is then rewritten."""
    from argon2 import PasswordHasher

    async def stored_hash(user_id: str) -> str:
        async with owner_engine.connect() as connection:
            return await connection.scalar(
                text("select hashed_password from users where id = :id"), {"id": user_id}
            )

    email = new_email()
    user = await register(client, email)
    assert "$argon2id$v=19$m=19456,t=2,p=1$" in await stored_hash(user["id"])

    old = PasswordHasher(memory_cost=65536, time_cost=3, parallelism=4).hash(PASSWORD)
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("update users set hashed_password = :hash where id = :id"), {"hash": old, "id": user["id"]}
        )
    token = await bearer_token(client, email)
    assert (await client.get("/users/me", headers=auth(token))).status_code == 200
    upgraded = await stored_hash(user["id"])
    assert upgraded != old
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await client.get("/users/me", headers=auth(await bearer_token(client, email)))).status_code == 200
