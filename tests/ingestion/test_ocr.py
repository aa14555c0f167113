"""Scanned PDF pages (no text layer) are read by Tesseract in the parsing child: searchable, cited by
page, within a page cap, at a capped render size; with OCR off they still say they have no text."""

import pytest

from app.config import get_settings
from app.ingestion.parse_pdf import Bitmap, page_image, recognise, render_scale
from app.ingestion.parsing import FileRefused, extract_pages
from tests.support.corpus import BAD
from tests.support.ingestion import WorkerProcess, run_worker_until_idle, wait_for
from tests.support.library import new_student, text_pdf

SCANNED = BAD / "scanned_image_only.pdf"  # Huckleberry Finn, chapter II, as an image only
HUGE = BAD / "oversized_page_huge_image.pdf"  # 8,400 pt square page holding a 35,000-pixel image
SETTINGS = get_settings()


async def _nothing(done: int, total: int) -> None:
    return None


async def _parse(path, **ocr):
    return await extract_pages(
        path,
        max_pages=100,
        time_limit=120,
        memory_mb=SETTINGS.parse_memory_mb,
        on_progress=_nothing,
        ocr={**SETTINGS.ocr_options, **ocr},
    )


async def test_a_scanned_page_answers_a_question_about_its_text(client, services):
    ada = await new_student(client)
    document = await ada.upload_one(SCANNED, semester="Y2", subject="Novels", book="huckleberry")
    await run_worker_until_idle(services)
    job = (await ada.get(f"/api/jobs/{document['id']}")).json()
    assert (job["status"], job["page_count"], job["pages_done"]) == ("ready", 1, 1), job
    reply = (
        await ada.client.post(
            "/api/chat",
            json={
                "query": "Why did they stoop down on the path through the widow's garden?",
                "active_books": ["huckleberry"],
            },
            headers=ada.headers,
        )
    ).json()
    (best, *_) = reply["sources"]
    assert (best["document_id"], best["page"], best["location"]) == (document["id"], 1, "p. 1")
    assert "branches" in best["quote"] and "scrape" in best["quote"], best


async def test_ocr_reads_the_words_of_the_scan():
    parsed = await _parse(SCANNED)
    assert parsed.ocr_pages == 1
    words = parsed.pages[0][1].split()
    assert len(words) > 180
    for expected in ("tip-toeing", "widow’s", "garden,", "stooping", "kitchen"):
        assert expected in words, expected


async def test_a_page_of_a_huge_image_is_rendered_within_the_pixel_cap():
    assert render_scale(8400, 8400, dpi=200, max_pixels=25_000_000) == pytest.approx(5000 / 8400)
    assert render_scale(612, 792, dpi=200, max_pixels=25_000_000) == pytest.approx(200 / 72)
    # 1.2 gigapixels at 300 dpi; capped, it is read within the child's memory limit.
    parsed = await _parse(HUGE, max_pixels=4_000_000)
    assert "very big image" in parsed.pages[0][1]


async def test_the_ocr_page_cap_refuses_a_long_scan_readably(tmp_path):
    scans = tmp_path / "scans.pdf"
    import pypdfium2 as pdfium

    book = pdfium.PdfDocument.new()
    for _ in range(3):
        book.import_pages(pdfium.PdfDocument(str(SCANNED)))
    book.save(str(scans))
    with pytest.raises(
        FileRefused, match="This PDF has 3 scanned pages .no text layer.; OCR reads at most 2 a file"
    ):
        await _parse(scans, max_pages=2)


async def test_with_ocr_off_a_scan_says_it_has_no_text_layer(client):
    ada = await new_student(client)
    worker = await WorkerProcess(OCR_ENABLED="false").start()
    try:
        scanned = await ada.upload_one(SCANNED, book="scans")
        text = await ada.upload_one(("typed.pdf", text_pdf("Typed pages need no OCR at all.")), book="scans")
        jobs = await wait_for(ada, [scanned["id"], text["id"]], seconds=120)
    finally:
        await worker.stop()
    assert (jobs[scanned["id"]]["status"], jobs[scanned["id"]]["error"]) == (
        "failed",
        "This PDF has no text layer (scanned pages); OCR is not available.",
    )
    assert jobs[text["id"]]["status"] == "ready"


async def test_each_page_of_a_longer_scan_keeps_its_own_words_in_order(tmp_path):
    # Consecutive scanned pages are read in batches by one Tesseract; a typed page between them stays
    # in its place, and each scanned page has the words of its own image.
    import pypdfium2 as pdfium

    typed = tmp_path / "typed.pdf"
    typed.write_bytes(text_pdf("A typed page between the scans."))
    mixed = tmp_path / "mixed.pdf"
    book = pdfium.PdfDocument.new()
    for source in (SCANNED, SCANNED, typed, SCANNED, HUGE):
        book.import_pages(pdfium.PdfDocument(str(source)))
    book.save(str(mixed))
    parsed = await _parse(mixed, max_pixels=4_000_000, batch_pages=4, workers=2)
    assert parsed.ocr_pages == 4
    assert [number for number, _ in parsed.pages] == [1, 2, 3, 4, 5]
    for number, text in parsed.pages:
        if number == 3:
            assert text.strip() == "A typed page between the scans."
        elif number == 5:
            assert "very big image" in text and "stooping" not in text
        else:
            assert "stooping" in text.split() and "kitchen" in text.split(), (number, text)


def test_a_page_tesseract_cannot_read_loses_only_itself():
    page = pdfium_scan_page()
    unreadable = Bitmap(columns=0, rows=0, pixels=b"")
    texts = recognise([page, unreadable, page], languages="eng")
    assert len(texts) == 3 and texts[1] == ""
    assert "stooping" in texts[0].split() and texts[0] == texts[2]


def pdfium_scan_page() -> Bitmap:
    import pypdfium2 as pdfium

    return page_image(pdfium.PdfDocument(str(SCANNED)), 0, dpi=200, max_pixels=25_000_000)
