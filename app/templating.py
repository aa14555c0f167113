"""Jinja2 templates: one template per page, fragments as blocks (rendered alone for HTMX requests)."""

from datetime import UTC, datetime

from fastapi import Request
from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2_fragments.fastapi import Jinja2Blocks

from app.config import PROJECT_ROOT
from app.library.formats import cite, unit_of

HTMX_VERSION = "2.0.11"
HTMX_CDN = f"https://cdn.jsdelivr.net/npm/htmx.org@{HTMX_VERSION}/dist/htmx.min.js"
# Subresource integrity of the exact file vendored in static/js/htmx.min.js.
HTMX_INTEGRITY = "sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg"

templates = Jinja2Blocks(directory=PROJECT_ROOT / "templates")


@pass_context
def path_for(context: Context, name: str, /, **path_params: object) -> str:
    """The path of the route named `name` ("/library"): what the pages' links, forms and scripts use.

    Starlette's `url_for` (kept for static files) gives an absolute URL, scheme and host included."""
    request: Request = context["request"]
    return request.url_for(name, **path_params).path


templates.env.globals.update(
    htmx_cdn=HTMX_CDN, htmx_integrity=HTMX_INTEGRITY, cite=cite, unit_of=unit_of, path_for=path_for
)


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


def plural(noun: str, count: int) -> str:
    """The noun as it reads after `count`: `{{ n }} {{ "file"|plural(n) }}` gives "1 file", "2 files"."""
    return noun if count == 1 else f"{noun}s"


templates.env.filters.update(human_size=human_size, when=when, plural=plural)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"
