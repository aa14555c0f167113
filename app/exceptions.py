"""The errors services raise, each with the HTTP status it is answered with.

Services and dependencies raise these and know nothing of HTTP responses; one handler
(`app.errors.on_app_error`) answers them: JSON `{"detail": message}` for the API, the error page for
the site. A `NotYours` — an id that is not in the tenant's data, which may be another user's — is also
recorded in the activity log under the action it carries.
"""

import uuid
from collections.abc import Mapping
from typing import ClassVar


class AppError(Exception):
    """An error whose message is written for the person who sees it."""

    status_code: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be understood."

    def __init__(self, message: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.headers = dict(headers or {})
        super().__init__(self.message)


class InvalidInput(AppError):
    """Input that breaks a rule a schema cannot state (a name, a missing field)."""


class Forbidden(AppError):
    status_code = 403
    default_message = "You do not have access to this page."


class NotFound(AppError):
    status_code = 404
    default_message = "There is nothing here. The page may have moved, or the link is wrong."


class NotYours(NotFound):
    """Not in this tenant's data — it may exist for someone else. Answered as a plain 404 (nothing
    says whether it exists) and recorded as a refused `action` by `user_id` on `target`."""

    reason: ClassVar[str] = "not in this library"

    def __init__(self, message: str | None = None, *, action: str, user_id: uuid.UUID, target: str) -> None:
        super().__init__(message)
        self.action, self.user_id, self.target = action, user_id, target


class AccessDenied(NotYours):
    """A signed-in user where they may not go (the admin area): told there is nothing here."""

    default_message = "Not Found"
    reason = ""


class Conflict(AppError):
    status_code = 409
    default_message = "That conflicts with the current state."


class TooLarge(AppError):
    status_code = 413
    default_message = "That is too large."


class LimitReached(AppError):
    """A rate or monthly limit is used up; the message says when it frees up."""

    status_code = 429
    default_message = "Too many requests. Wait a moment and try again."


class Busy(AppError):
    """A scarce resource (database connections, the question embedder) is taken; try again soon."""

    status_code = 503

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"StudyRAG is busy right now. Try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after
