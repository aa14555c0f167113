"""Sliding page sessions: access tokens are short-lived, and a page session in use is renewed.

When the strategy reads a cookie token older than a third of its lifetime it notes the user and the
session in the request's state; this middleware then adds a fresh token of the same session (so
logging out still ends all of it) as a cookie to the response — unless the response sets the cookie
itself (log-in, log-out). An idle session expires with its token.
"""

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.backend import cookie_options, issue_token
from app.config import get_settings
from app.security.cookies import COOKIE_NAME


class SessionRenewalMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_renewed(message: Message) -> None:
            renewal = scope.get("state", {}).get("renew_session_for")
            if message["type"] == "http.response.start" and renewal is not None:
                user_id, session_id = renewal
                headers = MutableHeaders(scope=message)
                if not any(value.startswith(f"{COOKIE_NAME}=") for value in headers.getlist("set-cookie")):
                    settings = get_settings()
                    carrier = Response()
                    carrier.set_cookie(
                        COOKIE_NAME, issue_token(user_id, settings, session_id), **cookie_options(settings)
                    )
                    headers.append("set-cookie", carrier.headers["set-cookie"])
            await send(message)

        await self.app(scope, receive, send_renewed)
