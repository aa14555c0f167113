"""Authentication (and the rate limit) before FastAPI reads a request's body.

FastAPI reads a route's whole body before it resolves a single dependency — for a multipart upload
that means spooling every file to temporary disk — so an anonymous client could make us write
MAX_FILES_PER_UPLOAD × MAX_UPLOAD_MB before it was told 401. An endpoint marked `@before_body("upload")`
on a router with `route_class=BeforeBodyRoute` is refused (401, or 429 over its rate limit) before
anything of its body is read. Its own dependencies then authenticate it again as usual, on the
request's session; the check here uses a short session of its own, closed before that one opens.
"""

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from app.auth.backend import RevocableJWTStrategy
from app.auth.users import UserManager
from app.config import get_settings
from app.models import User
from app.security.cookies import COOKIE_NAME
from app.web import client_ip

_MARK = "before_body_action"


def before_body(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an endpoint: authenticate and count it against `action`'s rate limits before its body."""

    def mark(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        setattr(endpoint, _MARK, action)
        return endpoint

    return mark


async def active_user_of(request: Request) -> User | None:
    """The active user whose token the request carries (a bearer header, else the session cookie)."""
    scheme, bearer = get_authorization_scheme_param(request.headers.get("authorization"))
    token = bearer if scheme.lower() == "bearer" else request.cookies.get(COOKIE_NAME)
    if not token:
        return None
    async with request.app.state.sessionmaker() as session:
        strategy = RevocableJWTStrategy(session, get_settings())
        user = await strategy.read_token(token, UserManager(SQLAlchemyUserDatabase(session, User), None))
    return user if user is not None and user.is_active else None


class BeforeBodyRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        action = getattr(self.endpoint, _MARK, None)
        if action is None:
            return handler

        async def authenticated_first(request: Request) -> Response:
            user = await active_user_of(request)
            if user is None:
                raise HTTPException(status_code=401, detail="Unauthorized")
            await request.app.state.rate_limiter.enforce(action, ip=client_ip(request), who=str(user.id))
            return await handler(request)

        return authenticated_first
