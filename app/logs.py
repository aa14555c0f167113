"""Logs a person or a log store can read: one line per request and per ingestion job.

JSON lines in production (`LOG_FORMAT=json`), readable lines in development. A request's id (also its
`X-Request-ID` header and the reference on an error page) is in every line logged while the request
runs, so one request's lines can be found together. Lines carry user ids, never emails, and no
secrets, tokens or passage text: what goes in `extra=` is chosen by the code that logs, field by field.
"""

import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
request_log = logging.getLogger("studyrag.request")

# LogRecord attributes that are not a line's own fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """What the code logged beside the message (`extra=`), and the request id of its moment."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


_make_record = logging.getLogRecordFactory()


def _record_with_request_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every line logged while a request runs carries its id (taken when the line is made: it may be
    formatted later, elsewhere)."""
    record = _make_record(*args, **kwargs)
    if rid := request_id_var.get():
        record.request_id = rid
    return record


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`12:00:01 INFO studyrag.request: GET /library 200 12.3 ms [request_id=… user_id=…]`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = fields_of(record)
        if record.name == request_log.name:  # the message already says method, route, status, time
            fields = {k: fields[k] for k in ("request_id", "user_id") if fields.get(k)}
        if not fields:
            return text
        shown = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
        head, _, rest = text.partition("\n")  # a traceback goes after the fields
        return f"{head} [{shown}]" + (f"\n{rest}" if rest else "")


_HANDLER_NAME = "studyrag"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (a test runner swaps it, and closes the old one)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(log_format: str, level: str = "INFO") -> None:
    """One handler on the root logger with our format; uvicorn's and arq's own loggers use it too.
    Called again (a second app in one process), it changes nothing."""
    root = logging.getLogger()
    if any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        return
    logging.setLogRecordFactory(_record_with_request_id)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "arq"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our request line replaces it


class RouteRecorderMiddleware:
    """Innermost: notes the matched route in the request's state, which every copy of the scope shares
    (a middleware that rewrites headers passes a copy on, and the router marks only that copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if "route" in scope and "state" in scope:
                scope["state"]["route"] = scope["route"]


_full_paths: dict[int, str] = {}


def _full_path(app: Starlette, route: APIRoute) -> str:
    """A route's whole template: a route of an included router knows only its own part (`/login`), so
    the prefixes are found by walking the app's routers once (again when a route is added later)."""
    if id(route) not in _full_paths:
        from app.routing import api_routes

        _full_paths.update({id(found): path for path, found in api_routes(app)})
    return _full_paths.get(id(route)) or route.path


def route_of(scope: Scope) -> str:
    """The route template (`/api/files/{document_id}`), never the raw path: ids stay out of metrics."""
    route = scope.get("state", {}).get("route") or scope.get("route")
    if route is None or getattr(route, "path", None) is None:
        return "unmatched"
    return _full_path(scope["app"], route) if hasattr(route, "dependant") else route.path


class RequestLogMiddleware:
    """Gives every request an id (`request.state.request_id`, the `X-Request-ID` header, error pages,
    every log line while it runs), then logs one line and counts it in the metrics when it is done:
    method, route template, status, duration and the user id once authentication has named one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = uuid.uuid4().hex[:16]
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        token = request_id_var.set(rid)
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            method = scope["method"]
            metrics.observe_request(method, route, status, seconds)
            request_log.info(
                "%s %s %s %.1f ms",
                method,
                route,
                status,
                seconds * 1000,
                extra={  # the request id is added to every line logged while it runs
                    "user_id": state.get("user_id"),
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            request_id_var.reset(token)
