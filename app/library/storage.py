"""Object storage behind one small interface: a local directory, or an S3 bucket.

Both use the same keys (`app.library.keys`), built by the server, never taken from a client. Reads and
writes stream in chunks: a 200 MB PDF is never held in memory whole.
"""

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol
from urllib.parse import quote

from app.config import Settings

if TYPE_CHECKING:  # boto3 is imported only for the S3 backend
    from mypy_boto3_s3 import S3Client

CHUNK = 1024 * 1024


def inline_disposition(filename: str, *, inline: bool = True) -> str:
    """`inline` (or `attachment`) with an ASCII fallback and the exact UTF-8 name (RFC 6266); no header
    injection."""
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class ObjectMissing(Exception):
    """The key names no stored object."""


class Storage(Protocol):
    backend: Literal["local", "s3"]

    async def check(self) -> None:
        """Raise when the store cannot be used."""

    async def put(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        """Store the whole of `source` (read from its current position) under `key`."""

    async def download(self, key: str, destination: Path) -> None:
        """Copy the object to a local file; `ObjectMissing` when there is no such key."""

    async def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    async def exists(self, key: str) -> bool: ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def download_url(
        self,
        key: str,
        *,
        filename: str,
        expires: int,
        media_type: str = "application/pdf",
        inline: bool = True,
    ) -> str | None:
        """A short-lived URL the browser may fetch directly, or None to stream through the app."""


class LocalStorage:
    backend: Literal["local", "s3"] = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} leaves the storage root")
        return path

    async def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise RuntimeError(f"{self.root} is not readable and writable")

    async def put(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        await asyncio.to_thread(self._put, self.path(key), source)

    @staticmethod
    def _put(path: Path, source: BinaryIO) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target, then rename: a reader never sees half a file.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".upload-", delete=False) as tmp:
            try:
                shutil.copyfileobj(source, tmp, CHUNK)
                tmp.flush()
                os.fsync(tmp.fileno())
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, path)

    async def download(self, key: str, destination: Path) -> None:
        source = self.path(key)
        if not source.is_file():
            raise ObjectMissing(key)
        await asyncio.to_thread(shutil.copyfile, source, destination)

    async def delete(self, key: str) -> None:
        path = self.path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def list_keys(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            # A string prefix, as S3 has it: walk the deepest folder it names, then filter.
            folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
            base = self.path(folder) if folder else self.root
            if not base.is_dir():
                return []
            keys = (
                path.relative_to(self.root).as_posix()
                for path in base.rglob("*")
                if path.is_file() and not path.name.startswith(".upload-")
            )
            return sorted(key for key in keys if key.startswith(prefix))

        return await asyncio.to_thread(walk)

    async def download_url(
        self,
        key: str,
        *,
        filename: str,
        expires: int,
        media_type: str = "application/pdf",
        inline: bool = True,
    ) -> str | None:
        return None


class S3Storage:
    backend: Literal["local", "s3"] = "s3"

    def __init__(self, bucket: str, client: "S3Client") -> None:
        self.bucket = bucket
        self.client = client

    async def check(self) -> None:
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)

    async def put(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        # upload_fileobj streams in parts (multipart above 8 MB).
        await asyncio.to_thread(
            self.client.upload_fileobj, source, self.bucket, key, ExtraArgs={"ContentType": content_type}
        )

    async def download(self, key: str, destination: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.download_file, self.bucket, key, str(destination))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(key) from None
            raise

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)

    async def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def list_keys(self, prefix: str) -> list[str]:
        def collect() -> list[str]:
            paginator = self.client.get_paginator("list_objects_v2")
            return sorted(
                item["Key"]
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            )

        return await asyncio.to_thread(collect)

    async def download_url(
        self,
        key: str,
        *,
        filename: str,
        expires: int,
        media_type: str = "application/pdf",
        inline: bool = True,
    ) -> str | None:
        return await asyncio.to_thread(
            self.client.generate_presigned_url,
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentType": media_type,
                "ResponseContentDisposition": inline_disposition(filename, inline=inline),
            },
            ExpiresIn=expires,
        )


def make_storage(settings: Settings) -> Storage:
    if settings.s3_bucket:  # what makes storage_backend "s3"
        import boto3
        from botocore.config import Config

        # Signature V4 always: botocore would presign with V2 in us-east-1, which AWS refuses.
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(signature_version="s3v4"),
        )
        return S3Storage(settings.s3_bucket, client)
    return LocalStorage(settings.objects_dir)
