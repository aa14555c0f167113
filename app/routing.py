"""Every route of the app with its full path — FastAPI includes routers lazily, so `app.routes` holds
nodes that wrap the included router and its prefix. Used to answer 405 with every allowed method, and
by the tests that sweep every route."""

import re
from functools import lru_cache

from fastapi.routing import APIRoute
from starlette.routing import Route, compile_path


def every_route(app) -> list[tuple[str, Route]]:
    """(full path, route) for each route, API routes and plain Starlette ones (e.g. `/openapi.json`) alike,
    walking included routers. Mounts (static files) are not walked."""
    found: list[tuple[str, Route]] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Route):
                found.append((prefix + route.path, route))
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + route.include_context.prefix)

    walk(app.routes, "")
    return found


def api_routes(app) -> list[tuple[str, APIRoute]]:
    """(full path, route) for each API route."""
    return [(path, route) for path, route in every_route(app) if isinstance(route, APIRoute)]


def plain_routes(app) -> list[tuple[str, Route]]:
    """(full path, route) for each plain Starlette route that is not an API route."""
    return [(path, route) for path, route in every_route(app) if not isinstance(route, APIRoute)]


@lru_cache(maxsize=8)
def _method_table(app) -> list[tuple[re.Pattern, frozenset[str]]]:
    return [(compile_path(path)[0], frozenset(route.methods)) for path, route in api_routes(app)]


def allowed_methods(app, path: str) -> list[str]:
    """Every method some route accepts at `path` (HEAD with GET)."""
    methods = set()
    for pattern, route_methods in _method_table(app):
        if pattern.match(path):
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
