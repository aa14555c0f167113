import uuid
from typing import Any

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
    current_password: str | None = Field(
        default=None, max_length=1024, description="Required to change `email` or `password`."
    )

    # A field sent as null means "leave it": fastapi-users would write the null (email and name are
    # required columns). The current password is a proof, never a change.
    def create_update_dict(self) -> dict[str, Any]:
        return _changes(super().create_update_dict())

    def create_update_dict_superuser(self) -> dict[str, Any]:
        return _changes(super().create_update_dict_superuser())


def _changes(update: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in update.items() if value is not None and key != "current_password"}
