"""The study API over a real ingested book: decks of cited flashcards, review on FSRS, Anki and CSV
export, quizzes and guides — and another user reaching none of it."""

import csv
import io
import json
import re
import sqlite3
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.support.chapters import book_pages
from tests.support.corpus import BOOKS
from tests.support.formats import docx_bytes, markdown_bytes, pptx_bytes
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student, text_pdf

FORALLX = "forallx_magnus.pdf"
# Read in forallx's chapter 1, "What is logic?": terms it defines in its prose.
CHAPTER_ONE_TERMS = {"argument", "valid", "premise", "conclusion"}


@pytest.fixture(scope="module")
async def client_factory(app):
    transport = httpx.ASGITransport(app=app, client=("203.0.113.61", 4711))
    headers = {"Origin": "https://testserver"}
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver", headers=headers) as c:
        yield c


@pytest.fixture(scope="module")
async def library(client_factory, services):
    """Ada with forallx ingested (its chapter 1 looked up), and Bob with a library of his own."""
    ada = await new_student(client_factory, "Ada")
    stored = await ada.upload_one(BOOKS / FORALLX, semester="Y1S1", subject="Logic", book="forallx")
    bob = await new_student(client_factory, "Bob")
    await bob.upload_one(("bob.pdf", text_pdf("Bob's own notes on ethics.")), book="ethics")
    await run_worker_until_idle(services)
    chapters = (await ada.get(f"/api/files/{stored['id']}/chapters")).json()["chapters"]
    (first,) = [c for c in chapters if c["title"] == "What is logic?"]
    return ada, bob, stored["id"], first


async def post(student, url: str, body: dict) -> httpx.Response:
    return await student.client.post(url, json=body, headers=student.headers)


def on_its_page(item: dict) -> bool:
    pages = book_pages(FORALLX)
    return " ".join(item["quote"].split()) in " ".join(pages[item["page"] - 1].text.split())


@pytest.fixture(scope="module")
async def deck(library) -> dict:
    ada, _, document_id, chapter = library
    made = await post(
        ada, "/api/study/flashcards", {"document_id": document_id, "chapter": chapter["number"]}
    )
    assert made.status_code == 201, made.text
    return made.json()


async def test_flashcards_for_a_chapter_are_cited_to_its_pages_and_hold_its_terms(library, deck):
    _, _, document_id, chapter = library
    cards = deck["cards"]
    assert 10 <= len(cards) <= 20
    assert deck["title"] == "forallx — What is logic?" and deck["chapter"] == chapter["number"]
    for card in cards:
        assert card["document_id"] == document_id and card["book"] == "forallx"
        assert chapter["first_page"] <= card["page"] <= chapter["last_page"], card
        assert card["front"].strip() and card["back"].strip()
        assert on_its_page(card), card
    fronts = [card["front"].casefold() for card in cards]
    assert len(set(fronts)) == len(fronts)
    said = " ".join(f"{c['front']} {c['back']}" for c in cards).casefold()
    assert {term for term in CHAPTER_ONE_TERMS if term in said} == CHAPTER_ONE_TERMS


async def test_a_deck_is_listed_with_every_new_card_due_and_read_back_whole(library, deck):
    ada, *_ = library
    listed = (await ada.get("/api/study/decks")).json()
    (mine,) = [d for d in listed if d["deck_id"] == deck["deck_id"]]
    assert mine["card_count"] == mine["due_count"] == len(deck["cards"])
    read = (await ada.get(f"/api/study/decks/{deck['deck_id']}")).json()
    assert [c["id"] for c in read["cards"]] == [c["id"] for c in deck["cards"]]


async def test_grading_a_card_schedules_it_later_and_takes_it_off_the_due_count(library, client_factory):
    ada, _, document_id, chapter = library
    fresh = (await post(ada, "/api/study/flashcards", {"document_id": document_id, "count": 5})).json()
    assert fresh["chapter"] is None and len(fresh["cards"]) == 5
    first, second = fresh["cards"][:2]
    before = datetime.now(UTC)
    good = await post(ada, f"/api/study/review/{first['id']}", {"grade": 3})
    assert good.status_code == 200, good.text
    assert datetime.fromisoformat(good.json()["due"]) > before and good.json()["reviews"] == 1
    again = (await post(ada, f"/api/study/review/{second['id']}", {"grade": 1})).json()
    easy = (await post(ada, f"/api/study/review/{first['id']}", {"grade": 4})).json()
    # Easy on a card already known pushes it days out; Again brings one back within minutes.
    assert datetime.fromisoformat(easy["due"]) - before > (datetime.fromisoformat(again["due"]) - before) * 10
    deck = (await ada.get(f"/api/study/decks/{fresh['deck_id']}")).json()
    assert deck["due_count"] == 3
    for grade in (0, 5, "good"):
        refused = await post(ada, f"/api/study/review/{first['id']}", {"grade": grade})
        assert refused.status_code == 422, refused.text


async def test_a_deck_exports_to_anki_and_csv_with_book_and_page(library, deck):
    ada, *_ = library
    apkg = await ada.get(f"/api/study/decks/{deck['deck_id']}/export.apkg")
    assert apkg.status_code == 200 and "attachment" in apkg.headers["content-disposition"]
    with tempfile.TemporaryDirectory() as folder:
        zipfile.ZipFile(io.BytesIO(apkg.content)).extractall(folder)
        with sqlite3.connect(Path(folder) / "collection.anki2") as db:
            notes = [row[0].split("\x1f") for row in db.execute("select flds from notes")]
    assert len(notes) == len(deck["cards"])
    by_page = {(c["book"], str(c["page"])) for c in deck["cards"]}
    assert {(fields[2], fields[3]) for fields in notes} == by_page

    exported = await ada.get(f"/api/study/decks/{deck['deck_id']}/export.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["book"], r["page"]) for r in rows] == [(c["book"], str(c["page"])) for c in deck["cards"]]
    assert rows[0]["front"].lstrip("'") == deck["cards"][0]["front"]


async def test_a_quiz_has_four_distinct_choices_one_right_each_cited(library):
    ada, _, document_id, chapter = library
    answer = await post(ada, "/api/study/quiz", {"document_id": document_id, "chapter": chapter["number"]})
    assert answer.status_code == 200, answer.text
    questions = answer.json()["questions"]
    assert len(questions) >= 5
    for question in questions:
        assert len({choice.casefold() for choice in question["choices"]}) == 4
        assert 0 <= question["answer_index"] <= 3
        assert chapter["first_page"] <= question["page"] <= chapter["last_page"]
        assert on_its_page(question), question


async def test_a_study_guide_gives_defined_terms_and_central_sentences_with_pages(library):
    ada, _, document_id, chapter = library
    guide = (
        await post(ada, "/api/study/guide", {"document_id": document_id, "chapter": chapter["number"]})
    ).json()
    terms = {term["term"].casefold() for term in guide["terms"]}
    assert {"deductively valid", "consistent", "contradiction"} <= terms, terms
    assert guide["central"] and all(
        chapter["first_page"] <= s["page"] <= chapter["last_page"] for s in guide["central"]
    )
    assert all(on_its_page(term) for term in guide["terms"])


async def test_another_deck_of_a_chapter_goes_on_where_the_last_stopped(library, deck):
    ada, _, document_id, chapter = library
    asked = {"document_id": document_id, "chapter": chapter["number"]}
    held = {(card["page"], card["quote"]) for card in deck["cards"]}
    more = await post(ada, "/api/study/flashcards", asked)
    assert more.status_code == 201, more.text
    new = {(card["page"], card["quote"]) for card in more.json()["cards"]}
    assert new and not new & held  # no card made again
    assert all(on_its_page(card) for card in more.json()["cards"])
    # Until the chapter has given every card it has (forallx's chapter 1: ~165, in fewer each time):
    # then it says so, and makes no empty deck.
    for _ in range(30):
        more = await post(ada, "/api/study/flashcards", {**asked, "count": 100})
        if more.status_code != 201:
            break
        made = {(card["page"], card["quote"]) for card in more.json()["cards"]}
        assert not made & (held | new)
        new |= made
    assert more.status_code == 409
    assert "already hold every flashcard chapter “What is logic?” gives" in more.json()["detail"]
    # Bob making flashcards of Ada's book (and so learning of her cards): the test after the next.


async def test_a_file_not_ready_or_a_chapter_it_lacks_is_refused_clearly(library, services):
    ada, _, document_id, _ = library
    missing = await post(ada, "/api/study/flashcards", {"document_id": document_id, "chapter": 999})
    assert missing.status_code == 404 and "chapter" in missing.json()["detail"]
    pending = await ada.upload_one(("later.pdf", text_pdf("A set is a collection of things.")), book="later")
    waiting = await post(ada, "/api/study/flashcards", {"document_id": pending["id"]})
    assert waiting.status_code == 409 and "not ready" in waiting.json()["detail"]
    await run_worker_until_idle(services)


async def test_bob_reaches_none_of_adas_decks_cards_or_books(library, deck, superuser_engine):
    ada, bob, document_id, chapter = library
    deck_id, card_id = deck["deck_id"], deck["cards"][0]["id"]
    attempts = [
        ("POST", "/api/study/flashcards", {"document_id": document_id}),
        ("POST", "/api/study/quiz", {"document_id": document_id, "chapter": chapter["number"]}),
        ("POST", "/api/study/guide", {"document_id": document_id}),
        ("GET", f"/api/study/decks/{deck_id}", None),
        ("GET", f"/api/study/decks/{deck_id}/export.apkg", None),
        ("GET", f"/api/study/decks/{deck_id}/export.csv", None),
        ("POST", f"/api/study/review/{card_id}", {"grade": 4}),
        ("DELETE", f"/api/study/decks/{deck_id}", None),
    ]
    for method, url, body in attempts:
        response = await bob.client.request(method, url, json=body, headers=bob.headers)
        assert response.status_code == 404, (method, url, response.text)
        assert "forallx" not in response.text and deck["cards"][0]["front"] not in response.text
    assert (await bob.get("/api/study/decks")).json() == []
    async with superuser_engine.connect() as conn:
        denied = (
            (
                await conn.execute(
                    text(
                        "select action from audit_log where user_id = :b and outcome = 'denied' order by id"
                    ),
                    {"b": bob.id},
                )
            )
            .scalars()
            .all()
        )
    assert denied == [
        "study.flashcards", "study.quiz", "study.guide", "deck.read", "deck.export", "deck.export",
        "card.review", "deck.delete",
    ]  # fmt: skip
    # Ada's deck is whole, and her card was not graded by Bob.
    read = (await ada.get(f"/api/study/decks/{deck_id}")).json()
    assert len(read["cards"]) == len(deck["cards"]) and read["cards"][0]["reviews"] == 0


async def test_deleting_the_book_deletes_its_decks(client_factory, services):
    cleo = await new_student(client_factory, "Cleo")
    stored = await cleo.upload_one(BOOKS / FORALLX, book="forallx-copy")
    await run_worker_until_idle(services)
    made = await post(cleo, "/api/study/flashcards", {"document_id": stored["id"], "count": 3})
    assert made.status_code == 201, made.text
    assert (await cleo.delete(f"/api/files/{stored['id']}")).status_code == 204
    assert (await cleo.get("/api/study/decks")).json() == []
    assert (await cleo.get(f"/api/study/decks/{made.json()['deck_id']}")).status_code == 404


LOGIC_QUOTE = "Logic is the business of evaluating arguments, sorting good ones from bad ones."


async def test_with_a_model_its_cards_are_kept_only_where_their_quote_is_on_the_page(library, model):
    ada, _, document_id, chapter = library
    cards = [
        {"front": "What is logic about?", "back": "Evaluating arguments.", "page": 5, "quote": LOGIC_QUOTE},
        {"front": "Who wrote it?", "back": "Nobody.", "page": 6, "quote": "A sentence the book never says."},
    ]
    model.reply = lambda messages: json.dumps({"cards": cards})
    before = (await ada.get("/api/usage")).json()
    made = await post(
        ada, "/api/study/flashcards", {"document_id": document_id, "chapter": chapter["number"]}
    )
    assert made.status_code == 201, made.text
    deck = made.json()
    assert deck["made_by"] == "model"
    assert [(c["front"], c["page"], c["kind"]) for c in deck["cards"]] == [
        ("What is logic about?", 5, "question")
    ]
    assert on_its_page(deck["cards"][0])
    prompt = model.requests[-1]["messages"][-1]["content"]
    assert "=== page 5 ===" in prompt and "=== page 16 ===" not in prompt  # the chapter's pages only
    after = (await ada.get("/api/usage")).json()
    assert after["llm_tokens_in"] > before["llm_tokens_in"], after

    # A model that answers nothing usable: the cards are made offline instead.
    model.reply = lambda messages: "I cannot help with that."
    fallback = (await post(ada, "/api/study/flashcards", {"document_id": document_id, "count": 5})).json()
    assert fallback["made_by"] == "offline" and len(fallback["cards"]) == 5


# Notes whose sentences define their terms, as a student's slides and notes do.
DEFINED = [
    ("Cells", "A cell is the smallest unit of life that can replicate on its own."),
    ("Mitochondria", "A mitochondrion is an organelle that produces most of the ATP of the cell."),
    ("Ribosomes", "A ribosome is a molecular machine that joins amino acids into proteins."),
    ("Chloroplasts", "A chloroplast is an organelle that captures light energy for photosynthesis."),
]


@pytest.mark.parametrize(
    ("name", "data", "unit"),
    [
        ("lecture.pptx", pptx_bytes(DEFINED), "slide"),
        ("notes.docx", docx_bytes(DEFINED), "section"),
        ("notes.md", markdown_bytes(DEFINED), "section"),
    ],
    ids=["slides", "word", "markdown"],
)
async def test_study_aids_for_slides_and_notes_cite_their_unit(client_factory, services, name, data, unit):
    student = await new_student(client_factory, "Dora")
    stored = await student.upload_one((name, data), subject="Biology", book="cells")
    await run_worker_until_idle(services)
    made = await post(student, "/api/study/flashcards", {"document_id": stored["id"]})
    assert made.status_code == 201, made.text
    cards = made.json()["cards"]
    fronts = " ".join(c["front"] for c in cards).casefold()
    assert {"mitochondrion", "ribosome", "chloroplast"} <= set(re.findall(r"[a-z]+", fronts)), cards
    for card in cards:
        title, body = DEFINED[card["page"] - 1]
        assert card["quote"] in f"{title}\n{body}" or card["quote"] in body, card
    quiz = await post(student, "/api/study/quiz", {"document_id": stored["id"]})
    assert quiz.status_code == 200 and quiz.json()["questions"], quiz.text
    page = await student.get(f"/study/decks/{made.json()['deck_id']}")
    assert f">{unit} {cards[0]['page']}</a>" in page.text
