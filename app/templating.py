"""Jinja2 templates: one template per page, fragments as blocks (rendered alone for HTMX requests)."""

from datetime import UTC, datetime

from fastapi import Request
from jinja2_fragments.fastapi import Jinja2Blocks

from app.config import PROJECT_ROOT
from app.library.formats import cite, unit_of

HTMX_VERSION = "2.0.11"
HTMX_CDN = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# Subresource integrity of the exact file vendored in static/js/htmx.min.js.
HTMX_INTEGRITY = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"

templates = Jinja2Blocks(directory=PROJECT_ROOT / "templates")
templates.env.globals.update(htmx_cdn=HTMX_CDN, htmx_integrity=HTMX_INTEGRITY, cite=cite, unit_of=unit_of)


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


templates.env.filters.update(human_size=human_size, when=when)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"
