"""What the two upload routes (the API's and the no-JavaScript form's) share."""

from collections.abc import Sequence
from typing import Any, BinaryIO

from fastapi import Request, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings, get_settings
from app.library import service
from app.library.schemas import UploadedFile
from app.tenancy import Tenant

# The whole request is bounded before it is parsed (a declared size at once, a streamed one as it
# arrives), and so is the number of files; each file's own size is checked as it is stored. FastAPI
# takes these limits when the route is declared, so they are read from the settings then, once.
UPLOAD_LIMITS: dict[str, Any] = {
    "max_body_size": get_settings().max_upload_request_bytes,
    "form_limits": {"max_files": get_settings().max_files_per_upload},
}


def uploaded(files: Sequence[UploadFile]) -> list[tuple[str | None, BinaryIO]]:
    """(file name, content) of each uploaded file, as the library service takes them."""
    return [(upload_file.filename, upload_file.file) for upload_file in files]


async def store_all(
    request: Request,
    session: AsyncSession,
    tenant: Tenant,
    settings: Settings,
    folder: service.Folder,
    files: Sequence[UploadFile],
) -> list[UploadedFile]:
    """Each uploaded file stored (or refused) on its own, in the app's storage and queue."""
    return await service.store_uploads(
        session,
        tenant,
        request.app.state.storage,
        settings,
        folder=folder,
        files=uploaded(files),
        queue=request.app.state.arq,
    )
