"""`studyrag eval`: the measures it computes from outcomes, and runs over a real two-book library."""

import json

import httpx
import pytest

from app.chat.evaluate import BookFigures, Outcome, Report, evaluate
from app.config import get_settings
from tests.support.cli import run
from tests.support.corpus import BOOKS
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student

NLP, LOGIC = "nlp_working_programmer.pdf", "forallx_magnus.pdf"
LINES = [
    {
        "question": "What is a bigram, and how many of them does a five-word sentence contain?",
        "book": NLP,
        "pages": [32],
        "answer": "A bigram is a pair of consecutive tokens; a five-word sentence contains four.",
    },
    {
        "question": "Why isn't an interrogative like 'Are you tired?' treated as a sentence in logic?",
        "book": LOGIC,
        "pages": [6, 7],
        "answer": "A sentence must be capable of being true or false; a question is neither.",
        "scope": True,
        "scope_books": [LOGIC],
    },
    # Asked of the logic book only: nothing of the NLP book may be found or cited.
    {
        "question": "What is a bigram, and how many of them does a five-word sentence contain?",
        "book": NLP,
        "pages": [32],
        "answer": "",
        "scope_books": [LOGIC],
    },
    {"question": "How long should I boil an egg for a runny yolk?", "book": None, "pages": [], "answer": ""},
    {
        "question": "How does add-one (Laplace) smoothing deal with bigrams that never occurred in training?",
        "book": None,
        "pages": [],
        "answer": "",
        "near_book": NLP,
    },
]


def test_measures_from_outcomes():
    report = Report(
        5,
        [
            Outcome("a1", "x.pdf", rank=1, refused=False, cited=("x.pdf",)),
            Outcome("a2", "x.pdf", rank=3, refused=False, cited=("x.pdf", "y.pdf"), scope_books=("x.pdf",)),
            Outcome("a3", "y.pdf", rank=None, refused=True),
            Outcome("a4", "y.pdf", rank=2, refused=False, cited=("y.pdf",), scope_books=("y.pdf",)),
            Outcome("o1", None, rank=None, refused=True),
            Outcome("o2", None, rank=None, refused=False, cited=("x.pdf",), near_book="x.pdf"),
            Outcome("o3", None, rank=None, refused=True, near_book="y.pdf"),
        ],
    )
    assert (len(report.answerable), len(report.off_library)) == (4, 3)
    assert (report.hits_at(1), report.hits_at(2), report.hits_at(5)) == (1, 2, 3)
    assert report.hit_rate_at(5) == 0.75
    assert report.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    assert report.misses == ["a3"]
    # Three refusals: two off-library questions (right) and one answerable question (wrong).
    assert (report.refusals, report.rightly_refused, report.wrongly_refused) == (3, 2, 1)
    assert report.refusal_precision == pytest.approx(2 / 3)
    assert report.refusal_recall == pytest.approx(2 / 3)
    assert [o.question for o in report.hard_negatives if o.refused] == ["o3"]
    # a2 cites a book outside its scope.
    assert (len(report.scoped), report.scope_correct) == (2, 1)
    assert report.per_book() == [
        BookFigures("x.pdf", questions=2, hits_at_1=1, hits=2, mrr=pytest.approx((1 + 1 / 3) / 2)),
        BookFigures("y.pdf", questions=2, hits_at_1=0, hits=1, mrr=0.25),
    ]
    # A refusal cites nothing, so it never counts as keeping to its scope.
    assert not Outcome("s", "x.pdf", rank=None, refused=True, scope_books=("x.pdf",)).cites_only_scope


def test_an_empty_set_has_no_rates():
    report = Report(5)
    assert report.hit_rate_at(1) is None and report.mrr is None
    assert report.refusal_precision is None and report.refusal_recall is None
    assert report.per_book() == []


@pytest.fixture(scope="module")
async def module_client(app):
    transport = httpx.ASGITransport(app=app, client=("203.0.113.12", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


@pytest.fixture(scope="module")
async def library(module_client, services) -> str:
    """A student with the NLP and the logic book, ingested; returns the student's email."""
    student = await new_student(module_client, "Eve")
    await student.upload_one(BOOKS / NLP, semester="Y3S2", subject="NLP", book="nlp")
    await student.upload_one(BOOKS / LOGIC, semester="Y1S1", subject="Logic", book="forallx")
    await run_worker_until_idle(services)
    assert {f["status"] for f in (await student.get("/api/files")).json()} == {"ready"}
    return student.user["email"]


async def test_questions_are_asked_within_their_scope(library, services):
    report = await evaluate(services, get_settings(), lines=LINES, email=library, k=5, methods=("vector",))
    plain, scoped, elsewhere, egg, smoothing = report.outcomes
    assert plain.rank is not None and not plain.refused
    assert scoped.scope_books == (LOGIC,) and scoped.rank is not None
    assert scoped.cited and set(scoped.cited) == {LOGIC} and scoped.cites_only_scope
    # Retrieval ran within the logic book: the NLP page cannot be found, nor anything of it cited.
    assert elsewhere.rank is None and NLP not in elsewhere.cited
    assert egg.refused and not egg.cited
    assert smoothing.near_book == NLP and report.hard_negatives == [smoothing]
    assert report.scoped == [scoped, elsewhere]


async def test_a_scope_book_missing_from_the_library_is_an_error(library, services):
    line = {**LINES[0], "scope_books": ["think_python_2e.pdf"]}
    with pytest.raises(ValueError, match="has no think_python_2e.pdf"):
        await evaluate(services, get_settings(), lines=[line], email=library, k=5, methods=("vector",))


async def test_eval_command_prints_every_measure_and_a_table_per_book(library, tmp_path):
    qa_file = tmp_path / "qa.jsonl"
    qa_file.write_text("".join(json.dumps(line) + "\n" for line in LINES))
    code, output = await run("eval", str(qa_file), "--user", library, "--k", "3")
    assert code == 0, output
    for measure in (
        "page hit@1",
        "page hit@3",
        "MRR",
        "answerable but refused",
        "refusal precision",
        "refusal recall",
        "hard negatives refused",
        "scope: cites only the named book",
        "per book",
    ):
        assert measure in output, measure
    assert NLP in output and LOGIC in output  # the per-book rows

    code, output = await run("eval", str(qa_file), "--user", "nobody@example.com")
    assert code == 1 and "No account with the email nobody@example.com" in output
