"""A document's chapters, worked out at ingestion from what parsing found.

A PDF's outline (bookmarks) gives them: the top level, or the level under a single root entry (a
book whose only top-level bookmark is its own title). Without an outline, a page that opens with
"Chapter N" (or "CHAPTER IV") starts one, as long as the numbers rise: a table of contents that lists
every chapter is not taken for one. An EPUB's chapters are its units. Slides, DOCX, Markdown, text and
HTML have none: chat and the study aids take the whole file.

Found on the shared books: five of six have an outline (think_python_2e 22 top-level entries,
discrete_math_levin 11, forallx_magnus 9, physics_art_of_modelling 9, meditations 12);
nlp_working_programmer has none and its pages open with "Chapter 1. Introduction" and so on.

Bookmarks of reference matter — the table of contents, the index, a list of symbols, figures or
tables, the bibliography — are not chapters: there is nothing in them to study or ask about
(discrete_math_levin listed "Contents", "Index" and "List of Symbols" among its chapters, each with
Ask and Flashcards buttons). Their pages belong to no chapter; the book's scope still holds them.
"""

import re
from collections.abc import Sequence
from dataclasses import replace

from app.library.contents import Chapter, Page
from app.study.sentences import prose_pages

HEADING_LINES = 3  # a chapter heading is among the first lines of its page
_CHAPTER = re.compile(r"^chapter\s*(\d{1,3}|[ivxlc]{1,7})\b[.:]?\s*(.*)$", re.IGNORECASE)
_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100}
TITLE = 200
# A heading line that stops mid-phrase goes on on the next line.
_UNFINISHED = re.compile(
    r"(?:\b(?:and|or|of|the|a|an|in|on|to|for|with|from|by|at|as)|[,:;–-])$", re.IGNORECASE
)
_REFERENCE_MATTER = re.compile(
    r"(table of )?contents|index|list of [\w ]+|bibliography|references|works cited", re.IGNORECASE
)


def _number(token: str) -> int:
    if token.isdigit():
        return int(token)
    total = 0
    values = [_ROMAN[c] for c in token.lower()]
    for value, following in zip(values, [*values[1:], 0], strict=True):
        total += -value if value < following else value
    return total


def _spans(starts: list[tuple[int, str]], page_count: int) -> list[Chapter]:
    """Chapters from (first page, title) pairs in page order: each runs to the page before the next."""
    chapters: list[Chapter] = []
    for index, (first, title) in enumerate(starts):
        following = starts[index + 1][0] if index + 1 < len(starts) else page_count + 1
        chapters.append(Chapter(len(chapters) + 1, title[:TITLE], first, max(first, following - 1)))
    return chapters


def from_outline(outline: Sequence[dict[str, object]], page_count: int) -> list[Chapter]:
    """The chapters an outline names; none for an empty one."""
    entries = [
        (int(str(entry["level"])), int(str(entry["page"])), str(entry["title"]))
        for entry in outline
        if 1 <= int(str(entry["page"])) <= page_count
    ]
    if not entries:
        return []
    top = min(level for level, _, _ in entries)
    level = top
    if sum(1 for entry_level, _, _ in entries if entry_level == top) == 1 and any(
        entry_level > top for entry_level, _, _ in entries
    ):
        level = top + 1  # one root (the book's title): its children are the chapters
    starts: list[tuple[int, str]] = []
    for _, page, title in sorted(
        (entry for entry in entries if entry[0] == level), key=lambda entry: entry[1]
    ):
        if starts and starts[-1][0] == page:
            continue  # two entries on one page: the first names the chapter
        starts.append((page, title))
    return _without_reference_matter(_spans(starts, page_count))


def _without_reference_matter(chapters: list[Chapter]) -> list[Chapter]:
    """The chapters that are not a contents page, an index or a list, numbered again from 1."""
    kept = [chapter for chapter in chapters if not _REFERENCE_MATTER.fullmatch(chapter.title.strip())]
    return [replace(chapter, number=number) for number, chapter in enumerate(kept, 1)]


def from_headings(pages: Sequence[tuple[int, str]]) -> list[Chapter]:
    """Chapters from pages that open with "Chapter N", numbers rising; none when fewer than two."""
    starts: list[tuple[int, str]] = []
    last = 0
    for number, text in pages:
        lines = [line for line in text.split("\n") if line.strip()]
        if sum(1 for line in lines if _CHAPTER.match(line)) > 2:
            continue  # a contents page lists many chapters
        for position, line in enumerate(lines[:HEADING_LINES]):
            match = _CHAPTER.match(line)
            if not match:
                continue
            chapter_number = _number(match.group(1))
            if chapter_number <= last:
                break
            title = match.group(2).strip(" .:")
            following = lines[position + 1].strip() if position + 1 < len(lines) else ""
            if not title:
                title = following
            elif _UNFINISHED.search(title) and following[:1].islower():
                title = f"{title} {following}"  # "Performance and" / "efficiency (proposed)"
            starts.append((number, f"Chapter {chapter_number}. {title}".strip(". ")))
            last = chapter_number
            break
    if len(starts) < 2:
        return []
    return _spans(starts, max(number for number, _ in pages))


PATH_DEPTH = 2  # chapter > section


def outline_paths(
    outline: Sequence[dict[str, object]], chapters: Sequence[Chapter], page_count: int
) -> dict[int, str]:
    """Where each page sits: "chapter > section" from the outline's top levels at that page, or the
    chapter's title (headings found in the text); pages before the first entry have none."""
    paths: dict[int, str] = {}
    if outline:
        top = min(int(str(entry["level"])) for entry in outline)
        current: list[str] = []
        by_page: dict[int, list[tuple[int, str]]] = {}
        for entry in outline:
            level = int(str(entry["level"])) - top
            if level < PATH_DEPTH:
                by_page.setdefault(int(str(entry["page"])), []).append((level, str(entry["title"])))
        for page in range(1, page_count + 1):
            for level, title in by_page.get(page, []):
                current = [*current[:level], title]
            if current:
                paths[page] = " > ".join(current)
        return paths
    for chapter in chapters:
        for page in range(chapter.first_page, chapter.last_page + 1):
            paths[page] = chapter.title
    return paths


def chapters_for(
    format: str,
    pages: Sequence[tuple[int, str]],
    outline: Sequence[dict[str, object]],
    titles: dict[int, str],
) -> list[Chapter]:
    """The chapters of a parsed document of `format` ("pdf", "epub", ...), each marked whether it has
    prose to study."""
    if format == "epub":
        chapters = _without_reference_matter(
            [
                Chapter(index + 1, titles.get(number) or f"Chapter {index + 1}", number, number)
                for index, (number, _) in enumerate(pages)
            ]
        )
    elif format != "pdf" or not pages:
        return []
    else:
        chapters = from_outline(outline, max(number for number, _ in pages))
        if len(chapters) < 2:
            chapters = from_headings(pages) or chapters
    return _marked_for_study(chapters, pages)


def _marked_for_study(chapters: list[Chapter], pages: Sequence[tuple[int, str]]) -> list[Chapter]:
    """Each chapter with `study` false when none of its pages is prose (Levin's "Solutions to
    Exercises", forallx's "Solutions to selected exercises": answer keys)."""
    units = [Page(number, text) for number, text in pages]
    return [
        replace(chapter, study=bool(prose_pages([unit for unit in units if chapter.holds(unit.number)])))
        for chapter in chapters
    ]
