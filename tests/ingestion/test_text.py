"""Text as pdfium gives it, made fit to quote: no invisible characters left in a passage."""

import unicodedata

import pypdfium2 as pdfium

from app.ingestion.text import normalise
from tests.support.corpus import BOOKS


def test_words_pdfium_breaks_with_a_soft_hyphen_are_joined():
    raw = (
        pdfium.PdfDocument(str(BOOKS / "meditations_marcus_aurelius.pdf"))[11].get_textpage().get_text_range()
    )
    assert "\ufffe" in raw  # how pdfium reports the hyphen of a word broken across lines
    text = normalise(raw)
    assert "ostentation" in text
    invisible = {c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cn", "Co") and c != "\n"}
    assert not invisible, [hex(ord(c)) for c in invisible]


def test_ligatures_soft_hyphens_and_line_end_hyphens():
    assert normalise("ﬁnd the ef\u00adfect of hy-\nphenation") == "find the effect of hyphenation"
