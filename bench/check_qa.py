"""Sanity-check the question sets (bench/qa_dev.jsonl, bench/qa_test.jsonl) against the shared corpus.

    .venv/bin/python bench/check_qa.py [path/to/set.jsonl ...]   (default: every bench/qa_*.jsonl)

For each answerable line: the book must exist, every listed page (1-based physical PDF page) must
exist, and at least one of a few distinctive keywords of the answer must occur, case-insensitively,
in the text of the listed pages. Keywords are the answer's words (4+ letters, no stopwords) that occur
somewhere in the book on the fewest pages. Unanswerable lines must have book null, pages [] and
answer "". A line may name the books it is asked of in "scope_books" (file names); a scope question
("scope": true) must, and its book must be one of them. An unanswerable line may name the book it is a
hard negative for in "near_book" (close to that book's content, but not in it). Prints one line per
entry and a summary per file; exits 1 if anything is suspicious.
"""

import json
import re
import sys
import unicodedata
from pathlib import Path

import pypdfium2 as pdfium

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.corpus import BOOKS  # noqa: E402

N_KEYWORDS = 5
STOPWORD_TEXT = """
    about after also because before being between both could does each either every from have into itself
    just many more most must only other same should since some such than that their them then there these
    they this those through under until what when where whereas which while whether with without would your
"""
STOPWORDS = frozenset(STOPWORD_TEXT.split())


def normalize(text: str) -> str:
    """NFKC, join words split by a soft hyphen at a line break, lowercase, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub("[\ufffe\u00ad]\\s*", "", text)
    return " ".join(text.lower().split())


def answer_words(answer: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", normalize(answer)) if len(w) >= 4 and w not in STOPWORDS}


class Library:
    """Reads each book once and caches its normalized page texts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.books: dict[str, list[str]] = {}

    def pages(self, book: str) -> list[str]:
        if book not in self.books:
            doc = pdfium.PdfDocument(self.folder / book)
            self.books[book] = [normalize(page.get_textpage().get_text_range()) for page in doc]
            doc.close()
        return self.books[book]

    def keywords(self, book: str, answer: str) -> list[str]:
        """The answer words found in the book on the fewest pages (the most distinctive ones)."""
        counts = {w: sum(w in text for text in self.pages(book)) for w in answer_words(answer)}
        found = [w for w, n in counts.items() if n > 0]
        return sorted(found, key=lambda w: (counts[w], w))[:N_KEYWORDS]


def check_entry(entry: dict, library: Library) -> tuple[bool, str]:
    """Return (ok, message) for one line of the QA file."""
    book, pages, answer = entry.get("book"), entry.get("pages"), entry.get("answer")
    if not isinstance(entry.get("question"), str) or not isinstance(pages, list):
        return False, "bad schema"
    scope_books = entry.get("scope_books")
    if scope_books is not None:
        if not isinstance(scope_books, list) or not scope_books:
            return False, "scope_books must be a non-empty list of file names"
        if unknown := [name for name in scope_books if not (library.folder / str(name)).is_file()]:
            return False, f"unknown scope book(s) {unknown}"
        if book is not None and book not in scope_books:
            return False, f"{book} is not among its scope_books {scope_books}"
    if entry.get("scope") and (book is None or not scope_books):
        return False, "a scope question needs a book and scope_books"
    near = entry.get("near_book")
    if near is not None and (book is not None or not (library.folder / str(near)).is_file()):
        return False, "near_book names an existing book, on an unanswerable line only"
    if book is None:
        ok = pages == [] and answer == ""
        return ok, "unanswerable" if ok else "unanswerable entry must have pages [] and answer ''"
    if not (library.folder / book).is_file():
        return False, f"unknown book {book}"
    if not pages or len(pages) > 3 or not answer:
        return False, f"{book} {pages}: needs 1-3 pages and an answer"
    book_pages = library.pages(book)
    if any(not isinstance(p, int) or not 1 <= p <= len(book_pages) for p in pages):
        return False, f"{book} {pages}: page out of range 1..{len(book_pages)}"
    text = " ".join(book_pages[p - 1] for p in pages)
    keys = library.keywords(book, answer)
    hits = [k for k in keys if k in text]
    missing = [k for k in keys if k not in text]
    message = f"{book} {pages}: {len(hits)}/{len(keys)} keywords found {hits}"
    if missing:
        message += f", missing {missing}"
    return bool(hits), message


def main() -> int:
    paths = [Path(arg) for arg in sys.argv[1:]] or sorted((ROOT / "bench").glob("qa_*.jsonl"))
    library = Library(BOOKS)
    return max(check_file(path, library) for path in paths)


def check_file(qa_path: Path, library: Library) -> int:
    print(f"{qa_path.name}:")
    n_ok = n_bad = n_unanswerable = 0
    for number, line in enumerate(qa_path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        entry = json.loads(line)
        ok, message = check_entry(entry, library)
        n_unanswerable += entry.get("book") is None
        n_ok += ok
        n_bad += not ok
        print(f"{'ok ' if ok else 'SUSPICIOUS'} line {number}: {message}")
    print(f"{n_ok} ok / {n_bad} suspicious ({n_unanswerable} unanswerable, {n_ok + n_bad} lines)")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
