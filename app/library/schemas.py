import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.models import Document


class DocumentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    semester: str
    subject: str
    book: str
    filename: str
    format: str = Field(description="What the file holds: pdf, pptx, docx, epub, md, txt or html.")
    key: str
    size_bytes: int
    page_count: int | None
    pages_done: int
    status: str
    error: str | None
    created_at: datetime

    @classmethod
    def of(cls, document: Document) -> "DocumentRead":
        return cls.model_validate({**document.__dict__, "key": document.storage_key})


class ChapterRead(BaseModel):
    number: int = Field(description="1-based, in reading order: what chat and the study aids take.")
    title: str
    first_page: int = Field(description="The first page (or unit) of the chapter, 1-based.")
    last_page: int = Field(description="Its last page, inclusive.")
    study: bool = Field(
        True,
        description="Whether it has prose to make flashcards, a quiz or a guide of (false for an answer "
        "key, an index or a list of symbols).",
    )


class ChaptersRead(BaseModel):
    document_id: uuid.UUID
    read: bool = Field(
        description="Whether the file's chapters have been read yet (false while it is being ingested)."
    )
    chapters: list[ChapterRead] = Field(
        description="From the PDF's outline, or headings in the text; EPUB chapters; empty for formats "
        "without chapters (slides, notes) and books with neither."
    )


class UploadedFile(BaseModel):
    """One uploaded file's result: stored (`queued`/`uploaded`, with its id and key) or `rejected`
    (with `code` and `error`, and the HTTP status a lone refused file is answered with)."""

    filename: str
    status: str
    id: uuid.UUID | None = None
    key: str | None = None
    job_id: uuid.UUID | None = Field(None, description="What `GET /api/jobs/{id}` takes (the file's `id`).")
    code: str | None = None
    error: str | None = None
    http_status: int = Field(201, exclude=True)

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"


class UploadResponse(BaseModel):
    """Each file's result in `files`; beside it the plan's shape: `success`, and for a single file its
    `s3_key`, `job_id` and `status`."""

    success: bool = Field(description="Every file was stored.")
    s3_key: str | None = Field(None, description="One file: its object key (with local storage too).")
    job_id: uuid.UUID | None = Field(None, description="One file: what `GET /api/jobs/{id}` takes.")
    status: str | None = Field(
        None, description="One file: `queued` once stored, or `rejected` (`files` says why)."
    )
    files: list[UploadedFile]


class DeletedFolder(BaseModel):
    deleted: int
