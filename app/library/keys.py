"""The one place object keys are built: `users/<user_id>/raw_data/<semester>/<subject>/<book>/<file>`."""

import uuid

from app.library.names import file_name, folder_name

USERS_PREFIX = "users/"


def user_prefix(user_id: uuid.UUID) -> str:
    return f"{USERS_PREFIX}{user_id}/"


def document_key(user_id: uuid.UUID, *, semester: str, subject: str, book: str, filename: str) -> str:
    parts = [
        folder_name(semester, "semester"),
        folder_name(subject, "subject"),
        folder_name(book, "book"),
        file_name(filename),
    ]
    # Validated names cannot hold these; the check stays so a future change cannot slip one through.
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise ValueError(f"unsafe key part {part!r}")
    return user_prefix(user_id) + "raw_data/" + "/".join(parts)
