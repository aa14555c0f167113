"""The quote shown for a source: the passage's sentence that best matches the question, on one page."""

import re

from app.chat.retrieval import Passage

MAX_QUOTE = 300
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)


def _spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def quote_for(passage: Passage, question: str) -> tuple[str, int]:
    """(quote, page): text that really is on that page of the PDF, whitespace folded."""
    wanted = set(_WORD.findall(question.lower()))
    breaks = sorted(passage.page_breaks)
    best, best_score = (0, len(passage.text)), -1.0
    for start, end in _spans(passage.text):
        # Keep a sentence on one page: cut it at a page break, keeping the longer side.
        for cut in breaks:
            if start < cut < end:
                start, end = (start, cut) if cut - start >= end - cut else (cut, end)
        words = _WORD.findall(passage.text[start:end].lower())
        score = len(wanted.intersection(words)) + min(len(words), 30) / 1000
        if score > best_score:
            best, best_score = (start, end), score
    start, end = best
    quote = " ".join(passage.text[start:end].split())
    if len(quote) > MAX_QUOTE:
        quote = quote[:MAX_QUOTE].rsplit(" ", 1)[0]
    page = passage.page_start + sum(1 for cut in breaks if cut <= start)
    return quote, page
