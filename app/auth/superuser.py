"""Granting the admin flag from the command line (`studyrag create-admin EMAIL`)."""

from collections.abc import Callable

from fastapi_users import exceptions
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from pydantic import ValidationError

from app import audit_log
from app.auth.schemas import UserCreate
from app.auth.users import UserManager
from app.db import make_engine, make_sessionmaker
from app.embedded import ServiceUrls
from app.models import User
from app.tenancy import Tenant, bind_tenant


async def make_admin(urls: ServiceUrls, *, email: str, name: str, ask_password: Callable[[], str]) -> bool:
    """Make `email` an admin, creating the account if needed. Returns True when it was created."""
    engine = make_engine(urls.app_database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            user_db = SQLAlchemyUserDatabase(session, User)
            manager = UserManager(user_db, request=None)
            try:
                user = await manager.get_by_email(email)
                created = False
                user = await user_db.update(user, {"is_superuser": True})
            except exceptions.UserNotExists:
                try:
                    new_user = UserCreate(email=email, password=ask_password(), name=name, is_superuser=True)
                except ValidationError:
                    raise ValueError(f"{email!r} is not a valid email address.") from None
                try:
                    user = await manager.create(new_user, safe=False)
                except exceptions.InvalidPasswordException as exc:
                    raise ValueError(exc.reason) from None
                created = True
            await bind_tenant(session, Tenant(user.id))
            await audit_log.record(
                session, action="admin.grant", user_id=user.id, target=email, detail={"via": "cli"}
            )
            await session.commit()
            return created
    finally:
        await engine.dispose()
