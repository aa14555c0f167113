"""The error answers of the JSON API, declared once so the OpenAPI schema says what clients can get."""

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    detail: str


DESCRIPTIONS = {
    400: "The request could not be read (malformed body) or breaks a rule a schema cannot state.",
    401: "Not logged in, or the token is expired, revoked or forged.",
    404: "Not found — including anything that belongs to another user.",
    409: "Conflicts with the current state (e.g. a conversation at its message limit).",
    413: "Too large: the request body, a file, or the user's quota.",
    415: "Not a PDF.",
    429: "Rate limited; `Retry-After` says when to try again.",
    503: "Busy (every database connection or the question embedder is taken); `Retry-After` says when "
    "to try again.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    # Errors are JSON even on a route whose own answer is another media type (the chat stream).
    json = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    return {code: {"model": ErrorOut, "description": DESCRIPTIONS[code], "content": json} for code in codes}


# What any signed-in API route may answer besides its own result.
COMMON = errors(400, 401, 404, 413)


def errors_or(model_name: str, *codes: int) -> dict[int | str, dict[str, Any]]:
    """Codes whose body is either an error or `model_name` (e.g. an upload whose every file was refused
    answers with the per-file results)."""
    schema = {
        "anyOf": [{"$ref": "#/components/schemas/ErrorOut"}, {"$ref": f"#/components/schemas/{model_name}"}]
    }
    return {
        code: {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": schema}}}
        for code in codes
    }
