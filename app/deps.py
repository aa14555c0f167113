"""Annotated dependencies shared by routes."""

from typing import Annotated, Any

from fastapi import Depends, Request

from app.auth.backend import current_active_user, optional_active_user
from app.config import Settings, get_settings
from app.db import SessionDep, release
from app.models import User
from app.security.rate_limit import Action, RateLimiter
from app.tenancy import Tenant, bind_tenant
from app.web import client_ip

CurrentUser = Annotated[User, Depends(current_active_user)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_tenant(user: CurrentUser, session: SessionDep) -> Tenant:
    """The only producer of a `Tenant`: the authenticated user, bound to the request's session."""
    tenant = Tenant(user.id)
    await bind_tenant(session, tenant)
    return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]


def rate_limit(action: Action) -> Any:
    """A dependency that counts the request against `action`'s limits, or answers 429."""

    async def check(
        request: Request, session: SessionDep, user: User | None = Depends(optional_active_user)
    ) -> None:
        await release(session)  # no pooled connection is held while Redis counts
        # Log-in: the per-account limit is counted where the account is known for certain, by the
        # user manager as it authenticates (UserManager.authenticate), never from a form field here.
        who = str(user.id) if user and action != "login" else None
        limiter: RateLimiter = request.app.state.rate_limiter
        await limiter.enforce(action, ip=client_ip(request), who=who)

    return Depends(check)


__all__ = ["CurrentUser", "SessionDep", "SettingsDep", "TenantDep", "rate_limit"]
