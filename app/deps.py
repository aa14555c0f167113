"""Annotated dependencies shared by routes."""

from typing import Annotated

from fastapi import Depends

from app.auth.backend import current_active_user
from app.config import Settings, get_settings
from app.db import SessionDep
from app.models import User
from app.tenancy import Tenant, bind_tenant

CurrentUser = Annotated[User, Depends(current_active_user)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_tenant(user: CurrentUser, session: SessionDep) -> Tenant:
    """The only producer of a `Tenant`: the authenticated user, bound to the request's session."""
    tenant = Tenant(user.id)
    await bind_tenant(session, tenant)
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]

__all__ = ["CurrentUser", "SessionDep", "SettingsDep", "TenantDep"]
