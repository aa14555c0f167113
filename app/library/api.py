"""The library's JSON API, and the route that opens a stored PDF."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from app.api_errors import COMMON, errors, errors_or
from app.auth.before_body import BeforeBodyRoute, before_body
from app.deps import SessionDep, SettingsDep, TenantDep
from app.exceptions import NotFound
from app.library import service
from app.library.schemas import (
    ChapterRead,
    ChaptersRead,
    DeletedFolder,
    DocumentRead,
    UploadedFile,
    UploadResponse,
)
from app.library.storage import LocalStorage, inline_disposition
from app.library.uploads import UPLOAD_LIMITS, store_all

router = APIRouter(tags=["library"], responses=COMMON, route_class=BeforeBodyRoute)


def upload_answer(results: list[UploadedFile]) -> dict[str, Any]:
    """Each file's result, with the plan's fields beside it: `success`, and one file's key, job and status."""
    files = [result.model_dump(mode="json", exclude_none=True) for result in results]
    answer = {"success": not any(result.rejected for result in results), "files": files}
    if len(files) == 1:
        (only,) = files
        answer |= {"s3_key": only.get("key"), "job_id": only.get("job_id"), "status": only["status"]}
    return answer


@router.post(
    "/api/upload",
    name="upload",
    response_model=UploadResponse,
    status_code=201,
    responses={**errors_or("UploadResponse", 400, 413, 415), **errors(429)},
    **UPLOAD_LIMITS,
)
@before_body("upload")  # no anonymous or over-limit upload is spooled to disk
async def upload(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    settings: SettingsDep,
    semester: Annotated[str, Form(min_length=1, max_length=200)],
    subject: Annotated[str, Form(min_length=1, max_length=200)],
    files: Annotated[list[UploadFile], File(alias="file", min_length=1, description="one or more PDF files")],
    book: Annotated[
        str | None, Form(max_length=200, description="The book; required, as `book` or `book_id`.")
    ] = None,
    book_id: Annotated[
        str | None,
        Form(max_length=200, description="Another name for `book` (`book` wins if both are sent)."),
    ] = None,
) -> JSONResponse:
    """Store PDFs in a book (semester / subject / book). Each file gets its own status."""
    folder = service.Folder.parse(semester, subject, book or book_id)
    results = await store_all(request, session, tenant, settings, folder, files)
    stored = [result for result in results if not result.rejected]
    status = 201 if stored else results[0].http_status
    return JSONResponse(upload_answer(results), status_code=status)


@router.get("/api/files", response_model=list[DocumentRead])
async def list_files(
    session: SessionDep,
    tenant: TenantDep,
    semester: str | None = None,
    subject: str | None = None,
    book: str | None = None,
    q: Annotated[str | None, Query(max_length=service.MAX_QUERY_LENGTH)] = None,
) -> list[DocumentRead]:
    """The library, optionally narrowed to a folder and filtered by `q` (file, book, subject or semester)."""
    documents = await service.list_documents(
        session, tenant, semester=semester, subject=subject, book=book, q=q
    )
    return [DocumentRead.of(document) for document in documents]


@router.get("/api/files/{document_id}", response_model=DocumentRead)
async def get_file(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID
) -> DocumentRead:
    return DocumentRead.of(await service.get_document(session, tenant, document_id))


@router.get("/api/files/{document_id}/chapters", response_model=ChaptersRead)
async def file_chapters(session: SessionDep, tenant: TenantDep, document_id: uuid.UUID) -> ChaptersRead:
    """The file's chapters with their page ranges, as ingestion found them."""
    document = await service.get_document(session, tenant, document_id, chapters=True)
    return ChaptersRead(
        document_id=document.id,
        read=document.chapters is not None,
        chapters=[ChapterRead(**vars(chapter)) for chapter in service.chapters_of(document)],
    )


@router.delete("/api/files/{document_id}", status_code=204)
async def delete_file(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID
) -> Response:
    """Delete a file: its stored PDF, its record and its passages."""
    await service.delete_document(session, tenant, request.app.state.storage, document_id=document_id)
    return Response(status_code=204)


@router.delete("/api/folders", response_model=DeletedFolder)
async def delete_folder(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    semester: str,
    subject: str | None = None,
    book: str | None = None,
) -> DeletedFolder:
    """Delete every file in a semester, a subject (with `subject`) or a book (with `subject` and `book`)."""
    deleted = await service.delete_folder(
        session, tenant, request.app.state.storage, semester=semester, subject=subject, book=book
    )
    return DeletedFolder(deleted=deleted)


@router.get(
    "/files/{document_id}/content", name="file_content", response_class=Response, include_in_schema=False
)
async def file_content(
    request: Request, session: SessionDep, tenant: TenantDep, settings: SettingsDep, document_id: uuid.UUID
) -> Response:
    """The file itself, for its owner only: a PDF inline (`#page=N` opens it at page N); any other
    format as a download, never rendered by the browser (an HTML file's scripts never run here)."""
    document = await service.get_document(session, tenant, document_id, action="file.open")
    inline = document.format == "pdf"
    media_type = "application/pdf" if inline else "application/octet-stream"
    storage = request.app.state.storage
    url = await storage.download_url(
        document.storage_key,
        filename=document.filename,
        expires=settings.download_url_seconds,
        media_type=media_type,
        inline=inline,
    )
    if url is not None:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    assert isinstance(storage, LocalStorage)
    path = storage.path(document.storage_key)
    if not path.is_file():
        raise NotFound("The stored file is missing.")
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": inline_disposition(document.filename, inline=inline),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
