"""Scan library, from the library page's button."""

from fastapi import APIRouter, Request, Response

from app.deps import CurrentUser, SessionDep, SettingsDep, TenantDep
from app.ingestion.scan import scan_library
from app.library.pages import render_library

router = APIRouter(include_in_schema=False)


@router.post("/library/scan", name="library_scan")
async def scan(
    request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    result = await scan_library(
        session,
        tenant,
        request.app.state.storage,
        settings,
        queue=request.app.state.arq,
    )
    return await render_library(request, session, tenant, user, settings, scan=result)
