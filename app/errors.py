"""Errors a person can read: HTML pages for the site, JSON for the API, never a stack trace."""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import audit_log
from app.config import get_settings
from app.exceptions import AppError, NotYours
from app.logs import request_id_var
from app.routing import allowed_methods
from app.security.headers import security_headers
from app.templating import is_htmx, templates
from app.web import client_ip

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


# Where an HTMX request's error is shown (templates/base.html): a banner above the page, whatever the
# request's own target was.
HTMX_ERROR_TARGET = "#htmx-error"


def _error_page(request: Request, status: int, message: str | None = None) -> Response:
    """The error page; for an HTMX request that swaps part of a page (a table, a list, a status
    cell) only its alert, retargeted to the banner: a whole page swapped into a table cell would nest
    the site inside itself. A boosted link or form swaps the whole body, so it gets the whole page."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    context = {
        "user": None,
        "title": title,
        "message": message or MESSAGES.get(status, "Something went wrong."),
        "request_id": request_id(request) if status >= 500 else None,
    }
    if is_htmx(request) and request.headers.get("HX-Boosted") != "true":
        return templates.TemplateResponse(
            request,
            "error.html",
            context,
            status_code=status,
            block_name="alert",
            headers={"HX-Retarget": HTMX_ERROR_TARGET, "HX-Reswap": "innerHTML"},
        )
    return templates.TemplateResponse(request, "error.html", context, status_code=status)


def _answer(
    request: Request, status: int, message: str | None, headers: Mapping[str, str] | None
) -> Response:
    """An error as JSON `{"detail": ...}` for the API, the error page for the site."""
    if not wants_html(request):
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        response: Response = JSONResponse({"detail": message or phrase}, status_code=status)
    else:
        if status == 413 and message == "Content Too Large":  # Starlette's body limit
            message = too_large_message()
        # Server errors keep their details to the log; a 503's says only that we are busy, and for how long.
        readable = status < 500 or status == 503
        known = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None
        response = _error_page(request, status, message if readable and message != known else None)
    response.headers.update(headers or {})  # Retry-After, WWW-Authenticate, Allow
    return response


async def on_app_error(request: Request, exc: AppError) -> Response:
    """The one answer to every error a service raises (app.exceptions). A `NotYours` is recorded first:
    by now the request's session has been rolled back and its connection returned (the session is a
    function-scoped dependency), so the record takes the only connection the request holds."""
    if isinstance(exc, NotYours):
        await audit_log.record_refusal(
            request,
            action=exc.action,
            user_id=exc.user_id,
            target=exc.target[:300],
            ip=client_ip(request),
            detail={"reason": exc.reason} if exc.reason else None,
        )
    return _answer(request, exc.status_code, exc.message, exc.headers)


async def on_http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    """Errors the framework raises (unknown routes and methods, not logged in, bad bodies)."""
    if exc.status_code == 405:  # Starlette names only the methods of the first route that matched
        exc.headers = {
            **(exc.headers or {}),
            "Allow": ", ".join(allowed_methods(request.app, request.url.path)),
        }
    if not wants_html(request):
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        target = "/login?next=" + quote(request.url.path, safe="/")
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return _answer(request, exc.status_code, detail, exc.headers)


async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
    if not wants_html(request):
        return await request_validation_exception_handler(request, exc)
    return _error_page(request, 400)


def error_response(scope: Scope, status: int, message: str) -> Response:
    """An error answered by a middleware, before routing: JSON for the API, else the error page."""
    scope.setdefault("router", scope["app"].router)  # the page's url_for needs it
    request = Request(scope)
    if not wants_html(request):
        return JSONResponse({"detail": message}, status_code=status)
    return _error_page(request, status, message)


async def on_unhandled(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    # Answered outside the request's middleware, whose id has ended: the line (and the Sentry report it
    # makes) is given the id again.
    token = request_id_var.set(rid)
    try:
        log.exception("unhandled error (request %s) on %s %s", rid, request.method, request.url.path)
    finally:
        request_id_var.reset(token)
    # Unhandled errors are answered outside the middleware stack, so the id header is set here.
    response: Response
    if not wants_html(request):
        response = JSONResponse({"detail": "Internal server error", "request_id": rid}, status_code=500)
    else:
        response = _error_page(request, 500, "Something went wrong on our side. It has been logged.")
    response.headers["X-Request-ID"] = rid
    # Answered outside the middleware stack: the security headers are added here too.
    response.headers.update(security_headers(request.url.path, get_settings()))
    return response


def too_large_message() -> str:
    settings = get_settings()
    return (
        f"That is too large. Upload PDFs of up to {settings.max_upload_mb} MB, "
        f"{settings.max_files_per_upload} at a time; other requests may be up to "
        f"{settings.max_request_kb} KB."
    )


class ReadableTooLargeMiddleware:
    """Starlette's body limit answers a too-large request with a bare "Content Too Large" text; this
    swaps it for our error page or JSON, saying what the limits are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replacing = False

        async def send_readable(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                replacing = content_type.startswith(b"text/plain")
            if not replacing:
                await send(message)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                await error_response(scope, 413, too_large_message())(scope, receive, send)

        await self.app(scope, receive, send_readable)


def install_error_handlers(app: FastAPI) -> None:
    # app.exception_handler registers each as add_exception_handler does, and types it by its exception.
    app.exception_handler(AppError)(on_app_error)
    app.exception_handler(StarletteHTTPException)(on_http_exception)
    app.exception_handler(RequestValidationError)(on_validation_error)
    app.exception_handler(Exception)(on_unhandled)
