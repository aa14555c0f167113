"""JWT authentication: a cookie for pages, a bearer header for the API, and tokens that log out.

A JWT alone stays valid until it expires, so every token carries a `jti`; logging out stores it in
`revoked_tokens` until its expiry, and reading a token checks that list.
"""

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from fastapi_users import FastAPIUsers
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport
from fastapi_users.authentication.strategy import JWTStrategy
from fastapi_users.jwt import generate_jwt
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.users import get_user_manager
from app.config import get_settings
from app.db import SessionDep
from app.models import RevokedToken, User

AUDIENCE = ["fastapi-users:auth"]
ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["sub", "aud", "exp", "jti", "iat"]
COOKIE_NAME = "studyrag_auth"


class RevocableJWTStrategy(JWTStrategy[User, uuid.UUID]):
    def __init__(self, session: AsyncSession, secret: str, lifetime_seconds: int) -> None:
        super().__init__(secret, lifetime_seconds, token_audience=AUDIENCE, algorithm=ALGORITHM)
        self.session = session

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
        data = {
            "sub": str(user.id),
            "aud": self.token_audience,
            "jti": str(uuid.uuid4()),
            "iat": datetime.now(UTC).timestamp(),
        }
        return generate_jwt(data, self.encode_key, self.lifetime_seconds, algorithm=self.algorithm)

    async def read_token(self, token: str | None, user_manager) -> User | None:
        claims = self._claims(token) if token else None
        if claims is None:
            return None
        try:
            jti = uuid.UUID(claims["jti"])
            user_id = user_manager.parse_id(claims["sub"])
        except Exception:
            return None
        revoked = await self.session.scalar(select(RevokedToken.jti).where(RevokedToken.jti == jti))
        if revoked is not None:
            return None
        user = await self.session.get(User, user_id)
        if user is None:
            return None
        if user.sessions_valid_after is not None and claims["iat"] < user.sessions_valid_after.timestamp():
            return None  # issued before the account was deactivated
        if user.is_active:
            _touch(user)
        return user

    async def destroy_token(self, token: str, user: User) -> None:
        claims = self._claims(token)
        if claims is None:
            return
        await self.session.execute(
            insert(RevokedToken)
            .values(jti=uuid.UUID(claims["jti"]), expires_at=datetime.fromtimestamp(claims["exp"], UTC))
            .on_conflict_do_nothing()
        )


LAST_ACTIVE_RESOLUTION = timedelta(minutes=5)


def _touch(user: User) -> None:
    """Note that the user is active now, at most once per LAST_ACTIVE_RESOLUTION (the request's
    session writes it when it commits)."""
    now = datetime.now(UTC)
    if user.last_active_at is None or now - user.last_active_at > LAST_ACTIVE_RESOLUTION:
        user.last_active_at = now


def get_jwt_strategy(session: SessionDep) -> RevocableJWTStrategy:
    settings = get_settings()
    return RevocableJWTStrategy(
        session, settings.jwt_secret.get_secret_value(), settings.access_token_lifetime_seconds
    )


def _cookie_transport() -> CookieTransport:
    settings = get_settings()
    return CookieTransport(
        cookie_name=COOKIE_NAME,
        cookie_max_age=settings.access_token_lifetime_seconds,
        cookie_secure=not settings.is_development,
        cookie_httponly=True,
        cookie_samesite="lax",
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
