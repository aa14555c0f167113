"""Cross-site request forgery: a state-changing request that a browser could send with our cookie
must come from our own pages.

Browsers send `Origin` with every POST, PUT, PATCH and DELETE (and `Referer` where they do not); a
request from another site therefore names that site and is refused. A request carrying the session
cookie but neither header is refused too (strict). Requests with a bearer token are not checked: no
browser adds one to a cross-site request without our CORS consent, which we never give — but browsers
do add `Authorization: Basic …` on their own behind basic auth, so only `Bearer` counts. A request
with a bearer token is authenticated by that token alone: the session cookie is taken off it, so a
forged post cannot carry a made-up bearer token and ride on the cookie. Log-in and sign-up forms are
covered as well (a cross-site log-in would plant the attacker's session).
"""

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.cookies import COOKIE_NAME

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
REFUSAL = (
    "This request came from another website, so it was refused. "
    "Go back to StudyRAG, reload the page and try again."
)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).netloc.lower() or None
    except ValueError:
        return None


def has_bearer_token(headers: Headers) -> bool:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def without_session_cookie(scope: Scope) -> Scope:
    """`scope` with our session cookie taken out of its Cookie headers (other cookies stay)."""
    headers = []
    for name, value in scope["headers"]:
        if name == b"cookie":
            kept = [
                pair for pair in value.split(b";") if pair.split(b"=", 1)[0].strip() != COOKIE_NAME.encode()
            ]
            if not any(pair.strip() for pair in kept):
                continue
            value = b";".join(kept).strip()
        headers.append((name, value))
    return {**scope, "headers": headers}


def cross_site(scope: Scope, trusted_hosts: frozenset[str]) -> bool:
    """True when the request must be refused."""
    if scope["method"] in SAFE_METHODS:
        return False
    headers = Headers(scope=scope)
    if has_bearer_token(headers):
        return False
    own = {(headers.get("host") or "").lower(), *trusted_hosts}
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is not None:
            return _host(value) not in own  # "null" and malformed values have no host: refused
    return COOKIE_NAME in HTTPConnection(scope).cookies


class CrossSiteRequestMiddleware:
    def __init__(self, app: ASGIApp, trusted_origins: list[str]) -> None:
        self.app = app
        self.trusted_hosts = frozenset(host for origin in trusted_origins if (host := _host(origin)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_bearer_token(Headers(scope=scope)):
            scope = without_session_cookie(scope)
        elif scope["type"] == "http" and cross_site(scope, self.trusted_hosts):
            from app.errors import error_response

            response = error_response(scope, 403, REFUSAL)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
