"""Ingestion through real arq workers: pages kept, bad files contained, idempotent, isolated."""

import asyncio
import io
import uuid

import pypdfium2 as pdfium
from sqlalchemy import text

from app.db import make_sessionmaker
from app.ingestion.text import normalise
from app.queue import enqueue_ingest
from app.tenancy import Tenant, bind_tenant
from tests.support.corpus import BAD, BOOKS
from tests.support.ingestion import WorkerProcess, run_worker_until_idle, wait_for
from tests.support.library import new_student, pdf_bytes

FORALLX = BOOKS / "forallx_magnus.pdf"
SMALL_BOOK = BOOKS / "nlp_working_programmer.pdf"  # 78 pages


async def _chunks(app_engine, user_id: str, document_id: str) -> list:
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(user_id)))
        return (
            await session.execute(
                text(
                    "select ordinal, page_start, page_end, text, user_id::text, embedding is not null"
                    " from chunks where document_id = :d order by ordinal"
                ),
                {"d": document_id},
            )
        ).all()


def _sentence_on_page(path, page: int) -> str:
    raw = pdfium.PdfDocument(str(path))[page - 1].get_textpage().get_text_range()
    lines = [line for line in normalise(raw).split("\n") if len(line) > 50]
    return lines[len(lines) // 2][:50]


async def test_a_book_is_ingested_with_the_pages_of_every_passage(client, services, app_engine):
    ada = await new_student(client)
    document = await ada.upload_one(FORALLX)
    await run_worker_until_idle(services)

    job = (await ada.get(f"/api/jobs/{document['id']}")).json()
    assert job["status"] == "ready", job
    assert job["page_count"] == job["pages_done"] == len(pdfium.PdfDocument(str(FORALLX)))
    assert job["error"] is None

    chunks = await _chunks(app_engine, ada.id, document["id"])
    assert len(chunks) == job["passages"] > 100
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c[5] for c in chunks), "every passage has an embedding"
    assert {c[4] for c in chunks} == {ada.id}
    assert max(len(c.text) for c in chunks) <= 1000
    for page in (12, 50, 101):
        sentence = _sentence_on_page(FORALLX, page)
        holding = [c for c in chunks if sentence in c.text]
        assert holding, (page, sentence)
        assert all(c.page_start <= page <= c.page_end for c in holding), (
            page,
            [(c.page_start, c.page_end) for c in holding],
        )


async def test_enqueuing_the_same_document_twice_runs_it_once(client, app, services, app_engine):
    ada = await new_student(client)
    document = await ada.upload_one(("twice.pdf", SMALL_BOOK.read_bytes()))  # queued by the upload
    assert await enqueue_ingest(app.state.arq, uuid.UUID(document["id"]), uuid.UUID(ada.id)) is False
    await run_worker_until_idle(services)
    chunks = await _chunks(app_engine, ada.id, document["id"])
    assert len({c.ordinal for c in chunks}) == len(chunks) > 0
    # Run again on purpose (a retry, a re-scan): still exactly one set.
    assert await enqueue_ingest(app.state.arq, uuid.UUID(document["id"]), uuid.UUID(ada.id)) is True
    await run_worker_until_idle(services)
    assert len(await _chunks(app_engine, ada.id, document["id"])) == len(chunks)


EXPECTED = {
    "encrypted_owner_password_only.pdf": ("ready", None),
    "nonlatin_arabic_rtl.pdf": ("ready", None),
    "nonlatin_chinese_think_python.pdf": ("ready", None),
    "encrypted_user_password.pdf": ("failed", "This PDF is password-protected"),
    "corrupt_broken_xref.pdf": ("failed", "This PDF is damaged"),
    "header_only_invalid.pdf": ("failed", "This PDF is damaged"),
    "truncated_forallx.pdf": ("failed", "This PDF is damaged"),
    "huge_page_count_100k.pdf": ("failed", "This PDF has 100,000 pages; the limit is 5,000."),
    # Scanned pages are read by OCR; the 35,000-pixel image is rendered at most OCR_MAX_PIXELS.
    "scanned_image_only.pdf": ("ready", None),
    "oversized_page_huge_image.pdf": ("ready", None),
}


async def test_every_bad_file_ends_in_a_clear_status_and_the_worker_lives_on(client):
    ada = await new_student(client)
    worker = await WorkerProcess().start()
    try:
        response = await ada.upload(*(BAD / name for name in EXPECTED), book="bad")
        ids = {f["filename"]: f["id"] for f in response.json()["files"]}
        jobs = await wait_for(ada, list(ids.values()), seconds=300)  # two of them are read by OCR
        for name, (status, message) in EXPECTED.items():
            job = jobs[ids[name]]
            assert job["status"] == status, (name, job)
            if message:
                assert message in job["error"], (name, job)
        assert worker.alive
        assert jobs[ids["scanned_image_only.pdf"]]["passages"] >= 1
        good = await ada.upload_one(("after.pdf", (BOOKS / "meditations_marcus_aurelius.pdf").read_bytes()))
        assert (await wait_for(ada, [good["id"]]))[good["id"]]["status"] == "ready"
        assert worker.alive
    finally:
        await worker.stop()


async def test_kill_dash_nine_mid_ingest_then_restart_ends_ready_with_one_set(client, app_engine):
    ada = await new_student(client)
    book = BOOKS / "physics_art_of_modelling.pdf"
    env = {"INGEST_STALE_SECONDS": "2"}
    first = await WorkerProcess(**env).start()
    try:
        document = await ada.upload_one(book, book="physics")
        await wait_for(ada, [document["id"]], statuses=("embedding",), seconds=120)
        await asyncio.sleep(0.5)
        await first.kill()
    finally:
        await first.kill()
    assert (await ada.get(f"/api/jobs/{document['id']}")).json()["status"] == "embedding"
    await asyncio.sleep(2.5)  # the dead job goes quiet

    second = await WorkerProcess(**env).start()
    try:
        job = (await wait_for(ada, [document["id"]], seconds=300))[document["id"]]
    finally:
        await second.stop()
    assert job["status"] == "ready", job
    chunks = await _chunks(app_engine, ada.id, document["id"])
    assert [c.ordinal for c in chunks] == list(range(job["passages"]))


async def test_b_cannot_read_or_trigger_as_ingestion(client, app, app_engine, services):
    a, b = await new_student(client, "A"), await new_student(client, "B")
    document = await a.upload_one(("a.pdf", (BOOKS / "meditations_marcus_aurelius.pdf").read_bytes()))
    await run_worker_until_idle(services)

    assert (await b.get(f"/api/jobs/{document['id']}")).status_code == 404
    assert (await b.get(f"/library/files/{document['id']}/status")).status_code == 404
    scan = await b.client.post("/api/ingest", headers=b.headers)
    assert scan.json() == {"found": 0, "queued": 0, "skipped": []}
    assert (await a.get(f"/api/jobs/{document['id']}")).json()["status"] == "ready"

    a_chunks = await _chunks(app_engine, a.id, document["id"])
    assert a_chunks and {c[4] for c in a_chunks} == {a.id}
    assert await _chunks(app_engine, b.id, document["id"]) == []


async def test_scan_library_ingests_new_books_only(client, app, services, superuser_engine):
    ada = await new_student(client)
    prefix = f"users/{ada.id}/raw_data"
    storage = app.state.storage
    # Files put straight into the user's prefix by another tool.
    await storage.put(
        f"{prefix}/Y1/Logic/forallx/placed.pdf", io.BytesIO(SMALL_BOOK.read_bytes()), content_type=""
    )
    await storage.put(
        f"{prefix}/Y1/Logic/forallx/notes.pdf", io.BytesIO(b"not a pdf at all"), content_type=""
    )
    await storage.put(f"{prefix}/loose.pdf", io.BytesIO(pdf_bytes("loose")), content_type="")

    first = (await ada.client.post("/api/ingest", headers=ada.headers)).json()
    assert (first["found"], first["queued"]) == (1, 1)
    assert sorted(s["key"].rsplit("/", 1)[-1] for s in first["skipped"]) == ["loose.pdf", "notes.pdf"]
    await run_worker_until_idle(services)
    (placed,) = (await ada.get("/api/files")).json()
    assert (placed["filename"], placed["status"]) == ("placed.pdf", "ready")

    again = (await ada.client.post("/api/ingest", headers=ada.headers)).json()
    assert (again["found"], again["queued"]) == (0, 0)

    # A change of embedding model re-embeds: never a mix of vectors.
    async with superuser_engine.begin() as conn:
        await conn.execute(
            text("update documents set embedding_model = 'old-model' where id = :d"), {"d": placed["id"]}
        )
    assert (await ada.client.post("/api/ingest", headers=ada.headers)).json()["queued"] == 1
    await run_worker_until_idle(services)
    async with superuser_engine.connect() as conn:
        model = await conn.scalar(
            text("select embedding_model from documents where id = :d"), {"d": placed["id"]}
        )
    assert model == "all-MiniLM-L6-v2-int8"
