"""What the two upload routes (the API's and the no-JavaScript form's) share."""

from typing import BinaryIO

from fastapi import UploadFile

from app.config import get_settings

# The whole request is bounded before it is parsed (a declared size at once, a streamed one as it
# arrives), and so is the number of files; each file's own size is checked as it is stored. FastAPI
# takes these limits when the route is declared, so they are read from the settings then, once.
UPLOAD_LIMITS = {
    "max_body_size": get_settings().max_upload_request_bytes,
    "form_limits": {"max_files": get_settings().max_files_per_upload},
}


def uploaded(files: list[UploadFile]) -> list[tuple[str | None, BinaryIO]]:
    """(file name, content) of each uploaded file, as the library service takes them."""
    return [(upload_file.filename, upload_file.file) for upload_file in files]
