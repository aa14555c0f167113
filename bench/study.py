"""Offline study aids on real chapters of the shared books: seconds for flashcards, quiz and study
guide, with pages, characters and how many items each gave.

    .venv/bin/python bench/study.py [--repeat 3] [--count 20]

Chapters come from each PDF's outline (bookmarks); text is what ingestion stores (pypdfium2, then
`app.ingestion.text.normalise`). Each figure is the median of --repeat runs in this one process, as
wall-clock seconds and as this process's CPU seconds (which a busy machine inflates less). "cards"
is flashcards from the chapter alone; "+book" the same with the whole book as the measure of term
specificity, once, from cold (the book's sentences are read then and kept for later calls); the quiz
gets the whole book as its source of distractors, warm. The goal (issue 15): flashcards for a
30-page chapter in under 3 s on 2 cores. No assertions; the machine's load average is printed with
the figures. `make bench-study` runs it.
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
from app.study.sentences import book_sentences, is_reference_page  # noqa: E402
from app.study.terms import reference  # noqa: E402
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


def timed(repeat: int, run: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result), medians over `repeat` runs."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = run()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), result


def cold() -> None:
    """Forget what earlier runs kept (a book's sentences and page frequencies, page kinds)."""
    book_sentences.cache_clear()
    reference.cache_clear()
    is_reference_page.cache_clear()


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
        f"{'chapter':<46} {'pages':>5} {'chars':>6} | {'cards s':>7} {'cpu':>5} {'n':>3} | "
        f"{'+book s':>7} {'cpu':>5} | {'quiz s':>6} {'cpu':>5} {'n':>3} | "
        f"{'guide s':>7} {'cpu':>5} {'terms':>5}"
    )
    print(header)
    print("-" * len(header))
    for book, title, level, span in CHAPTERS:
        pages: list[Page] = pages_between(book, *span) if span else chapter_pages(book, title, level=level)
        whole = book_pages(book)
        characters = sum(len(page.text) for page in pages)
        cold()
        cards_s, cards_cpu, cards = timed(args.repeat, partial(flashcards, pages, count=args.count))
        # with the book as the measure of specificity; the first run on a book reads all of it
        cold()
        book_s, book_cpu, _ = timed(1, partial(flashcards, pages, count=args.count, book_pages=whole))
        quiz_s, quiz_cpu, questions = timed(
            args.repeat, partial(quiz, pages, count=max(1, args.count // 2), book_pages=whole)
        )
        guide_s, guide_cpu, guide = timed(args.repeat, partial(study_guide, pages))
        name = f"{book.removesuffix('.pdf')}: {title}"[:46]
        print(
            f"{name:<46} {len(pages):>5} {characters:>6} | "
            f"{cards_s:>7.2f} {cards_cpu:>5.2f} {len(cards):>3} | "
            f"{book_s:>7.2f} {book_cpu:>5.2f} | {quiz_s:>6.2f} {quiz_cpu:>5.2f} {len(questions):>3} | "
            f"{guide_s:>7.2f} {guide_cpu:>5.2f} {len(guide.terms):>5}"
        )
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
