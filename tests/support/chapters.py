"""Real pages of the shared books, as ingestion stores them, and their chapters from each PDF's outline.

    pages = book_pages("think_python_2e.pdf")
    chapter = chapter_pages("think_python_2e.pdf", "The way of the program")

Text is what pypdfium2 extracts, normalised by `app.ingestion.text.normalise` (what the parsing child
and the worker do), so tests and benches see the page text a student's document holds.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import pypdfium2 as pdfium

from app.ingestion.text import normalise
from app.library.contents import Page
from tests.support.corpus import BOOKS


@dataclass(frozen=True)
class OutlineEntry:
    level: int  # 0 for chapters
    title: str
    first_page: int  # 1-based
    last_page: int  # inclusive: the page before the next entry of the same or a higher level


@cache
def book_pages(name: str) -> tuple[Page, ...]:
    document = pdfium.PdfDocument(str(BOOKS / name))
    try:
        pages = []
        for index in range(len(document)):
            text = document[index].get_textpage().get_text_range()
            pages.append(Page(number=index + 1, text=normalise(text)))
        return tuple(pages)
    finally:
        document.close()


@cache
def outline(name: str) -> tuple[OutlineEntry, ...]:
    document = pdfium.PdfDocument(str(BOOKS / name))
    try:
        page_count = len(document)
        marks = []
        for mark in document.get_toc():
            dest = mark.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None:
                marks.append((mark.level, mark.get_title().strip(), index + 1))
    finally:
        document.close()
    entries = []
    for position, (level, title, first) in enumerate(marks):
        following = (page for lvl, _, page in marks[position + 1 :] if lvl <= level)
        last = max(first, next(following, page_count + 1) - 1)
        entries.append(OutlineEntry(level=level, title=title, first_page=first, last_page=last))
    return tuple(entries)


def entry(name: str, title: str, *, level: int | None = None) -> OutlineEntry:
    """The first outline entry with this title (at this level, if given)."""
    for item in outline(name):
        if item.title == title and (level is None or item.level == level):
            return item
    raise LookupError(f"{name} has no outline entry {title!r}")


def pages_between(name: str, first: int, last: int) -> list[Page]:
    return [page for page in book_pages(name) if first <= page.number <= last]


def chapter_pages(name: str, title: str, *, level: int | None = None) -> list[Page]:
    item = entry(name, title, level=level)
    return pages_between(name, item.first_page, item.last_page)


def page_of(pages: Sequence[Page], number: int) -> Page:
    return next(page for page in pages if page.number == number)
