"""Security headers on every response: a Content-Security-Policy, nosniff, a referrer policy, framing
restricted to our own pages, and HSTS outside development."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.templating import HTMX_CDN

DOCS_PREFIXES = ("/docs", "/redoc", "/static-offline-docs")
FILE_CONTENT_PREFIX = "/files/"


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def content_security_policy(settings: Settings) -> str:
    """Pages: scripts only from us and the pinned htmx CDN file (loaded with integrity), no inline
    script or style, images from us (answers never show remote images), frames of our own PDFs —
    or of the S3 endpoint the PDF links redirect to."""
    frames = ["'self'"]
    if settings.storage_backend == "s3":
        frames.append(
            _origin(settings.s3_endpoint_url) if settings.s3_endpoint_url else "https://*.amazonaws.com"
        )
    directives = {
        "default-src": "'self'",
        # The exact file, not the CDN's origin: that would admit every package ever published to npm.
        "script-src": f"'self' {HTMX_CDN}",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "frame-src": " ".join(frames),
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'self'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


# The API docs page (Swagger UI, served offline) starts itself with an inline script.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)
# A PDF is shown by the browser's own viewer, which a page policy would block; it may only be framed
# by our pages.
FILE_POLICY = "frame-ancestors 'self'"


def security_headers(path: str, settings: Settings) -> dict[str, str]:
    if path.startswith(DOCS_PREFIXES):
        policy = DOCS_POLICY
    elif path.startswith(FILE_CONTENT_PREFIX):
        policy = FILE_POLICY
    else:
        policy = content_security_policy(settings)
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "SAMEORIGIN",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if not settings.is_development:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope["path"], self.settings)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
