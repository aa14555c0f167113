"""Object storage behind one small interface: a local directory, or an S3 bucket.

Both keep the same key layout, `users/<user_id>/...`; keys are built by the server, never taken from a
client. The library feature grows this interface (put, open, delete); health checks use `check`.
"""

import asyncio
import os
from pathlib import Path
from typing import Literal, Protocol

from app.config import Settings


class Storage(Protocol):
    backend: Literal["local", "s3"]

    async def check(self) -> None:
        """Raise with a readable reason when the store cannot be read and written."""


class LocalStorage:
    backend: Literal["local", "s3"] = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    async def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise RuntimeError(f"{self.root} is not readable and writable")


class S3Storage:
    backend: Literal["local", "s3"] = "s3"

    def __init__(self, bucket: str, client) -> None:
        self.bucket = bucket
        self.client = client

    async def check(self) -> None:
        await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)


def make_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "s3":
        import boto3

        client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        return S3Storage(settings.s3_bucket, client)
    return LocalStorage(settings.objects_dir)
