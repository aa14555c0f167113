"""Ingest the whole shared corpus (../shared/corpus/books) through a real arq worker from a cold start.

    .venv/bin/python bench/ingest.py

Starts its own embedded Postgres and Redis in var/bench (fresh each run), uploads every book for one
new user, then runs a real arq worker (its model not yet loaded) until the queue is empty. Prints
pages/s, passages/s and the time spent in each stage (summed over documents). No assertions.
"""

import asyncio
import logging
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = ROOT / "var" / "bench"
BOOKS = ROOT.parent / "shared" / "corpus" / "books"
sys.path.insert(0, str(ROOT))
os.environ.update(ENVIRONMENT="development", VAR_DIR=str(BENCH_VAR))
for name in ("DATABASE_URL", "APP_DATABASE_URL", "REDIS_URL", "S3_BUCKET"):
    os.environ.pop(name, None)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "timings"):
            self.records.append(record)


async def main() -> None:
    from arq.connections import RedisSettings

    from app.config import get_settings
    from app.db import make_engine, make_sessionmaker
    from app.embedded import EmbeddedServices
    from app.ingestion.queue import enqueue_ingest
    from app.library.service import Folder, store_upload
    from app.library.storage import make_storage
    from app.migrate import upgrade_to_head
    from app.models import User
    from app.tenancy import Tenant, bind_tenant
    from app.worker import make_worker

    shutil.rmtree(BENCH_VAR, ignore_errors=True)
    BENCH_VAR.mkdir(parents=True)
    settings = get_settings()
    services = EmbeddedServices(settings)
    urls = await services.start()
    collect = Collect()
    logging.getLogger("app.ingestion.tasks").addHandler(collect)
    logging.getLogger("app.ingestion.tasks").setLevel(logging.INFO)
    try:
        await upgrade_to_head(urls.database_url)
        engine = make_engine(urls.app_database_url)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            user = User(email="bench@example.com", hashed_password="x", name="Bench")
            session.add(user)
        tenant = Tenant(user.id)
        storage = make_storage(settings)
        books = sorted(BOOKS.glob("*.pdf"))
        from arq import create_pool

        queue = await create_pool(RedisSettings.from_dsn(urls.redis_url))
        ids = []
        for book in books:
            async with sessionmaker() as session:
                await bind_tenant(session, tenant)
                with book.open("rb") as source:
                    result = await store_upload(
                        session,
                        tenant,
                        storage,
                        settings,
                        folder=Folder.parse("Bench", "Corpus", book.stem[:60]),
                        filename=book.name,
                        source=source,
                    )
                await session.commit()
            ids.append(result.id)
        started = time.perf_counter()
        for document_id in ids:
            await enqueue_ingest(queue, document_id, tenant.user_id)
        worker = make_worker(
            urls.redis_url, urls.app_database_url, burst=True, poll_delay=0.05, handle_signals=False
        )
        await worker.main()
        await worker.close()
        elapsed = time.perf_counter() - started
        await queue.aclose()
        await engine.dispose()
    finally:
        services.stop()

    pages = sum(r.pages for r in collect.records)
    passages = sum(r.passages for r in collect.records)
    stages: dict[str, float] = {}
    for record in collect.records:
        for stage, seconds in record.timings.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    print(f"books: {len(collect.records)}/{len(books)} ready, {pages} pages, {passages} passages")
    print(f"wall clock from enqueue (cold worker, model load included): {elapsed:.1f} s")
    print(f"throughput: {pages / elapsed:.1f} pages/s, {passages / elapsed:.1f} passages/s")
    print("time per stage, summed over documents (stages of different documents overlap):")
    for stage, seconds in stages.items():
        print(f"  {stage:6s} {seconds:7.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
