"""Errors a person can read: HTML pages for the site, JSON for the API, never a stack trace."""

import logging
import uuid
from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from app.templating import is_htmx, templates

log = logging.getLogger(__name__)

API_PREFIXES = ("/api", "/auth", "/users", "/docs", "/redoc", "/openapi.json", "/static")
MESSAGES = {
    400: "The request could not be understood. Check what you entered and try again.",
    403: "You do not have access to this page.",
    404: "There is nothing here. The page may have moved, or the link is wrong.",
    405: "That action is not available here.",
    413: "That is too large.",
    429: "Too many requests. Wait a moment and try again.",
}


def wants_html(request: Request) -> bool:
    return not request.url.path.startswith(API_PREFIXES)


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or ""


def _error_page(request: Request, status: int, message: str | None = None) -> Response:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    context = {
        "user": None,
        "title": title,
        "message": message or MESSAGES.get(status, "Something went wrong."),
        "request_id": request_id(request) if status >= 500 else None,
    }
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


async def on_http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        target = "/login?next=" + quote(request.url.path, safe="/")
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code < 500 else None
    return _error_page(
        request, exc.status_code, detail if detail != HTTPStatus(exc.status_code).phrase else None
    )


async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
    if not wants_html(request):
        return await request_validation_exception_handler(request, exc)
    return _error_page(request, 400)


async def on_unhandled(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    log.exception("unhandled error (request %s) on %s %s", rid, request.method, request.url.path)
    # Unhandled errors are answered outside the middleware stack, so the id header is set here.
    if not wants_html(request):
        response = JSONResponse({"detail": "Internal server error", "request_id": rid}, status_code=500)
    else:
        response = _error_page(request, 500, "Something went wrong on our side. It has been logged.")
    response.headers["X-Request-ID"] = rid
    return response


class RequestIdMiddleware:
    """Gives every request an id: in `request.state`, the `X-Request-ID` header and the error page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unhandled)
    app.add_middleware(RequestIdMiddleware)
