"""Accounts for tests: fresh addresses, sign-up, a bearer token, and the owner's switches on a user."""

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PASSWORD = "a fine long passphrase"


def new_email(prefix: str = "student") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register(client: httpx.AsyncClient, email: str | None = None, name: str = "Ada") -> dict:
    email = email or new_email()
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def bearer_token(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await client.post("/auth/jwt/login", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def set_active(owner_engine: AsyncEngine, user_id: str, active: bool) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("update users set is_active = :active where id = :id"), {"active": active, "id": user_id}
        )


async def make_admin(owner_engine: AsyncEngine, user_id: str) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text("update users set is_superuser = true where id = :id"), {"id": user_id})
