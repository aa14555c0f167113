"""Ingest the whole shared corpus (../shared/corpus/books) through a real arq worker from a cold start,
then a scanned book, for OCR pages/s.

    .venv/bin/python bench/ingest.py [--ocr-pages 40] [--ocr-only] [--ocr-variants]

Starts its own embedded Postgres and Redis in var/bench (fresh each run), uploads every book for one
new user, then runs a real arq worker (its model not yet loaded) until the queue is empty. Prints
pages/s, passages/s and the time spent in each stage (summed over documents). No assertions.

OCR: the first --ocr-pages pages of think_python_2e.pdf are rasterised at 200 dpi into an image-only
PDF (a scan with no text layer), uploaded and ingested by the same worker; OCR pages/s is the OCR'd
pages over the parse stage's time (the settings' OCR_WORKERS Tesseracts at once); CPU s a page is the
parsing child's and its Tesseracts' CPU time, which other work on the machine hardly changes. Accuracy is the
share of the text layer's words (letters and digits, lower case) that OCR found on the same page.
--ocr-variants also reads the scan through the parsing child at other settings (dpi, workers,
pages a Tesseract reads at once).
"""

import argparse
import asyncio
import logging
import os
import re
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = ROOT / "var" / "bench"
_WORD = re.compile(r"[a-z0-9]+")
sys.path.insert(0, str(ROOT))
from tests.support.corpus import BOOKS  # noqa: E402

SCANNED_SOURCE = BOOKS / "think_python_2e.pdf"
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


def make_scan(source: Path, target: Path, pages: int, dpi: int = 200) -> list[str]:
    """An image-only PDF of the first `pages` pages of `source`; returns their text layer."""
    import pypdfium2 as pdfium

    original = pdfium.PdfDocument(str(source))
    scan = pdfium.PdfDocument.new()
    texts = []
    for index in range(pages):
        page = original[index]
        width, height = page.get_size()
        texts.append(page.get_textpage().get_text_range())
        bitmap = page.render(scale=dpi / 72, grayscale=True)
        image = pdfium.PdfImage.new(scan)
        image.set_bitmap(bitmap)
        image.set_matrix(pdfium.PdfMatrix().scale(width, height))
        blank = scan.new_page(width, height)
        blank.insert_obj(image)
        blank.gen_content()
    scan.save(str(target))
    return texts


def child_cpu() -> float:
    """CPU seconds of this process's finished children and theirs (the parsing child's Tesseracts):
    unlike the wall clock, hardly changed by other work on the machine."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def word_recall(truth: str, found: str) -> tuple[int, int]:
    """(words of `truth` that `found` holds, counted with multiplicity; words of `truth`)."""
    from collections import Counter

    expected = Counter(_WORD.findall(truth.lower()))
    got = Counter(_WORD.findall(found.lower()))
    return sum(min(n, got[w]) for w, n in expected.items()), sum(expected.values())


async def ocr_variants(scan: Path, truths: list[str], settings) -> None:
    from app.ingestion.parsing import extract_pages
    from app.ingestion.text import normalise

    async def nothing(done: int, total: int) -> None:
        return None

    print("OCR through the parsing child, by setting (the same scan):")
    print(f"  {'dpi':>4} {'workers':>7} {'batch':>5} {'pages/s':>8} {'cpu s/page':>10} {'word recall':>12}")
    for dpi, workers, batch in ((200, 2, 4), (200, 2, 1), (200, 1, 4), (300, 2, 4), (175, 2, 4), (150, 2, 4)):
        started, cpu = time.perf_counter(), child_cpu()
        parsed = await extract_pages(
            scan,
            max_pages=settings.max_pdf_pages,
            time_limit=3600,
            memory_mb=settings.parse_memory_mb,
            on_progress=nothing,
            ocr={**settings.ocr_options, "dpi": dpi, "workers": workers, "batch_pages": batch},
        )
        seconds, cpu = time.perf_counter() - started, child_cpu() - cpu
        hits = total = 0
        for (_, text), truth in zip(parsed.pages, truths, strict=True):
            h, t = word_recall(normalise(truth), text)
            hits, total = hits + h, total + t
        rate, recall = parsed.ocr_pages / seconds, hits / max(total, 1)
        print(
            f"  {dpi:>4} {workers:>7} {batch:>5} {rate:>8.2f} {cpu / parsed.ocr_pages:>10.2f} {recall:>12.1%}"
        )
    load = os.getloadavg()[0]
    print(f"  (load average {load:.2f} after the last; pages/s falls when other work shares the cores)")


async def main(args) -> None:
    from arq.connections import RedisSettings
    from sqlalchemy import text

    from app.config import get_settings
    from app.db import make_engine, make_sessionmaker
    from app.embedded import EmbeddedServices
    from app.library.service import Folder, store_upload
    from app.library.storage import make_storage
    from app.migrate import upgrade_to_head
    from app.models import User
    from app.queue import enqueue_ingest
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
    scan = BENCH_VAR / "scanned_think_python.pdf"
    truths = make_scan(SCANNED_SOURCE, scan, args.ocr_pages)
    try:
        await upgrade_to_head(urls.database_url)
        engine = make_engine(urls.app_database_url)
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session, session.begin():
            user = User(email="bench@example.com", hashed_password="x", name="Bench")
            session.add(user)
        tenant = Tenant(user.id)
        storage = make_storage(settings)
        from arq import create_pool

        queue = await create_pool(RedisSettings.from_dsn(urls.redis_url))

        async def ingest(paths: list[Path], subject: str) -> float:
            """Seconds from enqueuing `paths` to an empty queue, through one burst worker."""
            ids = []
            for path in paths:
                async with sessionmaker() as session:
                    await bind_tenant(session, tenant)
                    with path.open("rb") as source:
                        result = await store_upload(
                            session,
                            tenant,
                            storage,
                            settings,
                            folder=Folder.parse("Bench", subject, path.stem[:60]),
                            filename=path.name,
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
            return time.perf_counter() - started

        books = sorted(BOOKS.glob("*.pdf"))
        if not args.ocr_only:
            elapsed = await ingest(books, "Corpus")
            report(collect.records, len(books), elapsed)
        collect.records.clear()
        cpu = child_cpu()
        elapsed = await ingest([scan], "Scans")
        cpu = child_cpu() - cpu
        (record,) = collect.records
        ocr_seconds = record.timings["parse"]
        print(
            f"scanned book: {record.ocr_pages} of {record.pages} pages by OCR, parse {ocr_seconds:.1f} s: "
            f"{record.ocr_pages / ocr_seconds:.2f} OCR pages/s ({settings.ocr_workers} at once, "
            f"{settings.ocr_batch_pages} pages a Tesseract, {settings.ocr_dpi} dpi); "
            f"ready {elapsed:.1f} s after it was queued"
        )
        per_page, cores = cpu / record.ocr_pages, min(os.cpu_count() or 1, settings.ocr_workers)
        print(
            f"  parsing child and its Tesseracts: {per_page:.2f} CPU s a page, so {cores} / {per_page:.2f} = "
            f"{cores / per_page:.2f} pages/s on {cores} free cores (load average {os.getloadavg()[0]:.2f})"
        )
        async with sessionmaker() as session:
            await bind_tenant(session, tenant)
            found = await session.scalars(
                text(
                    "select text from chunks c join documents d on d.id = c.document_id"
                    " where d.filename = :f order by ordinal"
                ),
                {"f": scan.name},
            )
            ocr_text = " ".join(found)
        hits, total = word_recall(" ".join(truths), ocr_text)
        print(f"OCR word recall against the text layer: {hits / total:.1%} ({hits:,} of {total:,} words)")
        if args.ocr_variants:
            await ocr_variants(scan, truths, settings)
        await queue.aclose()
        await engine.dispose()
    finally:
        services.stop()


def report(records, books: int, elapsed: float) -> None:
    pages = sum(r.pages for r in records)
    passages = sum(r.passages for r in records)
    stages: dict[str, float] = {}
    for record in records:
        for stage, seconds in record.timings.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    print(f"books: {len(records)}/{books} ready, {pages} pages, {passages} passages")
    print(f"wall clock from enqueue (cold worker, model load included): {elapsed:.1f} s")
    print(f"throughput: {pages / elapsed:.1f} pages/s, {passages / elapsed:.1f} passages/s")
    print("time per stage, summed over documents (stages of different documents overlap):")
    for stage, seconds in stages.items():
        print(f"  {stage:6s} {seconds:7.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ocr-pages", type=int, default=40, help="pages of the scanned book")
    parser.add_argument("--ocr-only", action="store_true", help="skip the corpus, ingest only the scan")
    parser.add_argument("--ocr-variants", action="store_true", help="also time OCR at other settings")
    asyncio.run(main(parser.parse_args()))
