"""Error reports to Sentry, only with SENTRY_DSN set: unhandled errors of the web app and the worker.

Unset, sentry-sdk is never started and nothing is sent anywhere. Set, a report carries the request id
(the one the error page shows) and the user id, and nothing personal: no email, cookies, headers,
query strings, request bodies or local variables (which could hold passage text or a password).
"""

import logging
from typing import TYPE_CHECKING

from app.config import Settings
from app.logs import request_id_var

if TYPE_CHECKING:  # sentry-sdk is imported only when it is started
    from sentry_sdk.types import Event, Hint

log = logging.getLogger(__name__)

KEPT_REQUEST_FIELDS = ("method", "url")  # the URL without its query string


def scrub(event: "Event", hint: "Hint | None" = None) -> "Event":
    """Keep only what identifies the failure: the error, where it happened, and opaque ids."""
    request = event.get("request")
    if request:
        kept = {key: request[key] for key in KEPT_REQUEST_FIELDS if key in request}
        if "url" in kept:
            kept["url"] = str(kept["url"]).split("?", 1)[0]
        event["request"] = kept
    user = event.get("user") or {}
    event["user"] = {"id": user["id"]} if user.get("id") else {}
    event.pop("breadcrumbs", None)
    tags = event.setdefault("tags", {})
    if (rid := request_id_var.get()) and "request_id" not in tags:
        tags["request_id"] = rid
    return event


def init_sentry(settings: Settings, *, component: str) -> bool:
    """Start reporting when SENTRY_DSN is set; True if it was started."""
    if settings.sentry_dsn is None or not settings.sentry_dsn.get_secret_value():
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment,
        # No personal data by default (no send_default_pii, deprecated in favour of data_collection); the
        # scrubber below keeps only what identifies the failure whatever an integration collected.
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0,
        # Errors logged with a traceback (log.exception) are reported; no log lines as breadcrumbs.
        integrations=[LoggingIntegration(level=None, event_level=logging.ERROR)],
        before_send=scrub,
    )
    sentry_sdk.set_tag("component", component)
    log.info("errors are reported to Sentry", extra={"component": component})
    return True
