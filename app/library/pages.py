"""The library page: upload form, search, the semester → subject → book tree, deletes (HTMX)."""

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.before_body import BeforeBodyRoute, before_body
from app.config import Settings
from app.deps import CurrentUser, SessionDep, SettingsDep, TenantDep
from app.library import service
from app.library.names import InvalidName
from app.library.uploads import UPLOAD_LIMITS, store_all
from app.models import User
from app.models.document import DocumentStatus
from app.queue import queue_positions
from app.study.service import due_by_document
from app.templating import is_htmx, templates
from app.tenancy import Tenant

# Statuses whose cell polls itself (templates/library/_status.html says the same).
WORKING = {DocumentStatus.QUEUED, DocumentStatus.PARSING, DocumentStatus.EMBEDDING}

router = APIRouter(include_in_schema=False, route_class=BeforeBodyRoute)


async def render_library(
    request: Request,
    session: AsyncSession,
    tenant: Tenant,
    user: User,
    settings: Settings,
    *,
    q: str | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The library page (or, for HTMX asking for `library-tree`, its tree alone), with `extra` shown."""
    documents = await service.list_documents(session, tenant, q=q)
    context = {
        "user": user,
        "active": "library",
        "q": q,
        "tree": service.library_tree(documents),
        "names": await service.folder_names(session, tenant),
        "queue_positions": await queue_positions(session, tenant),
        "due": await due_by_document(session, tenant),
        "max_upload_mb": settings.max_upload_mb,
        **extra,
    }
    block = "tree" if is_htmx(request) and request.headers.get("HX-Target") == "library-tree" else None
    return templates.TemplateResponse(
        request, "library/index.html", context, status_code=status_code, block_name=block
    )


@router.get("/library", name="library_page")
async def library_page(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    q: str | None = None,
) -> Response:
    return await render_library(
        request, session, tenant, user, settings, q=(q or "")[: service.MAX_QUERY_LENGTH] or None
    )


@router.post("/library/upload", name="library_upload", **UPLOAD_LIMITS)
@before_body("upload")  # no anonymous or over-limit upload is spooled to disk
async def upload_without_javascript(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    semester: Annotated[str, Form(max_length=200)] = "",
    subject: Annotated[str, Form(max_length=200)] = "",
    book: Annotated[str, Form(max_length=200)] = "",
    files: Annotated[Sequence[UploadFile], File(alias="file")] = (),
) -> Response:
    """The plain form post, for browsers without JavaScript; upload.js sends each file to /api/upload."""
    typed = {"semester": semester, "subject": subject, "book": book}
    try:
        folder = service.Folder.parse(semester, subject, book)
    except InvalidName as exc:
        return await render_library(
            request, session, tenant, user, settings, status_code=400, error=str(exc), folder=typed
        )
    files = [f for f in files if f.filename]
    if not files:
        return await render_library(
            request,
            session,
            tenant,
            user,
            settings,
            status_code=400,
            error="Choose at least one file.",
            folder=typed,
        )
    results = await store_all(request, session, tenant, settings, folder, files)
    return await render_library(request, session, tenant, user, settings, results=results, folder=typed)


@router.get("/files/{document_id}/view", name="file_view")
async def file_view(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID, unit: int = 1
) -> Response:
    """A file's text by slide, section or chapter, the cited one marked (`#unit-N` scrolls to it); a
    PDF opens itself at that page instead."""
    document = await service.get_document(session, tenant, document_id, action="file.open")
    if document.format == "pdf":
        return RedirectResponse(f"/files/{document.id}/content#page={unit}", status_code=303)
    context = {
        "document": document,
        "units": await service.units_of(session, tenant, document),
        "chosen": unit,
    }
    return templates.TemplateResponse(request, "library/view.html", context)


@router.get("/library/files/{document_id}/status", name="library_file_status")
async def file_status(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID
) -> Response:
    """The status cell of one file, polled by the page while the file is ingested; once it is done,
    with the file's name cell (chapters, study links) swapped in out of band."""
    document = await service.get_document(session, tenant, document_id, action="job.read", chapters=True)
    finished = document.status not in WORKING
    context = {
        "d": document,
        "queue_positions": await queue_positions(session, tenant),
        "finished": finished,
        "due": await due_by_document(session, tenant) if finished else {},  # polled each second until then
    }
    return templates.TemplateResponse(request, "library/_status_update.html", context)


@router.delete("/library/files/{document_id}", name="library_delete_file")
async def delete_file(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    document_id: uuid.UUID,
) -> Response:
    await service.delete_document(session, tenant, request.app.state.storage, document_id=document_id)
    return await render_library(request, session, tenant, user, settings)


@router.delete("/library/folders", name="library_delete_folder")
async def delete_folder(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    semester: str,
    subject: str | None = None,
    book: str | None = None,
) -> Response:
    await service.delete_folder(
        session, tenant, request.app.state.storage, semester=semester, subject=subject, book=book
    )
    return await render_library(request, session, tenant, user, settings)
