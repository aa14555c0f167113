"""Text amplification: a small PDF can unpack to huge text. Caps per page, per file and per library end
the job with a sentence a student understands, and the worker goes on with the next file."""

import pytest

from app.config import get_settings
from tests.support.ingestion import run_worker_until_idle, wait_for
from tests.support.library import new_student, pdf_of, text_pdf


def shared_stream_pdf(pages: int, text: str) -> bytes:
    """`pages` pages that all draw one content stream: the file stays small, the text grows per page."""
    lines = [text[i : i + 90] for i in range(0, len(text), 90)]
    stream = "BT /F1 8 Tf 20 820 Td 9 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{5 + i} 0 R' for i in range(pages))}] /Count {pages} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
    ]
    objects += [
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        " /Resources << /Font << /F1 3 0 R >> >> >>"
    ] * pages
    return pdf_of(objects)


WORDS = "the moraine records where the glacier stood before it retreated up the valley " * 30


@pytest.fixture
def caps(monkeypatch):
    settings = get_settings()

    def set_caps(**values):
        for name, value in values.items():
            monkeypatch.setattr(settings, name, value)

    return set_caps


async def _ingest(client, services, *files, student=None):
    student = student or await new_student(client)
    uploaded = (await student.upload(*files, book="bombs")).json()["files"]
    await run_worker_until_idle(services)
    jobs = await wait_for(student, [f["id"] for f in uploaded], seconds=60)
    return student, [jobs[f["id"]] for f in uploaded]


async def test_a_file_whose_text_passes_the_cap_fails_readably_and_the_next_file_is_ingested(
    client, services, caps
):
    caps(max_document_chars=100_000)
    bomb = shared_stream_pdf(200, WORDS)  # ~34 KB of PDF, ~470,000 characters of text
    assert len(bomb) < 40_000
    _, (refused, fine) = await _ingest(
        client, services, ("bomb.pdf", bomb), ("fine.pdf", text_pdf("A glacier is a river of ice."))
    )
    assert refused["status"] == "failed"
    assert "more than 100,000 characters of text" in refused["error"]
    assert refused["passages"] == 0
    assert fine["status"] == "ready"


async def test_a_page_with_more_text_than_a_page_can_hold_is_refused(client, services, caps):
    caps(max_page_chars=1_000)
    _, (job,) = await _ingest(client, services, ("dense.pdf", shared_stream_pdf(2, WORDS)))
    assert job["status"] == "failed"
    assert "Page 1 of this PDF holds" in job["error"] and "the limit is 1,000 a page" in job["error"]


async def test_passages_are_capped_per_file_and_per_library(client, services, caps):
    caps(max_document_passages=5)
    _, (job,) = await _ingest(client, services, ("long.pdf", shared_stream_pdf(20, WORDS)))
    assert job["status"] == "failed" and "the limit is 5 a file" in job["error"]

    caps(max_document_passages=15_000, max_tenant_passages=30)
    student, (first,) = await _ingest(client, services, ("first.pdf", shared_stream_pdf(8, WORDS)))
    assert first["status"] == "ready" and 0 < first["passages"] <= 30
    _, (second,) = await _ingest(
        client, services, ("second.pdf", shared_stream_pdf(9, WORDS + "again")), student=student
    )
    assert second["status"] == "failed"
    assert f"Your library holds {first['passages']} passages" in second["error"]


async def test_a_file_that_keeps_killing_its_worker_ends_failed_and_scan_library_tries_again(
    client, services, superuser_engine
):
    from sqlalchemy import text

    student = await new_student(client)
    (uploaded,) = (await student.upload(("fine.pdf", text_pdf("Cirques are bowl-shaped hollows.")))).json()[
        "files"
    ]
    # As if five workers had died on it mid-job (each start is counted before the work begins).
    async with superuser_engine.begin() as conn:
        await conn.execute(text("update documents set attempts = 5 where id = :d"), {"d": uploaded["id"]})
    await run_worker_until_idle(services)
    job = (await wait_for(student, [uploaded["id"]]))[uploaded["id"]]
    assert job["status"] == "failed" and "stopped the reader several times" in job["error"]

    assert (await student.client.post("/api/ingest", headers=student.headers)).json()["queued"] == 1
    await run_worker_until_idle(services)
    assert (await wait_for(student, [uploaded["id"]]))[uploaded["id"]]["status"] == "ready"
    async with superuser_engine.connect() as conn:
        attempts = await conn.scalar(
            text("select attempts from documents where id = :d"), {"d": uploaded["id"]}
        )
    assert attempts == 0
