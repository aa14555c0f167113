"""fastapi-users' routes at their usual paths."""

from fastapi import APIRouter

from app.auth.backend import bearer_backend, cookie_backend, fastapi_users
from app.auth.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter()
router.include_router(fastapi_users.get_auth_router(bearer_backend), prefix="/auth/jwt", tags=["auth"])
router.include_router(fastapi_users.get_auth_router(cookie_backend), prefix="/auth/cookie", tags=["auth"])
router.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"])
router.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"])
