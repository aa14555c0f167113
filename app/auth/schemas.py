import uuid

from fastapi_users import schemas
from pydantic import Field


class UserRead(schemas.BaseUser[uuid.UUID]):
    name: str


class UserCreate(schemas.BaseUserCreate):
    name: str = Field(default="", max_length=100)


class UserUpdate(schemas.BaseUserUpdate):
    name: str | None = Field(default=None, max_length=100)
