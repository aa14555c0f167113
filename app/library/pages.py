"""The library page."""

from fastapi import APIRouter, Request, Response

from app.deps import CurrentUser
from app.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/library")
async def library_page(request: Request, user: CurrentUser) -> Response:
    return templates.TemplateResponse(request, "library/index.html", {"user": user, "active": "library"})
