"""Every route of the app with its full path — FastAPI includes routers lazily, so `app.routes` holds
nodes that wrap the included router and its prefix. Used to answer 405 with every allowed method, and
by the tests that sweep every route."""

import re
from collections.abc import Sequence
from functools import lru_cache

from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route, compile_path


def every_route(app: Starlette) -> list[tuple[str, Route]]:
    """(full path, route) for each route, API routes and plain Starlette ones (e.g. `/openapi.json`) alike,
    walking included routers. Mounts (static files) are not walked."""
    found: list[tuple[str, Route]] = []

    def walk(routes: Sequence[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Route):
                found.append((prefix + route.path, route))
            elif hasattr(route, "original_router") and hasattr(route, "include_context"):
                # FastAPI's _IncludedRouter (private, so known by what it holds)
                walk(route.original_router.routes, prefix + route.include_context.prefix)

    walk(app.routes, "")
    return found


def api_routes(app: Starlette) -> list[tuple[str, APIRoute]]:
    """(full path, route) for each API route."""
    return [(path, route) for path, route in every_route(app) if isinstance(route, APIRoute)]


def plain_routes(app: Starlette) -> list[tuple[str, Route]]:
    """(full path, route) for each plain Starlette route that is not an API route."""
    return [(path, route) for path, route in every_route(app) if not isinstance(route, APIRoute)]


@lru_cache(maxsize=8)
def _method_table(app: Starlette) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    # An APIRoute's methods are never None (it defaults them to GET); `or ()` only tells the checker.
    return [(compile_path(path)[0], frozenset(route.methods or ())) for path, route in api_routes(app)]


def allowed_methods(app: Starlette, path: str) -> list[str]:
    """Every method some route accepts at `path` (HEAD with GET)."""
    methods: set[str] = set()
    for pattern, route_methods in _method_table(app):
        if pattern.match(path):
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
