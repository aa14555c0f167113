"""A chapter's prose, sentence by sentence, each sentence an exact span of its page's text.

PDF text comes with running heads, page numbers, code listings, tables and formulas between the
sentences. Study aids are built from prose only: a line that is a running head or a page number is
dropped, a short line ends a paragraph (or is a heading, a code line or a table row), and a sentence
is kept only when it reads like one (words, ending in a stop). Pages that are a table of contents, an
index, or an answer key are skipped whole.
"""

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from app.library.contents import Page

# A page whose heading is one of these lists terms or answers; it is not a chapter's prose.
_REFERENCE_HEADING = re.compile(
    r"^(?:\d+\s+|chapter\s+\w+\s+)?(?:index|general index|subject index|contents|table of contents|"
    r"brief contents|solutions?|answers?|hints? and (?:solutions|answers)|selected solutions|"
    r"bibliography|references|list of symbols|list of figures|list of tables)\b"
    r"(?:\s+(?:to|for|of)\b.*)?(?:\s+[\divxlc]+)?$",
    re.IGNORECASE,
)
_DOT_LEADER = re.compile(r"(?:\.\s?){4,}|…{2,}")
_ENDS_IN_NUMBERS = re.compile(r"(?:,\s*|\s)(?:\d+|[ivxlc]+)(?:[–-]\d+)?$")
_ENUMERATED = re.compile(r"^(?:\(?\d+[.)]|\([a-z]\)|[a-z]\))\s")
_PAGE_NUMBER = re.compile(r"^(?:\d{1,4}|[ivxlc]{1,6})$", re.IGNORECASE)
_HEAD_WITH_NUMBER = re.compile(r"^\d{1,4}\s+\S.{0,80}$|^\S.{0,80}\s\d{1,4}$")
_DIGITS = re.compile(r"\d+")
# Between sentences: a stop, optional closing quote or bracket, space, then a capital or opening quote.
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"”’)\]]?\s+(?=[\"“‘(\[]?[A-Z])|\s*[•▪●◦]\s*")
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|cf|vs|viz|al|fig|figs|eq|eqs|ch|sec|no|vol|pp|dr|mr|mrs|ms|st|prof)\.|"
    r"\b[A-Z]\.|\b\d+(?:\.\d+)+\.|^\s*\d+\.)$",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")
_CODE_MARK = re.compile(r"^(?:>>>|\.\.\.|\$ |#|//|def |class |import |from \S+ import|return\b)")
_SYMBOL = re.compile(r"[=<>{}\[\]()_#$%^*|\\~`;+]")
_SPACE = re.compile(r"\s")
_ALPHA = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")
# "1.1. What is a program?", "0.2 Sets", "Chapter 3": a heading, not part of the sentence before it
_HEADING = re.compile(r"^(?:\d+(?:\.\d+)*\.?|[A-Z]\.\d+(?:\.\d+)*\.?|chapter\s+\w+)\s+\S", re.IGNORECASE)
# "interpreter: A program that reads another program": a glossary or list entry opens its own paragraph
_ENTRY = re.compile(r"^([^\W\d][\w’'\- ]{0,40}):\s+\S")

# A symbol before a capitalised sentence: "U", "∅", "P(A)" (not "A", "I": words).
_LABEL = re.compile(r"(?![AI]\s)[^\sa-z]{1,4}\s+(?=[A-Z][a-z])")

MIN_WORDS = 5
MAX_WORDS = 70


@dataclass(frozen=True)
class Sentence:
    page: int
    start: int  # offsets in the page's text: `quote` is text[start:end]
    end: int
    quote: str  # exactly as on the page (line breaks kept)
    text: str  # whitespace folded, for reading

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Line:
    start: int
    end: int
    text: str


def lines_of(text: str) -> list[Line]:
    lines, start = [], 0
    for raw in text.split("\n"):
        end = start + len(raw)
        if raw.strip():
            lines.append(Line(start, end, raw.strip()))
        start = end + 1
    return lines


@lru_cache(maxsize=4096)
def is_reference_page(text: str) -> bool:
    """A table of contents, an index, an answer key, a bibliography: lists, not prose to learn from."""
    lines = [line.text for line in lines_of(text)]
    if not lines:
        return True
    if any(_REFERENCE_HEADING.match(line) for line in lines[:3]):
        return True
    if sum(1 for line in lines if _DOT_LEADER.search(line)) >= 3:
        return True
    short = [line for line in lines if len(line) <= 60]
    numbered_ends = sum(1 for line in short if _ENDS_IN_NUMBERS.search(line))
    if len(lines) >= 8 and numbered_ends >= 0.5 * len(lines):
        return True  # "adjacent, 169, 175" or "2.1 Basics 85": an index or a contents page
    enumerated_short = sum(1 for line in lines if _ENUMERATED.match(line) and len(line) <= 40)
    if len(lines) >= 8 and enumerated_short >= 0.4 * len(lines):
        return True  # "7. S2 → F2", "9. tautology": an answer key
    prose = sum(1 for line in lines if len(line) > 50 and len(_LETTER.findall(line)) > 0.75 * len(line))
    if prose >= 0.4 * len(lines):
        return False
    digits = len(_DIGIT.findall(text))
    letters = len(_LETTER.findall(text))
    average = sum(map(len, lines)) / len(lines)
    return len(lines) >= 8 and average < 25 and digits > 0.25 * letters


def _shape(line: str) -> str:
    return _DIGITS.sub("#", line.lower())


def running_heads(pages: Sequence[Page]) -> set[str]:
    """Shapes (digits as '#') of lines that open or close several pages: running heads and feet."""
    seen: Counter[str] = Counter()
    for page in pages:
        lines = lines_of(page.text)
        for line in {*(line.text for line in lines[:2]), *(line.text for line in lines[-2:])}:
            seen[_shape(line)] += 1
    threshold = max(3, len(pages) // 4)
    return {shape for shape, count in seen.items() if count >= threshold and len(shape) < 80}


def body_lines(page: Page, heads: set[str]) -> list[Line]:
    """The page's lines without its running head, page number and running foot."""
    lines = lines_of(page.text)

    def furniture(line: Line, edge: bool) -> bool:
        if _PAGE_NUMBER.match(line.text) or _shape(line.text) in heads:
            return True
        return edge and bool(_HEAD_WITH_NUMBER.match(line.text)) and not line.text.endswith((".", ":", "?"))

    while lines and furniture(lines[0], edge=True):
        lines.pop(0)
        if lines and not (_PAGE_NUMBER.match(lines[0].text) or _shape(lines[0].text) in heads):
            break
    while lines and furniture(lines[-1], edge=False):
        lines.pop()
    return lines


def _counts(text: str) -> tuple[int, int, int]:
    """(visible characters, letters, code symbols) of a text."""
    visible = len(text) - len(_SPACE.findall(text))
    return visible, len(_ALPHA.findall(text)), len(_SYMBOL.findall(text))


def is_code(line: str) -> bool:
    if _CODE_MARK.match(line):
        return True
    visible, letters, symbols = _counts(line)
    if not visible:
        return False
    return symbols >= 3 and symbols > 0.08 * visible or letters < 0.55 * visible


def paragraphs(lines: list[Line]) -> list[list[Line]]:
    """Runs of prose lines. A line much shorter than the page's usual one ends its paragraph (it is a
    paragraph's last line, a heading or a list item); a code line stands alone and is dropped."""
    if not lines:
        return []
    lengths = sorted(len(line.text) for line in lines)
    usual = lengths[int(len(lengths) * 0.75)]
    runs: list[list[Line]] = []
    current: list[Line] = []
    for line in lines:
        if is_code(line.text):
            if current:
                runs.append(current)
            current = []
            continue
        short = len(line.text) < 0.7 * usual
        if current and (_ENTRY.match(line.text) or short and _HEADING.match(line.text)):
            runs.append(current)
            current = []
        current.append(line)
        if short:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def readable(text: str) -> bool:
    """Whether a folded sentence reads as prose a student would want on a card."""
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return False
    if not re.match(r"^[\"“‘(]?[A-Z]", text) or not re.search(r"[.!?][\"”’)]?$", text):
        return False
    visible, letters, symbols = _counts(text)
    if letters < 0.78 * visible or symbols > 2:
        return False
    bare = (word.strip(".,;:!?()“”\"'") for word in words)
    short_tokens = sum(1 for word in bare if len(word) == 1 and word not in ("a", "A", "I"))
    return short_tokens <= max(2, len(words) // 5)  # "A B A & B", "x < A": notation, not prose


def _split(page: Page, start: int, end: int) -> list[tuple[int, int]]:
    text = page.text
    spans, cursor = [], start
    for match in _SENTENCE_BREAK.finditer(text, start, end):
        before = text[cursor : match.start()].rstrip('"”’)]')
        if _ABBREVIATION.search(before[-12:]):
            continue
        spans.append((cursor, match.start()))
        cursor = match.end()
        # the opening quote or bracket belongs to the next sentence: the match ends before it
    spans.append((cursor, end))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    while re.search(r"[.!?]\s+[.!?]$", text[start:end]):  # "… as a matter of logic. ." (a box's end)
        end -= 1
        while end > start and text[end - 1].isspace():
            end -= 1
    # a sentence ending in a closing quote keeps it
    if end < len(text) and text[end - 1] in ".!?" and text[end : end + 1] in ("”", '"', "’", ")"):
        end += 1
    return start, end


def page_sentences(page: Page, heads: set[str]) -> list[Sentence]:
    """The page's readable sentences, in order."""
    found = []
    for run in paragraphs(body_lines(page, heads)):
        for start, end in _split(page, run[0].start, run[-1].end):
            start, end = _trim(page.text, start, end)
            if label := _LABEL.match(page.text, start, end):
                start = label.end()  # "U The universe set is …": a table's symbol column
            quote = page.text[start:end]
            folded = " ".join(quote.split())
            if readable(folded):
                found.append(Sentence(page.number, start, end, quote, folded))
    return found


def prose_pages(pages: Sequence[Page]) -> list[Page]:
    """The pages that are not reference pages; a page between two of them counts as one too (an answer
    key's page of worked models, an index page of long entries)."""
    reference = [is_reference_page(page.text) for page in pages]
    return [
        page
        for index, page in enumerate(pages)
        if not reference[index]
        and not (0 < index < len(pages) - 1 and reference[index - 1] and reference[index + 1])
    ]


@lru_cache(maxsize=4)
def book_sentences(pages: tuple[Page, ...]) -> tuple[Sentence, ...]:
    """A whole book's sentences, kept for the next request on the same book."""
    return tuple(chapter_sentences(pages))


def chapter_sentences(pages: Sequence[Page]) -> list[Sentence]:
    prose = prose_pages(pages)
    heads = running_heads(pages)
    return [sentence for page in prose for sentence in page_sentences(page, heads)]
