"""Normalised page text: what full-text search indexes and what quotes are taken from."""

import re
import unicodedata

_SOFT_HYPHEN = "\u00ad"
# pdfium reports a hyphen it treats as soft (a word broken across lines) as U+FFFE, a noncharacter.
_PDFIUM_SOFT_HYPHEN = "\ufffe"
_LINE_END_HYPHEN = re.compile(r"(\w)-\n(?=[a-z])")  # "informa-\ntion" → "information"
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # font-encoding debris; keeps \t and \n


def normalise(text: str) -> str:
    """NFKC (ligatures such as 'ﬁ' become 'fi'), line-end hyphenation joined, whitespace tidied.

    Line breaks are kept: they are where the splitter prefers to cut.
    """
    text = unicodedata.normalize("NFKC", text).replace(_SOFT_HYPHEN, "").replace(_PDFIUM_SOFT_HYPHEN, "")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02\n", "-\n")
    text = _CONTROL.sub("", text)
    text = _LINE_END_HYPHEN.sub(r"\1", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()
