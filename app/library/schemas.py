import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    semester: str
    subject: str
    book: str
    filename: str
    key: str
    size_bytes: int
    page_count: int | None
    pages_done: int
    status: str
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, document) -> "DocumentRead":
        return cls.model_validate({**document.__dict__, "key": document.storage_key})


class UploadedFile(BaseModel):
    filename: str
    status: str
    id: uuid.UUID | None = None
    key: str | None = None
    code: str | None = None
    error: str | None = None


class UploadResponse(BaseModel):
    files: list[UploadedFile]


class DeletedFolder(BaseModel):
    deleted: int
