"""fastapi-users wiring: the user table adapter and the user manager (password rules, audit events)."""

import asyncio
import uuid
from datetime import UTC, datetime

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import BaseUserManager, InvalidPasswordException, UUIDIDMixin, exceptions
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase

from app import audit_log
from app.auth.passwords import password_helper, password_problem
from app.auth.schemas import UserCreate, UserUpdate
from app.config import get_settings
from app.db import SessionDep, release
from app.models import User
from app.tenancy import Tenant, bind_tenant
from app.web import client_ip


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    def __init__(self, user_db: SQLAlchemyUserDatabase, request: Request | None) -> None:
        settings = get_settings()
        helper = password_helper(
            memory_kib=settings.password_hash_memory_kib,
            time_cost=settings.password_hash_time_cost,
            parallelism=settings.password_hash_parallelism,
        )
        super().__init__(user_db, helper)
        self.request = request
        secret = settings.jwt_secret.get_secret_value()
        self.reset_password_token_secret = secret
        self.verification_token_secret = secret

    @property
    def session(self):
        return self.user_db.session

    async def validate_password(self, password: str, user: UserCreate | User) -> None:
        problem = password_problem(password, email=user.email, min_length=get_settings().min_password_length)
        if problem:
            raise InvalidPasswordException(reason=problem)

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        if self.request is not None:
            # The per-account log-in limit counts the account this attempt really tries (the page's
            # `email`, the API's `username`), whatever other fields the form carries.
            account = credentials.username.strip().lower()[:320]
            await self.request.app.state.rate_limiter.enforce("login", ip=None, who=account)
        user = await self._check_password(credentials)
        if (user is None or not user.is_active) and self.request is not None:
            # The login request is refused and rolled back; the record of the attempt must stay (and
            # `_check_password` has given the request's connection back, so it is the only one held).
            outcome = "denied" if user is not None else "failed"
            await audit_log.record_now(
                self.request.app.state.sessionmaker,
                action="login",
                outcome=outcome,
                target=credentials.username[:320],
                ip=client_ip(self.request),
                detail={"reason": "inactive" if outcome == "denied" else "bad credentials"},
            )
        return user

    async def _check_password(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        """fastapi-users' check, with the Argon2 work (~0.1–0.5 s of CPU) in a thread: on the event loop
        it stalls every other request of the process while a class logs in. No connection is held
        meanwhile."""
        helper = self.password_helper
        try:
            user = await self.get_by_email(credentials.username)
        except exceptions.UserNotExists:
            await release(self.session)
            await asyncio.to_thread(helper.hash, credentials.password)  # the same time as a real check
            return None
        await release(self.session)
        verified, new_hash = await asyncio.to_thread(
            helper.verify_and_update, credentials.password, user.hashed_password
        )
        if not verified:
            return None
        if new_hash is not None:
            await self.user_db.update(user, {"hashed_password": new_hash})
        return user

    async def update(
        self, user_update: UserUpdate, user: User, safe: bool = False, request: Request | None = None
    ) -> User:
        """A user changing their own email or password proves it is them with the current password: a
        stolen token or an unlocked laptop alone cannot take the account over. Wrong guesses count
        against the account's log-in limit."""
        changes = user_update.create_update_dict()
        email = changes.get("email")
        if safe and ("password" in changes or (email and email.lower() != user.email.lower())):
            current = user_update.current_password
            if current and request is not None:
                await request.app.state.rate_limiter.enforce("login", ip=None, who=user.email.lower())
            verify = self.password_helper.verify_and_update  # Argon2: off the event loop, as at log-in
            if not current or not (await asyncio.to_thread(verify, current, user.hashed_password))[0]:
                raise InvalidPasswordException(
                    reason="Enter your current password (current_password) to change your email or password."
                )
        return await super().update(user_update, user, safe=safe, request=request)

    async def on_after_register(self, user: User, request: Request | None = None) -> None:
        await bind_tenant(self.session, Tenant(user.id))
        await audit_log.record(self.session, action="register", user_id=user.id, ip=client_ip(request))

    async def on_after_update(self, user: User, update_dict: dict, request: Request | None = None) -> None:
        if "password" in update_dict:
            # A new password signs out every session that the old one let in.
            user.sessions_valid_after = datetime.now(UTC)
            await bind_tenant(self.session, Tenant(user.id))
            await audit_log.record(
                self.session, action="password.change", user_id=user.id, ip=client_ip(request)
            )

    async def on_after_login(
        self, user: User, request: Request | None = None, response: Response | None = None
    ) -> None:
        await bind_tenant(self.session, Tenant(user.id))
        await audit_log.record(self.session, action="login", user_id=user.id, ip=client_ip(request))


# Plain functions, not generators: they share the request's function-scoped session.
async def get_user_db(session: SessionDep) -> SQLAlchemyUserDatabase:
    return SQLAlchemyUserDatabase(session, User)


async def get_user_manager(
    request: Request, user_db: SQLAlchemyUserDatabase = Depends(get_user_db)
) -> UserManager:
    return UserManager(user_db, request)
