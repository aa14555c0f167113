"""Ingestion status and Scan library, as JSON."""

import uuid

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.api_errors import COMMON
from app.deps import SessionDep, SettingsDep, TenantDep
from app.ingestion.scan import scan_library
from app.library.api import document_or_404

router = APIRouter(prefix="/api", tags=["ingestion"], responses=COMMON)


class JobStatus(BaseModel):
    id: uuid.UUID
    status: str
    pages_done: int
    page_count: int | None
    passages: int
    error: str | None


class ScanReport(BaseModel):
    found: int
    queued: int
    skipped: list[dict]


@router.get("/jobs/{document_id}", response_model=JobStatus)
async def job_status(
    request: Request, session: SessionDep, tenant: TenantDep, document_id: uuid.UUID
) -> JobStatus:
    """Ingestion status of a document (the job id is the document id)."""
    document = await document_or_404(request, session, tenant, document_id, action="job.read")
    return JobStatus(
        id=document.id,
        status=document.status,
        pages_done=document.pages_done,
        page_count=document.page_count,
        passages=document.chunk_count,
        error=document.error,
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
