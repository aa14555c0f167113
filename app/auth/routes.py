"""fastapi-users' routes at their usual paths."""

from fastapi import APIRouter

from app.api_errors import errors
from app.auth.backend import bearer_backend, cookie_backend, fastapi_users
from app.auth.schemas import UserCreate, UserRead, UserUpdate
from app.deps import rate_limit

router = APIRouter()
for name, backend in (("jwt", bearer_backend), ("cookie", cookie_backend)):
    # Log-in is rate-limited; log-out, from the same fastapi-users router, is not.
    auth_router = fastapi_users.get_auth_router(backend)
    for limited in (True, False):
        part = APIRouter()
        part.routes = [route for route in auth_router.routes if route.path.endswith("/login") == limited]
        router.include_router(
            part,
            prefix=f"/auth/{name}",
            tags=["auth"],
            dependencies=[rate_limit("login")] if limited else [],
            responses=errors(413, 429) if limited else errors(413),
        )
router.include_router(
    fastapi_users.get_register_router(UserRead, UserCreate),
    prefix="/auth",
    tags=["auth"],
    dependencies=[rate_limit("register")],
    responses=errors(413, 429),
)
# Only the signed-in user's own account: other accounts are managed in the admin area, which answers
# everyone else with a 404 (fastapi-users' /users/{id} would answer 403 and confirm the route exists).
users_router = fastapi_users.get_users_router(UserRead, UserUpdate)
users_router.routes = [route for route in users_router.routes if "{id}" not in route.path]
router.include_router(users_router, prefix="/users", tags=["users"], responses=errors(400, 413))
