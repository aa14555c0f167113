"""Offline study aids on real chapters of the shared books: seconds for flashcards, quiz and study
guide, with pages, characters and how many items each gave.

    .venv/bin/python bench/study.py [--repeat 3] [--count 20]

Chapters come from each PDF's outline (bookmarks); text is what ingestion stores (pypdfium2, then
`app.ingestion.text.normalise`). Each figure is the median of --repeat runs in this one process (the
first run included: nothing is cached between calls). The quiz gets the whole book as its source of
distractors, as the study service passes it. The goal (issue 15): flashcards for a 30-page chapter in
under 3 s on 2 cores. No assertions; the machine's load average is printed with the figures.
"""

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.library.contents import Page  # noqa: E402
from app.study.offline import flashcards, quiz, study_guide  # noqa: E402
from tests.support.chapters import book_pages, chapter_pages, pages_between  # noqa: E402

# (book, outline title, outline level); None for a page range of a book without an outline
CHAPTERS: list[tuple[str, str, int | None, tuple[int, int] | None]] = [
    ("think_python_2e.pdf", "The way of the program", 0, None),
    ("think_python_2e.pdf", "Lists", 0, None),
    ("discrete_math_levin.pdf", "Sets", 1, None),
    ("discrete_math_levin.pdf", "Logic and Proofs", 0, None),
    ("forallx_magnus.pdf", "Quantified logic", 0, None),
    ("physics_art_of_modelling.pdf", "Describing motion in one dimension", 0, None),
    ("nlp_working_programmer.pdf", "pages 8-37 (no outline)", None, (8, 37)),
]


def timed(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=20, help="cards asked for (questions: half)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"cores {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"median of {args.repeat}"
    )
    header = (
        f"{'chapter':<58} {'pages':>5} {'chars':>7} {'cards s':>8} {'cards':>5} {'quiz s':>7} "
        f"{'qs':>3} {'guide s':>8} {'terms':>5}"
    )
    print(header)
    print("-" * len(header))
    for book, title, level, span in CHAPTERS:
        pages: list[Page] = pages_between(book, *span) if span else chapter_pages(book, title, level=level)
        whole = book_pages(book)
        characters = sum(len(page.text) for page in pages)
        cards_s, cards = timed(args.repeat, partial(flashcards, pages, count=args.count))
        quiz_s, questions = timed(
            args.repeat, partial(quiz, pages, count=max(1, args.count // 2), book_pages=whole)
        )
        guide_s, guide = timed(args.repeat, partial(study_guide, pages))
        name = f"{book.removesuffix('.pdf')}: {title}"[:58]
        print(
            f"{name:<58} {len(pages):>5} {characters:>7} {cards_s:>8.2f} {len(cards):>5} {quiz_s:>7.2f} "
            f"{len(questions):>3} {guide_s:>8.2f} {len(guide.terms):>5}"
        )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
