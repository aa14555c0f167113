"""What a document holds once it is read: its units' text and its chapters.

`Page` is one cited unit's text (a PDF page, a slide, a section, an EPUB chapter), numbered from 1
like every citation. `Chapter` is a span of units with a title: from a PDF's outline (bookmarks), or
from headings found in the text when there is none. Both are stored on the document at ingestion
(`documents.units`, `documents.chapters`) and read by chat's chapter scope and by the study aids.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, the unit a citation names
    text: str


@dataclass(frozen=True)
class Chapter:
    number: int  # 1-based, in reading order
    title: str
    first_page: int
    last_page: int  # inclusive
    # Some of its pages are prose to learn from: false for an answer key, an index or a list of symbols,
    # of which flashcards, a quiz or a guide would hold nothing (the library offers none for it).
    study: bool = True

    def holds(self, page: int) -> bool:
        return self.first_page <= page <= self.last_page
