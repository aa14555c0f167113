import uuid

from fastapi_users import schemas
from pydantic import ConfigDict, Field

# Strict: `0` is not `false`, `"1"` is not a number — a request means exactly what it says.
STRICT = ConfigDict(strict=True)


class UserRead(schemas.BaseUser[uuid.UUID]):
    name: str


class UserCreate(schemas.BaseUserCreate):
    model_config = STRICT

    name: str = Field(default="", max_length=100)


class UserUpdate(schemas.BaseUserUpdate):
    model_config = STRICT

    name: str | None = Field(default=None, max_length=100)

    # A field sent as null means "leave it": fastapi-users would write the null (email and name are
    # required columns).
    def create_update_dict(self) -> dict:
        return {key: value for key, value in super().create_update_dict().items() if value is not None}

    def create_update_dict_superuser(self) -> dict:
        return {
            key: value for key, value in super().create_update_dict_superuser().items() if value is not None
        }
