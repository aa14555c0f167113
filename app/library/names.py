"""Names a student gives: semesters, subjects, books and file names. Validated before any key is built."""

import re
import unicodedata

from app.exceptions import InvalidInput
from app.library.formats import format_for_name

FOLDER_KINDS = ("semester", "subject", "book")
MAX_FOLDER_LENGTH = 64
MAX_FILE_NAME_LENGTH = 180
# Each name is one path component of the local store (255 bytes at most on common file systems) and
# part of an S3 key (1,024 bytes at most): `users/<id>/raw_data/` (52) + 3 folders of at most 192 bytes
# + a file name of at most 255 bytes + separators comes to 886. Letters take up to 4 bytes in UTF-8,
# so characters alone do not bound this.
MAX_FOLDER_BYTES = 192
MAX_FILE_NAME_BYTES = 255
_FOLDER_PUNCTUATION = frozenset(" ._-")
_FILE_NAME_FORBIDDEN = re.compile(r'[<>:"|?*]')


class InvalidName(InvalidInput):
    """A name that cannot be used; the message is for the student."""


def folder_name(value: str | None, kind: str) -> str:
    """A semester, subject or book name: letters, digits, space, '-', '_', '.'; 1–64 characters."""
    name = unicodedata.normalize("NFKC", value or "").strip()
    allowed = all(ch.isalnum() or ch in _FOLDER_PUNCTUATION for ch in name)
    if not name or len(name) > MAX_FOLDER_LENGTH or not allowed or set(name) == {"."}:
        raise InvalidName(
            f"The {kind} name must be 1–{MAX_FOLDER_LENGTH} characters: letters, digits, spaces, "
            "'-', '_' or '.'."
        )
    if (size := len(name.encode())) > MAX_FOLDER_BYTES:
        raise InvalidName(
            f"The {kind} name is too long: at most {MAX_FOLDER_BYTES} bytes as stored (UTF-8), and this "
            f"one takes {size}. Some letters take up to 4 bytes; use a shorter name."
        )
    return name


def file_name(value: str | None) -> str:
    """A safe file name from whatever the client sent: no directories, no '..', no control characters.

    Unicode look-alikes of '/' and '.' are folded to ASCII first (NFKC), so they are caught too.
    """
    name = unicodedata.normalize("NFKC", value or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    name = _FILE_NAME_FORBIDDEN.sub("_", name)
    name = re.sub(r"\s+", " ", name)
    while ".." in name:
        name = name.replace("..", ".")
    name = name.strip(" .")
    # A known extension stays (lower-cased); a name without one gets its format's extension once the
    # content is known (app.library.formats.check_format), so room is kept for the longest it gives.
    extension = name[name.rfind(".") :].lower() if format_for_name(name) else ""
    stem = name[: len(name) - len(extension)] if extension else name
    room = len(extension) or 5
    stem = stem.strip(" .")[: MAX_FILE_NAME_LENGTH - room]
    while len(stem.encode()) > MAX_FILE_NAME_BYTES - room:  # letters of up to 4 bytes each
        stem = stem[:-1]
    stem = stem.rstrip(" .")
    if not stem:
        raise InvalidName("The file has no usable name; rename it and try again.")
    return stem + extension
