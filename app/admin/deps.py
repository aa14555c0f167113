"""Who may enter the admin area: active admins. Everyone else is told there is nothing here (404)."""

from typing import Annotated

from fastapi import Depends, Request

from app.auth.backend import optional_active_user
from app.db import SessionDep
from app.exceptions import AccessDenied, NotFound
from app.models import User
from app.tenancy import Tenant, bind_tenant


async def current_admin(
    request: Request, session: SessionDep, user: User | None = Depends(optional_active_user)
) -> User:
    if user is None:
        raise NotFound("Not Found")
    if not user.is_superuser:  # a logged-in user probing the admin area: keep the record
        raise AccessDenied(action="admin.access", user_id=user.id, target=request.url.path)
    await bind_tenant(session, Tenant(user.id))  # the admin's own actions are logged in their name
    return user


AdminDep = Annotated[User, Depends(current_admin)]
