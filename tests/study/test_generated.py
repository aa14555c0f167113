"""Study aids written by a model (the suite's fake OpenAI server): every kept item quotes a page of
the chapter, whatever the model claims."""

import json
from typing import Any

from langchain_openai import ChatOpenAI

from app.study import generated
from app.study.generated import Tokens
from app.study.sentences import is_reference_page
from tests.support.chapters import chapter_pages, page_of, pages_between
from tests.support.fake_openai import FakeOpenAI

BOOK = "think_python_2e.pdf"


def _model(server: FakeOpenAI) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="test-model", max_retries=0)


def _chapter() -> list[Any]:
    return chapter_pages(BOOK, "The way of the program", level=0)


def _sent(server: FakeOpenAI) -> str:
    return "\n".join(str(message["content"]) for message in server.requests[-1]["messages"])


async def test_cards_keep_only_quotes_found_on_the_chapters_pages() -> None:
    pages = _chapter()
    cards = {
        "cards": [
            # exact, with the page's line break
            {
                "front": "What is a program?",
                "back": "A sequence of instructions.",
                "page": 21,
                "quote": "A program is a sequence of instructions that specifies how to perform a "
                "computation.",
            },
            # the page breaks this sentence over two lines and uses curly quotes; the model does not
            {
                "front": "What are bugs?",
                "back": "Programming errors.",
                "page": 27,
                "quote": "For whimsical reasons, programming errors are called bugs and the process of "
                "tracking them down is called debugging.",
            },
            # said to be on page 21, really on page 25
            {
                "front": "What are natural languages?",
                "back": "The languages people speak.",
                "page": 21,
                "quote": "Natural languages are the languages people speak, such as English, Spanish, "
                "and French.",
            },
            # not in the book
            {
                "front": "Who wrote Python?",
                "back": "Guido van Rossum.",
                "page": 22,
                "quote": "Python was created by Guido van Rossum in 1991.",
            },
            # no quote at all, and a repeat
            {"front": "What is a token?", "back": "A basic element.", "page": 25},
            {
                "front": "What is a program?",
                "back": "Again.",
                "page": 21,
                "quote": "A program is a sequence of instructions",
            },
        ]
    }
    tokens = Tokens()
    with FakeOpenAI() as server:
        server.reply = lambda messages: "Here you are:\n```json\n" + json.dumps(cards) + "\n```"
        drafts = await generated.flashcards(_model(server), pages, count=10, tokens=tokens)
        sent = _sent(server)

    assert [card.front for card in drafts] == [
        "What is a program?",
        "What are bugs?",
        "What are natural languages?",
    ]
    assert [card.page for card in drafts] == [21, 27, 25]
    for card in drafts:
        assert card.kind == "question" and card.quote in page_of(pages, card.page).text
    assert "=== page 21 ===" in sent and "A program is a sequence of instructions" in sent
    assert tokens.input > 0 and tokens.output > 0


async def test_reference_pages_are_not_sent_and_an_unreadable_reply_gives_nothing() -> None:
    pages = pages_between(BOOK, 261, 275)  # the last chapter, then the index
    with FakeOpenAI() as server:
        server.reply = lambda messages: "Sorry, I cannot help with that."
        drafts = await generated.flashcards(_model(server), pages, count=5)
        sent = _sent(server)
    assert drafts == []
    index_pages = [page.number for page in pages if is_reference_page(page.text)]
    assert index_pages and all(f"=== page {n} ===" not in sent for n in index_pages)
    assert "=== page 262 ===" in sent


async def test_quiz_keeps_well_formed_questions_with_real_quotes() -> None:
    pages = _chapter()
    quote = "The Python interpreter is a program that reads and executes Python code."
    good = {
        "question": "What does the interpreter do?",
        "page": 22,
        "quote": quote,
        "answer_index": 2,
        "choices": ["Compiles C", "Draws windows", "Reads and executes code", "Stores files"],
    }
    questions = {
        "questions": [
            good,
            {**good, "question": "Three choices?", "choices": ["a", "b", "c"]},
            {**good, "question": "Same choice twice?", "choices": ["a", "b", "A", "d"]},
            {**good, "question": "Answer out of range?", "answer_index": 4},
            {**good, "question": "Invented?", "quote": "The interpreter was written in 1989 by a committee."},
        ]
    }
    with FakeOpenAI() as server:
        server.reply = lambda messages: json.dumps(questions)
        drafts = await generated.quiz(_model(server), pages, count=10)

    assert len(drafts) == 1
    question = drafts[0]
    assert question.choices[question.answer_index] == "Reads and executes code"
    assert question.page == 22 and question.quote == quote


async def test_summary_cites_the_passages_it_was_given_renumbered() -> None:
    pages = _chapter()
    with FakeOpenAI() as server:
        server.reply = lambda messages: "Programs are instructions [4]. Errors are bugs [9][99], see [4]."
        guide = await generated.summary(_model(server), pages)
        passages = server.requests[-1]["messages"][-1]["content"]

    assert guide.summary == "Programs are instructions [1]. Errors are bugs [2], see [1]."
    assert len(guide.summary_sources) == 2
    for source, n in zip(guide.summary_sources, (4, 9), strict=True):
        assert f"[{n}] (page {source.page}) {source.text}" in passages
        assert source.text in " ".join(page_of(pages, source.page).text.split())
    assert guide.terms and guide.central  # the offline guide comes with it


async def test_a_summary_citing_nothing_is_left_out() -> None:
    with FakeOpenAI() as server:
        server.reply = lambda messages: "This chapter is about programs."
        guide = await generated.summary(_model(server), _chapter())
    assert guide.summary is None and guide.summary_sources == [] and guide.terms


async def test_a_quote_shortened_with_an_ellipsis_keeps_its_longest_part_found() -> None:
    pages = _chapter()
    shortened = "Formal languages are languages that are designed by people … for specific applications."
    reply = {
        "questions": [
            {
                "question": "Who designs formal languages?",
                "choices": ["People", "Nature", "Computers", "Nobody"],
                "answer_index": "0",
                "page": "25",
                "quote": shortened,
            }
        ]
    }
    with FakeOpenAI() as server:
        server.reply = lambda messages: json.dumps(reply)
        drafts = await generated.quiz(_model(server), pages, count=3)

    assert len(drafts) == 1 and drafts[0].answer_index == 0 and drafts[0].page == 25
    assert drafts[0].quote == "Formal languages are languages that are designed by people"
    assert drafts[0].quote in page_of(pages, 25).text
