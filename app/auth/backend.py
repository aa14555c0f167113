"""JWT authentication: a cookie for pages, a bearer header for the API, and tokens that log out.

A JWT alone stays valid until it expires, so every token carries a `jti`, and the session it belongs
to a `sid`: a log-in starts a session, and the fresh tokens a page session in use is renewed with
(app/auth/renewal.py) keep its `sid`. Logging out stores the `sid` in `revoked_tokens` until the last
token of the session would have expired, so every token of that session is dead at once — the one
logged out with and any earlier copy. Reading a token checks its `jti` and its `sid` against that list.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import Request
from fastapi_users import FastAPIUsers
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport
from fastapi_users.authentication.strategy import JWTStrategy
from fastapi_users.jwt import generate_jwt
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.users import get_user_manager
from app.config import Settings, get_settings
from app.db import SessionDep
from app.models import RevokedToken, User
from app.security.cookies import COOKIE_NAME

AUDIENCE = ["fastapi-users:auth"]
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "aud", "exp", "jti", "iat"]


def issue_token(user_id: uuid.UUID, settings: Settings, session_id: uuid.UUID | None = None) -> str:
    """A token for a new session, or (with `session_id`) a renewal within one."""
    jti = uuid.uuid4()
    data = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "jti": str(jti),
        "sid": str(session_id or jti),
        "iat": time.time(),
    }
    secret = settings.jwt_secret.get_secret_value()
    return generate_jwt(data, secret, settings.access_token_lifetime_seconds, algorithm=ALGORITHM)


class RevocableJWTStrategy(JWTStrategy[User, uuid.UUID]):
    def __init__(self, session: AsyncSession, settings: Settings, request: Request | None = None) -> None:
        secret = settings.jwt_secret.get_secret_value()
        lifetime = settings.access_token_lifetime_seconds
        super().__init__(secret, lifetime, token_audience=AUDIENCE, algorithm=ALGORITHM)
        self.session, self.settings, self.request = session, settings, request

    def _claims(self, token: str) -> dict | None:
        try:
            return jwt.decode(
                token,
                self.decode_key,
                audience=self.token_audience,
                algorithms=[self.algorithm],
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError:
            return None

    async def write_token(self, user: User) -> str:
        return issue_token(user.id, self.settings)

    async def read_token(self, token: str | None, user_manager) -> User | None:
        claims = self._claims(token) if token else None
        if claims is None:
            return None
        try:
            jti = uuid.UUID(claims["jti"])
            session_id = _session_of(claims)
            user_id = user_manager.parse_id(claims["sub"])
        except Exception:
            return None
        revoked = await self.session.scalar(
            select(RevokedToken.jti).where(RevokedToken.jti.in_({jti, session_id})).limit(1)
        )
        if revoked is not None:
            return None
        user = await self.session.get(User, user_id)
        if user is None:
            return None
        if user.sessions_valid_after is not None and claims["iat"] < user.sessions_valid_after.timestamp():
            return None  # issued before the account was deactivated
        if self.request is not None:  # for the request's log line: the id, never the email
            self.request.state.user_id = str(user.id)
        if user.is_active:
            _touch(user)
            self._renew_if_old(token, claims["iat"], user, session_id)
        return user

    def _renew_if_old(self, token: str, issued_at: float, user: User, session_id: uuid.UUID) -> None:
        """A page session (cookie) in use gets a fresh short-lived token once a third of its life has
        passed (see app.auth.renewal); an idle one simply expires. Bearer tokens are not renewed."""
        if self.request is None or self.request.cookies.get(COOKIE_NAME) != token:
            return
        if time.time() - issued_at > self.lifetime_seconds / 3:
            self.request.state.renew_session_for = (user.id, session_id)

    async def destroy_token(self, token: str, user: User) -> None:
        """Log out: the whole session, every token it was ever renewed with. None of them outlives
        a full lifetime from now (each was issued before this moment)."""
        claims = self._claims(token)
        if claims is None:
            return
        try:
            session_id = _session_of(claims)
        except ValueError:
            return
        last_expiry = datetime.now(UTC) + timedelta(seconds=self.lifetime_seconds)
        await self.session.execute(
            insert(RevokedToken).values(jti=session_id, expires_at=last_expiry).on_conflict_do_nothing()
        )


def _session_of(claims: dict) -> uuid.UUID:
    """The session a token belongs to (a token from before sessions were named is its own session)."""
    return uuid.UUID(str(claims.get("sid") or claims["jti"]))


LAST_ACTIVE_RESOLUTION = timedelta(minutes=5)


def _touch(user: User) -> None:
    """Note that the user is active now, at most once per LAST_ACTIVE_RESOLUTION (the request's
    session writes it when it commits)."""
    now = datetime.now(UTC)
    if user.last_active_at is None or now - user.last_active_at > LAST_ACTIVE_RESOLUTION:
        user.last_active_at = now


def get_jwt_strategy(session: SessionDep, request: Request) -> RevocableJWTStrategy:
    return RevocableJWTStrategy(session, get_settings(), request)


def cookie_options(settings: Settings) -> dict:
    return {
        "max_age": settings.access_token_lifetime_seconds,
        "secure": not settings.is_development,
        "httponly": True,
        "samesite": "lax",
    }


def _cookie_transport() -> CookieTransport:
    options = cookie_options(get_settings())
    return CookieTransport(
        cookie_name=COOKIE_NAME,
        cookie_max_age=options["max_age"],
        cookie_secure=options["secure"],
        cookie_httponly=options["httponly"],
        cookie_samesite=options["samesite"],
    )


cookie_backend = AuthenticationBackend(
    name="cookie", transport=_cookie_transport(), get_strategy=get_jwt_strategy
)
bearer_backend = AuthenticationBackend(
    name="jwt", transport=BearerTransport(tokenUrl="auth/jwt/login"), get_strategy=get_jwt_strategy
)

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [cookie_backend, bearer_backend])

current_active_user = fastapi_users.current_user(active=True)
optional_active_user = fastapi_users.current_user(active=True, optional=True)
