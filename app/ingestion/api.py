"""Ingestion status and Scan library, as JSON."""

import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api_errors import COMMON
from app.deps import SessionDep, SettingsDep, TenantDep
from app.ingestion.scan import scan_library
from app.library import service as library
from app.models.document import DocumentStatus
from app.queue import queue_positions

router = APIRouter(prefix="/api", tags=["ingestion"], responses=COMMON)


# What each status means (the plan's PENDING is `uploaded`/`queued`, PROCESSING `parsing`/`embedding`,
# SUCCESS `ready`), in DocumentStatus's order.
STATUS_MEANINGS = {
    "uploaded": "stored, not queued for ingestion yet (Scan library queues it)",
    "queued": "waiting for a worker",
    "parsing": "reading the text of each page; `progress` counts the pages read",
    "embedding": "indexing the passages; `progress` counts again, the pages indexed",
    "ready": "searchable; `progress` equals `total`",
    "failed": "stopped; `error` says why in a sentence",
}


class JobStatus(BaseModel):
    id: uuid.UUID
    status: DocumentStatus = Field(
        description="\n".join(f"- `{status}`: {meaning}" for status, meaning in STATUS_MEANINGS.items())
    )
    pages_done: int
    page_count: int | None
    progress: int = Field(description="Pages done in the current step (the same as `pages_done`).")
    total: int | None = Field(description="Pages in the document (`page_count`); null until it is opened.")
    passages: int
    error: str | None
    files_ahead: int | None = Field(
        default=None, description="While `queued`: how many of your own files will be ingested first."
    )


class ScanReport(BaseModel):
    found: int
    queued: int
    skipped: list[dict]


@router.get("/jobs/{document_id}", response_model=JobStatus)
async def job_status(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID
) -> JobStatus:
    """Ingestion status of a document (the job id is the document id)."""
    document = await library.get_document(session, tenant, document_id, action="job.read")
    return JobStatus(
        id=document.id,
        status=document.status,
        pages_done=document.pages_done,
        page_count=document.page_count,
        progress=document.pages_done,
        total=document.page_count,
        passages=document.chunk_count,
        error=document.error,
        files_ahead=(await queue_positions(session, tenant)).get(document.id),
    )


@router.post("/ingest", response_model=ScanReport)
async def ingest_new_books(
    request: Request, session: SessionDep, tenant: TenantDep, settings: SettingsDep
) -> ScanReport:
    """Scan library: ingest stored PDFs that are not ingested yet (new books only). Idempotent."""
    result = await scan_library(
        session,
        tenant,
        request.app.state.storage,
        settings,
        queue=request.app.state.arq,
    )
    return ScanReport(found=result.found, queued=result.queued, skipped=result.skipped)
