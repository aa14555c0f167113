"""NUL characters are refused at the door: Postgres cannot store U+0000 in text, and no name, question
or email needs one. Query strings and non-multipart bodies are checked before the app sees them
(a body is at most MAX_REQUEST_KB here). Multipart bodies carry binary files, so they are read as the
app reads them: their text fields (not their files) are scanned on the way, and one with a NUL ends
the parsing with the same refusal. The answer is a 400 (a rule JSON Schema does not state), JSON for
the API.
"""

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.formparsers import MultiPartException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MESSAGE = "Text may not contain NUL characters (U+0000)."


class _TextFieldScanner:
    """Follows a multipart body chunk by chunk and notes a NUL in any part that is not a file."""

    def __init__(self, boundary: bytes) -> None:
        self.found = self.broken = False
        self._header_name = self._header_value = self._disposition = b""
        self._is_text = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._name,
                "on_header_value": self._value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
            },
        )

    def write(self, chunk: bytes) -> None:
        if self.broken:
            return
        try:
            self._parser.write(chunk)
        except Exception:  # malformed: the app's own parser answers that
            self.broken = True

    def _begin(self) -> None:
        self._disposition = b""

    def _name(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def _headers_finished(self) -> None:
        self._is_text = b"filename" not in parse_options_header(self._disposition)[1]

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_text and b"\x00" in data[start:end]:
            self.found = True


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
        raw_content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        content_type = raw_content_type.lower()
        if content_type.startswith(b"multipart/"):
            await self.app(scope, self._scanning(receive, raw_content_type), send)
            return
        if scope["method"] in ("GET", "HEAD"):
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

    @staticmethod
    def _scanning(receive: Receive, content_type: bytes) -> Receive:
        boundary = parse_options_header(content_type)[1].get(b"boundary")
        if not boundary:
            return receive
        scanner = _TextFieldScanner(boundary)

        async def scanned() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                scanner.write(message.get("body", b""))
                if scanner.found:
                    # Raised into the app's form parsing, which closes its files and answers 400.
                    raise MultiPartException(MESSAGE)
            return message

        return scanned

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        from app.errors import error_response

        await error_response(scope, 400, MESSAGE)(scope, receive, send)
