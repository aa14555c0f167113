"""Who may enter the admin area: active admins. Everyone else is told there is nothing here (404)."""

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app import audit
from app.auth.backend import optional_active_user
from app.auth.users import client_ip
from app.db import SessionDep
from app.models import User
from app.tenancy import Tenant, bind_tenant


async def current_admin(
    request: Request, session: SessionDep, user: User | None = Depends(optional_active_user)
) -> User:
    if user is None or not user.is_superuser:
        if user is not None:  # a logged-in user probing the admin area: keep the record
            user_id = user.id
            await session.rollback()  # the request fails: free its connection before the record takes one
            await audit.record_refusal(
                request,
                action="admin.access",
                user_id=user_id,
                target=request.url.path[:300],
                ip=client_ip(request),
            )
        raise HTTPException(status_code=404)
    await bind_tenant(session, Tenant(user.id))  # the admin's own actions are logged in their name
    return user


AdminDep = Annotated[User, Depends(current_admin)]
