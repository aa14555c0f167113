"""NUL characters are refused at the door: Postgres cannot store U+0000 in text, and no name, question
or email needs one. Query strings and non-multipart bodies are checked before the app sees them
(a body is at most MAX_REQUEST_KB here); multipart bodies carry binary files, and their text fields
go through the name rules. The answer is a 400 (a rule JSON Schema does not state), JSON for the API.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MESSAGE = "Text may not contain NUL characters (U+0000)."


def _has_nul(data: bytes, content_type: bytes = b"application/x-www-form-urlencoded") -> bool:
    """A raw NUL, or its encoding in the body's format (percent-encoding, a JSON escape)."""
    if b"\x00" in data:
        return True
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        return b"%00" in data
    if b"json" in content_type:
        return b"\\u0000" in data.lower()
    return False


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope.get("query_string", b"")):
            await self._refuse(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if content_type.startswith(b"multipart/") or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _has_nul(body, content_type):
            await self._refuse(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from app.errors import error_response

        await error_response(scope, 400, MESSAGE)(scope, receive, send)
