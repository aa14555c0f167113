"""The library's JSON API, and the route that opens a stored PDF."""

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.api_errors import COMMON, errors, errors_or
from app.auth.before_body import BeforeBodyRoute, before_body
from app.auth.users import client_ip
from app.config import get_settings
from app.deps import SessionDep, SettingsDep, TenantDep
from app.library import service
from app.library.names import InvalidName
from app.library.schemas import DeletedFolder, DocumentRead, UploadResponse
from app.library.storage import LocalStorage, inline_disposition
from app.tenancy import Tenant

router = APIRouter(tags=["library"], responses=COMMON, route_class=BeforeBodyRoute)


async def refuse_unknown(
    request: Request, session: AsyncSession, tenant: Tenant, *, action: str, target: str
) -> HTTPException:
    """A 404 for an id that is not in this tenant's library, recorded: it may be someone else's.

    The request is about to fail, so its transaction is rolled back now: its connection goes back to
    the pool before the record takes one (a request never holds two)."""
    await session.rollback()
    await audit.record_refusal(
        request,
        action=action,
        user_id=tenant.user_id,
        target=target,
        ip=client_ip(request),
        detail={"reason": "not in this library"},
    )
    return HTTPException(status_code=404, detail="No such file in your library.")


async def document_or_404(request: Request, session, tenant: Tenant, document_id: uuid.UUID, *, action: str):
    """The tenant's document, or a recorded 404 (the one lookup every file route shares)."""
    try:
        return await service.get_document(session, tenant, document_id)
    except service.DocumentNotFound:
        raise await refuse_unknown(request, session, tenant, action=action, target=str(document_id)) from None


async def delete_document_or_404(request: Request, session, tenant: Tenant, document_id: uuid.UUID) -> None:
    try:
        await service.delete_document(session, tenant, request.app.state.storage, document_id=document_id)
    except service.DocumentNotFound:
        raise await refuse_unknown(
            request, session, tenant, action="file.delete", target=str(document_id)
        ) from None


async def delete_folder_or_404(
    request: Request, session, tenant: Tenant, *, semester: str, subject: str | None, book: str | None
) -> int:
    """Every file of a semester, a subject or a book; 400 for a book without its subject."""
    if book and not subject:
        raise HTTPException(status_code=400, detail="Name the subject of the book to delete.")
    try:
        return await service.delete_folder(
            session, tenant, request.app.state.storage, semester=semester, subject=subject, book=book
        )
    except service.DocumentNotFound:
        target = " / ".join(part for part in (semester, subject, book) if part)
        raise await refuse_unknown(request, session, tenant, action="folder.delete", target=target) from None


# The whole request is bounded before it is parsed (a declared size at once, a streamed one as it
# arrives), and so is the number of files; each file's own size is checked as it is stored.
UPLOAD_LIMITS = {
    "max_body_size": get_settings().max_upload_request_bytes,
    "form_limits": {"max_files": get_settings().max_files_per_upload},
}


async def store_all(
    request: Request, session, tenant: Tenant, settings, folder, files: list[UploadFile]
) -> list:
    """Each uploaded file stored (or refused) on its own; the API and the no-JavaScript form share it.
    How many files one request may carry is bounded before parsing (UPLOAD_LIMITS)."""
    return [
        await service.store_upload(
            session,
            tenant,
            request.app.state.storage,
            settings,
            folder=folder,
            filename=upload_file.filename,
            source=upload_file.file,
            queue=request.app.state.arq,
        )
        for upload_file in files
    ]


def upload_answer(results: list[service.UploadResult]) -> dict:
    """Each file's result, with the plan's fields beside it: `success`, and one file's key, job and status."""
    files = [result.as_dict() | ({"job_id": str(result.id)} if result.id else {}) for result in results]
    answer = {"success": all(result.status != "rejected" for result in results), "files": files}
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
):
    """Store PDFs in a book (semester / subject / book). Each file gets its own status."""
    try:
        folder = service.Folder.parse(semester, subject, book or book_id)
    except InvalidName as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    results = await store_all(request, session, tenant, settings, folder, files)
    stored = [result for result in results if result.status != "rejected"]
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
    return DocumentRead.of(await document_or_404(request, session, tenant, document_id, action="file.read"))


@router.delete("/api/files/{document_id}", status_code=204)
async def delete_file(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID
) -> Response:
    """Delete a file: its stored PDF, its record and its passages."""
    await delete_document_or_404(request, session, tenant, document_id)
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
    deleted = await delete_folder_or_404(
        request, session, tenant, semester=semester, subject=subject, book=book
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
    document = await document_or_404(request, session, tenant, document_id, action="file.open")
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
        raise HTTPException(status_code=404, detail="The stored file is missing.")
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": inline_disposition(document.filename, inline=inline),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
