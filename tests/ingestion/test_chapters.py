"""Chapters: from a PDF's outline, from "Chapter N" headings without one, listed through the API, and
read again (without re-embedding) for documents ingested before chapters were kept."""

import re
import uuid

import pypdfium2 as pdfium
from sqlalchemy import text

from app.ingestion.chapters import chapters_for, from_headings, from_outline
from app.ingestion.parse_pdf import outline
from app.ingestion.text import normalise
from app.library.contents import Chapter
from app.queue import enqueue_ingest
from tests.support.corpus import BOOKS
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student

NLP = BOOKS / "nlp_working_programmer.pdf"  # 78 pages, no outline


def _parsed(path) -> tuple[list[tuple[int, str]], list[dict[str, object]]]:
    document = pdfium.PdfDocument(str(path))
    pages = [(i + 1, normalise(document[i].get_textpage().get_text_range())) for i in range(len(document))]
    return pages, outline(document)


def test_a_books_outline_gives_its_chapters_with_their_page_ranges():
    pages, bookmarks = _parsed(BOOKS / "think_python_2e.pdf")
    chapters = chapters_for("pdf", pages, bookmarks, {})
    titles = [c.title for c in chapters]
    assert titles[:3] == ["Preface", "The way of the program", "Variables, expressions and statements"]
    lists = chapters[titles.index("Lists")]
    assert (lists.first_page, lists.last_page) == (127, 142)
    assert pages[lists.first_page - 1][1].startswith("Chapter10\nLists\n")  # the chapter opens there
    # Chapters follow one another without gaps or overlaps, to the last page.
    assert all(a.last_page + 1 == b.first_page for a, b in zip(chapters, chapters[1:], strict=False))
    assert chapters[-1].last_page == len(pages)
    assert [c.number for c in chapters] == list(range(1, len(chapters) + 1))


def test_without_an_outline_chapter_headings_give_the_chapters_and_the_contents_page_does_not():
    pages, bookmarks = _parsed(NLP)
    assert bookmarks == []
    chapters = chapters_for("pdf", pages, bookmarks, {})
    assert [c.title for c in chapters[:3]] == [
        "Chapter 1. Introduction",
        "Chapter 2. Words",
        "Chapter 3. N-grams",
    ]
    assert [(c.first_page, c.last_page) for c in chapters[:3]] == [(8, 10), (11, 31), (32, 54)]
    assert all(c.first_page > 3 for c in chapters), "the table of contents (page 3) names no chapter"
    # A heading that wraps onto a second line keeps both.
    assert chapters[-1].title == "Chapter 10. Performance and efficiency (proposed)"


def test_the_contents_index_and_lists_of_a_book_are_not_chapters():
    pages, bookmarks = _parsed(BOOKS / "discrete_math_levin.pdf")
    chapters = chapters_for("pdf", pages, bookmarks, {})
    assert [c.title for c in chapters] == [
        "Preface",
        "Introduction",
        "Counting",
        "Sequences",
        "Logic and Proofs",
        "Graph Theory",
        "Additional Topics",
        "Solutions to Exercises",
    ]
    assert [c.number for c in chapters] == list(range(1, 9))
    # The answer key is a chapter to ask about, but has no prose to make study aids of.
    assert [c.title for c in chapters if not c.study] == ["Solutions to Exercises"]
    # The chapters keep their own pages: the index after the solutions is in none of them.
    assert (chapters[-1].first_page, chapters[-1].last_page) == (240, 287)
    assert not any(c.holds(288) for c in chapters)
    # An EPUB's contents page is no chapter either.
    epub = chapters_for(
        "epub", [(1, "…"), (2, "…"), (3, "…")], [], {1: "Contents", 2: "The Thaw", 3: "Index"}
    )
    assert epub == [Chapter(1, "The Thaw", 2, 2)]


def test_one_root_bookmark_gives_way_to_its_children_and_roman_numbers_count():
    root = [
        {"title": "My Book", "level": 0, "page": 1},
        {"title": "One", "level": 1, "page": 2},
        {"title": "Two", "level": 1, "page": 5},
        {"title": "Two, part", "level": 2, "page": 6},
    ]
    assert from_outline(root, 9) == [Chapter(1, "One", 2, 4), Chapter(2, "Two", 5, 9)]
    pages = [
        (1, "CHAPTER I\nBeginnings\ntext"),
        (2, "more"),
        (3, "CHAPTER II. Middles"),
        (4, "CHAPTER I again"),
    ]
    assert from_headings(pages) == [
        Chapter(1, "Chapter 1. Beginnings", 1, 2),
        Chapter(2, "Chapter 2. Middles", 3, 4),
    ]
    assert chapters_for("pptx", pages, [], {}) == []
    epub = chapters_for("epub", [(1, "a"), (2, "b")], [], {1: "The Thaw"})
    assert [(c.title, c.first_page, c.last_page) for c in epub] == [("The Thaw", 1, 1), ("Chapter 2", 2, 2)]


async def test_chapters_are_listed_and_documents_read_before_them_get_them_without_re_embedding(
    client, app, services, app_engine, superuser_engine
):
    ada = await new_student(client)
    document = await ada.upload_one(NLP, book="nlp")
    await run_worker_until_idle(services)
    listed = (await ada.get(f"/api/files/{document['id']}/chapters")).json()
    assert listed["read"] is True
    assert listed["chapters"][1] == {
        "number": 2,
        "title": "Chapter 2. Words",
        "first_page": 11,
        "last_page": 31,
        "study": True,
    }

    # As a document ingested before this change: no chapters, no page text.
    async with superuser_engine.begin() as connection:
        await connection.execute(
            text("update documents set chapters = null, units = null where id = :id"), {"id": document["id"]}
        )
        chunks_before = (
            await connection.execute(
                text("select array_agg(id order by id) from chunks where document_id = :id"),
                {"id": document["id"]},
            )
        ).scalar_one()
        # The reconciler's backlog names it (a stale heartbeat), so a worker re-reads it.
        await connection.execute(
            text("update documents set heartbeat_at = now() - interval '1 hour' where id = :id"),
            {"id": document["id"]},
        )
    async with app_engine.connect() as connection:
        backlog = (await connection.execute(text("select id, status from ingestion_backlog(60)"))).all()
    assert (uuid.UUID(document["id"]), "ready") in backlog
    assert (await ada.get(f"/api/files/{document['id']}/chapters")).json() == {
        "document_id": document["id"],
        "read": False,
        "chapters": [],
    }

    assert await enqueue_ingest(app.state.arq, uuid.UUID(document["id"]), uuid.UUID(ada.id))
    await run_worker_until_idle(services)
    assert (await ada.get(f"/api/files/{document['id']}/chapters")).json() == listed
    async with superuser_engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "select (select array_agg(id order by id) from chunks where document_id = d.id),"
                    " jsonb_array_length(d.units), d.status from documents d where d.id = :id"
                ),
                {"id": document["id"]},
            )
        ).one()
    assert row[0] == chunks_before, "the passages (and their embeddings) were kept, not made again"
    assert row[1] == 78 and row[2] == "ready"


def test_with_headers_on_each_passage_is_embedded_after_its_book_and_place_in_the_outline():
    from app.ingestion.chunking import chunk_pages
    from app.ingestion.parsing import Parsed
    from app.ingestion.tasks import embedded_texts
    from app.library import formats

    pages, bookmarks = _parsed(BOOKS / "forallx_magnus.pdf")
    parsed = Parsed(pages=pages, outline=bookmarks)
    passages = chunk_pages(pages)
    on_page_40 = next(i for i, p in enumerate(passages) if p.page_start == 40)
    with_book = embedded_texts(passages, parsed, formats.PDF, book="forall x")
    assert with_book[on_page_40].startswith("forall x: Truth tables > Partial truth tables\n\n")
    assert with_book[on_page_40].endswith(passages[on_page_40].text)
    assert embedded_texts(passages, parsed, formats.PDF, book=None)[on_page_40].startswith("Truth tables > ")
    # Front matter before the first bookmark has only the book's name.
    assert with_book[0] == f"forall x\n\n{passages[0].text}"


async def test_an_answer_key_is_a_chapter_to_ask_about_but_offers_no_study_aids(client, services):
    """forallx ends with "Solutions to selected exercises": flashcards, a quiz or a guide of it held
    nothing, yet the library offered all three. It still offers Ask; Bob sees none of Ada's chapters."""
    ada = await new_student(client)
    document = await ada.upload_one(BOOKS / "forallx_magnus.pdf", book="forallx")
    await run_worker_until_idle(services)
    chapters = (await ada.get(f"/api/files/{document['id']}/chapters")).json()["chapters"]
    assert [c["title"] for c in chapters if not c["study"]] == ["Solutions to selected exercises"]
    assert chapters[0]["study"] is True

    library = (await ada.get("/library")).text
    rows = {
        title: re.search(rf">{re.escape(title)}</a>(.*?)</li>", library, re.DOTALL)
        for title in ("Solutions to selected exercises", "Truth tables")
    }
    solutions, truth_tables = (match.group(1) if match else "" for match in rows.values())
    assert "Ask</a>" in solutions and "answer key or lists" in solutions
    assert "Flashcards</button>" not in solutions and "Quiz</a>" not in solutions
    assert "Ask</a>" in truth_tables and "Flashcards</button>" in truth_tables and "Quiz</a>" in truth_tables

    bob = await new_student(client)
    assert (await bob.get(f"/api/files/{document['id']}/chapters")).status_code == 404
    assert "Solutions to selected exercises" not in (await bob.get("/library")).text
