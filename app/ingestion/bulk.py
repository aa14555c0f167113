"""`studyrag ingest`: upload local PDFs into a user's library and ingest them here, with progress bars."""

import asyncio
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.embedded import ServiceUrls
from app.ingestion.tasks import ingest_document
from app.library.service import Folder, store_upload
from app.library.storage import Storage, make_storage
from app.models import Document
from app.models.user import user_columns
from app.tenancy import Tenant, bind_tenant
from app.worker import shutdown, startup

Sessions = async_sessionmaker[AsyncSession]
Status = tuple[str, int, int | None, str | None]  # status, pages done, page count, error


async def _store(
    sessionmaker: Sessions,
    tenant: Tenant,
    storage: Storage,
    settings: Settings,
    folder: Folder,
    paths: list[Path],
    console: Console,
) -> list[tuple[str, str]]:
    stored: list[tuple[str, str]] = []
    for path in paths:
        async with sessionmaker() as session:
            await bind_tenant(session, tenant)
            with path.open("rb") as source:
                result = await store_upload(
                    session, tenant, storage, settings, folder=folder, filename=path.name, source=source
                )
            await session.commit()
        if result.status == "rejected":
            console.print(f"[yellow]skipped[/yellow] {path}: {result.error}")
        else:
            stored.append((str(result.id), result.filename))
    return stored


async def bulk_ingest(
    urls: ServiceUrls, settings: Settings, *, paths: list[Path], email: str, folder: Folder, console: Console
) -> int:
    """Returns how many files failed or were skipped (0: all ready)."""
    engine = make_engine(urls.app_database_url)
    sessionmaker = make_sessionmaker(engine)
    ctx: dict[str, Any] = {"app_database_url": urls.app_database_url}
    try:
        async with sessionmaker() as session:
            user_id = await session.scalar(
                select(user_columns.id).where(func.lower(user_columns.email) == email.lower())
            )
        if user_id is None:
            console.print(f"[red]No account with the email {email}.[/red]")
            return len(paths)
        tenant = Tenant(user_id)
        storage = make_storage(settings)
        stored = await _store(sessionmaker, tenant, storage, settings, folder, paths, console)
        await startup(ctx)
        statuses = await _ingest_with_progress(ctx, sessionmaker, tenant, stored)
        for (_, name), (status, error) in zip(stored, statuses, strict=True):
            if status == "failed":
                console.print(f"[red]failed[/red] {name}: {error}")
        return len(paths) - sum(status == "ready" for status, _ in statuses)
    finally:
        if "engine" in ctx:
            await shutdown(ctx)
        await engine.dispose()


async def _ingest_with_progress(
    ctx: dict[str, Any], sessionmaker: Sessions, tenant: Tenant, stored: list[tuple[str, str]]
) -> list[tuple[str, str | None]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages · {task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns) as progress:
        tasks = {doc_id: progress.add_task(name, total=None, status="queued") for doc_id, name in stored}
        job = asyncio.gather(*(ingest_document(ctx, doc_id, str(tenant.user_id)) for doc_id, _ in stored))
        while True:
            done = job.done()
            rows = await _statuses(sessionmaker, tenant, [uuid.UUID(doc_id) for doc_id, _ in stored])
            for doc_id, task in tasks.items():
                status, pages_done, page_count, _ = rows[doc_id]
                progress.update(task, total=page_count, completed=pages_done, status=status)
            if done:
                break
            await asyncio.sleep(0.3)
        await job
    return [(rows[doc_id][0], rows[doc_id][3]) for doc_id, _ in stored]


async def _statuses(sessionmaker: Sessions, tenant: Tenant, ids: list[uuid.UUID]) -> dict[str, Status]:
    async with sessionmaker() as session:
        await bind_tenant(session, tenant)
        result = await session.execute(
            select(
                Document.id, Document.status, Document.pages_done, Document.page_count, Document.error
            ).where(Document.id.in_(ids))
        )
        return {str(id_): (status, done, count, error) for id_, status, done, count, error in result}
