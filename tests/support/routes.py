"""Every route of the app, found from its router — so a test over "all routes" covers new ones too."""

from fastapi.routing import APIRoute
from starlette.routing import Route

from app.routing import api_routes as all_routes  # (full path, route) of every API route

__all__ = ["all_routes", "plain_routes"]


def plain_routes(app) -> list[tuple[str, Route]]:
    """(full path, route) for each plain Starlette route that is not an API route (e.g. `/openapi.json`).
    Mounts (static files) are not walked."""
    found: list[tuple[str, Route]] = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Route) and not isinstance(route, APIRoute):
                found.append((prefix + route.path, route))
            elif hasattr(route, "original_router"):
                walk(route.original_router.routes, prefix + route.include_context.prefix)

    walk(app.routes, "")
    return found
