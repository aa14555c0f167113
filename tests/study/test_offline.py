"""Offline study aids from real chapters of the shared books: what a student would notice.

The terms named here were picked by reading each chapter: Think Python's chapter 1 defines them in its
text and lists them in its Glossary section; Levin's "Sets" section defines a set, the power set and
cardinality in its prose; forallx's chapter 1 defines arguments, validity, tautologies; the physics
book's chapter 3 velocity, speed, acceleration and frames of reference.
"""

import re
from collections import Counter

import pytest

from app.library.contents import Page
from app.study.drafts import CardDraft
from app.study.offline import flashcards, quiz, study_guide
from app.study.sentences import is_reference_page
from app.study.terms import key
from tests.support.chapters import book_pages, chapter_pages, entry, page_of, pages_between

THINK_PYTHON = "think_python_2e.pdf"
LEVIN = "discrete_math_levin.pdf"
FORALLX = "forallx_magnus.pdf"
PHYSICS = "physics_art_of_modelling.pdf"
NLP = "nlp_working_programmer.pdf"

CHAPTERS = {
    "think python 1": (THINK_PYTHON, "The way of the program", 0),
    "levin sets": (LEVIN, "Sets", 1),
    "forallx 1": (FORALLX, "What is logic?", 0),
    "physics 3": (PHYSICS, "Describing motion in one dimension", 0),
}


def chapter(name: str) -> list[Page]:
    book, title, level = CHAPTERS[name]
    return chapter_pages(book, title, level=level)


def carded_terms(cards: list[CardDraft]) -> set[str]:
    """The terms the cards teach: a definition's or term card's term, a cloze's blanked answer."""
    terms = set()
    for card in cards:
        if card.kind == "definition":
            asked = re.match(
                r"^What is meant by “(.*)”\?$|^When is (?:an?|the) \w+(?: of \w+)? (.*)\?$", card.front
            )
            assert asked, card.front
            terms.add(key(asked[1] or asked[2]))
        elif card.kind == "term":
            terms.add(key(card.front))
        else:
            terms.add(key(card.back))
    return terms


@pytest.mark.parametrize(
    ("name", "defined"),
    [
        (
            "think python 1",
            [
                "program",
                "interpreter",
                "bug",
                "debugging",
                "syntax",
                "token",
                "parse",
                "prompt",
                "formal language",
                "natural language",
                "high-level language",
                "portability",
                "value",
                "integer",
                "string",
                "operator",
            ],
        ),
        ("levin sets", ["set", "power set", "cardinality"]),
        (
            "physics 3",
            [
                "velocity",
                "acceleration",
                "speed",
                "reference frame",
                "inertial frame of reference",
                "instantaneous velocity",
            ],
        ),
        (
            "forallx 1",
            [
                "argument",
                "deductively valid",
                "tautology",
                "contradiction",
                "sentence",
                "logically equivalent",
                "consistent",
            ],
        ),
    ],
)
def test_cards_teach_the_terms_the_chapter_defines(name: str, defined: list[str]) -> None:
    cards = flashcards(chapter(name), count=40)
    missing = [term for term in defined if key(term) not in carded_terms(cards)]
    assert not missing, (missing, [card.front for card in cards])


def test_the_first_cards_are_definitions_the_text_states() -> None:
    cards = flashcards(chapter("think python 1"), count=20)
    assert len(cards) == 20
    assert [card.kind for card in cards[:10]] == ["definition"] * 10, [card.front for card in cards]


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_every_item_quotes_its_page_exactly(name: str) -> None:
    pages = chapter(name)
    numbers = {page.number for page in pages}
    book = book_pages(CHAPTERS[name][0])
    items = [*flashcards(pages, count=50), *quiz(pages, count=20, book_pages=book)]
    items += study_guide(pages).terms
    assert len(items) > 20
    for item in items:
        assert item.page in numbers
        assert item.quote and item.quote in page_of(pages, item.page).text, item
    for sentence in study_guide(pages).central:
        assert sentence.text in " ".join(page_of(pages, sentence.page).text.split()), sentence


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_cards_are_not_repeated_and_read_as_text(name: str) -> None:
    cards = flashcards(chapter(name), count=50)
    assert cards
    terms = Counter(carded_terms(cards))
    assert len(carded_terms(cards)) == len(cards), terms  # one card per term
    assert len({card.front for card in cards}) == len(cards)
    assert len({(card.page, card.quote) for card in cards}) == len(cards)
    for card in cards:
        for side in (card.front, card.back):
            assert 3 <= len(side) <= 450, card
            assert re.search(r"[^\W\d_]{3}", side), card  # not "42", not "(a)"
            assert key(side) not in {"the", "a", "this", "it"}, card
        assert ">>>" not in card.front + card.back, card


def test_no_card_comes_from_contents_index_or_answer_key() -> None:
    # Think Python: its last chapter and the index after it (pages 272-288); Levin: Additional
    # Topics, then "Solutions to Exercises" (240-287), the index (288-290) and the list of symbols.
    python_index = pages_between(THINK_PYTHON, 272, 288)
    levin_contents = pages_between(LEVIN, 4, 6)
    assert all(is_reference_page(page.text) for page in [*python_index, *levin_contents])
    assert all(is_reference_page(page.text) for page in pages_between(LEVIN, 288, 290))

    python_cards = flashcards(pages_between(THINK_PYTHON, 261, 288), count=60)
    assert python_cards and max(card.page for card in python_cards) < 272
    levin_cards = flashcards(pages_between(LEVIN, 224, 292), count=60)
    assert levin_cards and max(card.page for card in levin_cards) < 240
    # forallx: the last chapter, then "Solutions to selected exercises" (137-148), then its quick reference
    forallx_cards = flashcards(pages_between(FORALLX, 125, 154), count=60)
    assert forallx_cards and not [card.page for card in forallx_cards if 137 <= card.page <= 148]
    contents_cards = flashcards([*levin_contents, *pages_between(LEVIN, 12, 14)], count=30)
    assert contents_cards and min(card.page for card in contents_cards) >= 12


def test_a_table_of_contents_and_an_index_are_recognised_and_prose_is_not() -> None:
    contents = (
        "Contents\n1 Sets . . . . . . . . . 3\n1.1 Subsets . . . . . . . 5\n1.2 Unions . . . . . . . 9\n"
    )
    index = "Index\n" + "\n".join(f"term {n}, {n * 3}, {n * 7}" for n in range(1, 30))
    answers = "Answers to exercises\n1. (a) 3\n(b) 12\n2. 7"
    prose = page_of(book_pages(THINK_PYTHON), 21).text
    assert is_reference_page(contents) and is_reference_page(index) and is_reference_page(answers)
    assert not is_reference_page(prose)


@pytest.mark.parametrize("name", list(CHAPTERS))
def test_quiz_questions_have_four_distinct_choices_and_one_right(name: str) -> None:
    pages = chapter(name)
    questions = quiz(pages, count=10, book_pages=book_pages(CHAPTERS[name][0]))
    assert len(questions) >= 5, questions
    assert len({question.question for question in questions}) == len(questions)
    for question in questions:
        assert len(question.choices) == 4 and len({key(choice) for choice in question.choices}) == 4
        assert 0 <= question.answer_index < 4
        right = question.choices[question.answer_index]
        # the right answer is the term the quoted text names; no other choice is
        assert re.search(re.escape(right.split()[0]), question.quote, re.IGNORECASE), question
        assert "_____" in question.question or "defined as" in question.question
        # the answer is not given away ("consistent" may still be in "inconsistent")
        assert not re.search(rf"(?<![\w-]){re.escape(right)}(?![\w-])", question.question, re.I), question


def test_quiz_is_the_same_for_a_seed_and_changes_with_it() -> None:
    pages = chapter("think python 1")
    book = book_pages(THINK_PYTHON)
    first = quiz(pages, count=8, book_pages=book, seed=3)
    assert first == quiz(pages, count=8, book_pages=book, seed=3)
    others = [quiz(pages, count=8, book_pages=book, seed=seed) for seed in (4, 5)]
    assert any(other != first for other in others)


def test_quiz_distractors_come_from_the_book_when_the_chapter_has_few_terms() -> None:
    pages = pages_between(THINK_PYTHON, 21, 22)  # one page of prose and a list of five terms
    alone = quiz(pages, count=10)
    with_book = quiz(pages, count=10, book_pages=book_pages(THINK_PYTHON))
    assert len(with_book) >= len(alone) and with_book
    chapter_words = " ".join(page.text for page in pages).lower()
    assert any(
        choice.lower() not in chapter_words
        for question in with_book
        for index, choice in enumerate(question.choices)
        if index != question.answer_index
    )


def test_study_guide_gives_defined_terms_and_central_sentences() -> None:
    pages = chapter("think python 1")
    guide = study_guide(pages, terms=12, sentences=6)
    assert len(guide.terms) == 12 and len(guide.central) == 6
    named = {key(term.term) for term in guide.terms}
    assert {"program", "interpreter", "formal language"} <= named, named
    assert all(term.definition and len(term.definition) > 15 for term in guide.terms)
    assert [(s.page) for s in guide.central] == sorted(s.page for s in guide.central)
    assert all(s.page in {page.number for page in pages} for s in guide.central)
    assert guide.summary is None


def test_levin_guide_and_cards_start_from_the_sets_section() -> None:
    pages = chapter("levin sets")
    item = entry(LEVIN, "Sets", level=1)
    guide = study_guide(pages)
    assert {"set", "power set", "cardinality"} <= {key(term.term) for term in guide.terms}
    assert all(item.first_page <= term.page <= item.last_page for term in guide.terms)


def test_nothing_to_learn_gives_nothing() -> None:
    assert flashcards([]) == [] and quiz([]) == []
    assert flashcards([Page(1, "")]) == []
    guide = study_guide([Page(1, "Index\nset, 3\nsubset, 5")])
    assert guide.terms == [] and guide.central == []


def test_a_cloze_blanks_a_term_of_the_chapter_never_an_everyday_word_or_a_label() -> None:
    meditations = "meditations_marcus_aurelius.pdf"
    cards = flashcards(pages_between(meditations, 20, 40), count=20, book_pages=book_pages(meditations))
    blanked = {key(card.back) for card in cards if card.kind == "cloze"}
    # The Meditations define little, so most of their cards are clozes: on what the book is about
    # ("the ruling part", the passions), not on words any page of English has.
    assert len(blanked) >= 10 and {"ruling part", "passion"} <= blanked, blanked
    assert not blanked & {"life", "hand", "world", "body", "state", "moment", "old age", "thing", "time"}
    physics = pages_between(PHYSICS, 20, 40)
    clozes = [card.front for card in flashcards(physics, count=20, book_pages=book_pages(PHYSICS))]
    assert clozes and not [front for front in clozes if re.search(r"_____\s*\d", front)]  # "_____ 2.4"


def test_a_quiz_asks_no_line_that_merely_ends_in_a_colon_and_offers_no_everyday_word() -> None:
    """Levin's counting chapter has no glossary, but lines such as "… how many strings: we must pick
    one of the three bits" and "Be careful: “and” doesn't mean “times.”" read like glossary entries:
    they made "Which term is defined as …?" questions answered "strings" and "careful", beside
    distractors such as "shirt", "weight" and "menu"."""
    counting = chapter_pages(LEVIN, "Counting", level=0)
    questions = quiz(counting, count=10, book_pages=book_pages(LEVIN))
    assert len(questions) == 10
    answers = {key(question.choices[question.answer_index]) for question in questions}
    assert not answers & {"string", "outcome", "subject", "careful"}, answers
    assert not [question.question for question in questions if "defined as" in question.question]
    offered = {key(choice) for question in questions for choice in question.choices}
    assert not offered & {"shirt", "weight", "menu", "left", "careful", "identical", "group"}, offered
    # A real glossary still gives its entries: Levin's graph-theory list, Think Python's sections.
    graphs = quiz(chapter_pages(LEVIN, "Graph Theory", level=0), book_pages=book_pages(LEVIN))
    assert {"chromatic number", "vertex coloring"} <= {key(q.choices[q.answer_index]) for q in graphs}
