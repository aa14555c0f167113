"""A deck as an Anki package (`genanki`) or as CSV. Book and page travel in their own fields, with the
quote the card came from, so a card in Anki still says where in the book to look."""

import csv
import io
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import genanki  # type: ignore[import-untyped]

FIELDS = ("Front", "Back", "Book", "Page", "Quote")
# Fixed: Anki recognises the note type across exports (a new id each time would make a new type).
MODEL_ID = 1_764_201_117
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CARD_CSS = (
    ".card { font-family: sans-serif; font-size: 20px; text-align: left; }"
    " .source { color: #666; font-size: 14px; }"
)
_MODEL = genanki.Model(
    MODEL_ID,
    "StudyRAG card",
    fields=[{"name": name} for name in FIELDS],
    templates=[
        {
            "name": "Card 1",
            "qfmt": "{{Front}}",
            "afmt": '{{FrontSide}}<hr id="answer">{{Back}}'
            '<p class="source">{{Book}}, page {{Page}}<br><i>{{Quote}}</i></p>',
        }
    ],
    css=CARD_CSS,
)


@dataclass(frozen=True)
class ExportedCard:
    id: uuid.UUID
    front: str
    back: str
    book: str
    page: int
    quote: str


def _anki_id(deck_id: uuid.UUID) -> int:
    """A stable Anki deck id for the deck (Anki wants a positive 63-bit integer)."""
    return deck_id.int % (1 << 62) + 1


def apkg(deck_id: uuid.UUID, title: str, cards: list[ExportedCard]) -> bytes:
    """The deck as an .apkg file: one note per card, its guid from the card's id (re-importing the deck
    updates the notes instead of duplicating them)."""
    deck = genanki.Deck(_anki_id(deck_id), title)
    for card in cards:
        fields = [_html(card.front), _html(card.back), _html(card.book), str(card.page), _html(card.quote)]
        deck.add_note(genanki.Note(model=_MODEL, fields=fields, guid=genanki.guid_for(str(card.id))))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deck.apkg"
        genanki.Package(deck).write_to_file(str(path))
        return path.read_bytes()


def _html(text: str) -> str:
    """Anki fields are HTML: the book's text is shown as text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")


def _cell(text: str) -> str:
    """Text a spreadsheet would read as a formula (=, +, -, @ first) is kept as text, with a quote mark."""
    return "'" + text if text[:1] in FORMULA_STARTS else text


def csv_text(cards: list[ExportedCard]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([name.lower() for name in FIELDS])
    for card in cards:
        writer.writerow([_cell(card.front), _cell(card.back), _cell(card.book), card.page, _cell(card.quote)])
    return out.getvalue()
