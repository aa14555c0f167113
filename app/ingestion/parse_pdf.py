"""Text of a PDF, page by page, in a child process:
`python -m app.ingestion.parse_pdf FILE MAX_PAGES MAX_PAGE_CHARS [OCR_JSON]`.

Untrusted PDFs are opened here, not in the worker, so a decompression bomb or a hostile page can only
kill this process: the parent sets a memory limit and a wall-clock timeout (`app.ingestion.parsing`).

Pages without a text layer (scanned) are recognised by Tesseract when OCR_JSON is given
(`{"languages", "max_pages", "dpi", "max_pixels", "workers", "batch_pages"}`): each is rendered in
greyscale at `dpi`, or smaller when that would pass `max_pixels` (a page the size of a wall, or a
35,000-pixel image on one page, stays a bitmap of at most that many bytes), and read by `tesseract`
with its LSTM engine on one thread, `workers` processes at once, each given up to `batch_pages`
consecutive pages as one uncompressed multi-page TIFF on stdin (the process's start, ~0.2 s of a
core, paid once a batch). Measured on `scanned_image_only.pdf` (2 cores): 300 dpi colour with
Tesseract's default threads took 5.7 s for the page; 200 dpi greyscale, `--oem 1`, one thread 0.56 s
with the same text (README, "Scanned pages").

Output, one JSON object per line on stdout: `{"pages": N}`, then `{"outline": [{"title", "level",
"page"}]}` (the bookmarks, 1-based pages, at most OUTLINE_ENTRIES of them, only when the PDF has any),
then `{"page": i, "text": "..."}` for each page (1-based, with `"ocr": true` when recognised), or a
final `{"error": "<sentence for a student>", "kind": "..."}` with exit status 3.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple, NoReturn

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

if TYPE_CHECKING:  # the child does not import the settings
    from app.config import OcrOptions

EXIT_REFUSED = 3
OCR_PAGE_SECONDS = 60  # a page (or a batch, then read again page by page) not read in this long: unread
OUTLINE_ENTRIES = 2000  # bookmarks read at most (a real book has a few hundred)
OUTLINE_DEPTH = 4
OUTLINE_TITLE = 200  # characters of a bookmark's title kept
NO_TEXT = "This PDF has no text layer (scanned pages); OCR is not available."


def refuse(kind: str, message: str) -> NoReturn:
    print(json.dumps({"error": message, "kind": kind}), flush=True)
    sys.exit(EXIT_REFUSED)


def _text(document: pdfium.PdfDocument, index: int) -> str:
    try:
        text: str = document[index].get_textpage().get_text_range()
        return text
    except pdfium.PdfiumError:
        return ""  # one unreadable page does not lose the book


def outline(document: pdfium.PdfDocument) -> list[dict[str, object]]:
    """The bookmarks that point at a page of this document, in outline order: title, depth (0 for the
    top level) and 1-based page. pypdfium2 stops at circular references; depth and count are capped."""
    entries: list[dict[str, object]] = []
    page_count = len(document)
    try:
        for bookmark in document.get_toc(max_depth=OUTLINE_DEPTH):
            if len(entries) >= OUTLINE_ENTRIES:
                break
            destination = bookmark.get_dest()
            index = destination.get_index() if destination is not None else None
            title = " ".join((bookmark.get_title() or "").split())[:OUTLINE_TITLE]
            if index is None or not 0 <= index < page_count or not title:
                continue  # a link elsewhere (a URL, another file) or an empty entry
            entries.append({"title": title, "level": bookmark.level, "page": index + 1})
    except pdfium.PdfiumError:
        return entries  # a damaged outline loses the chapters, never the book
    return entries


def render_scale(width: float, height: float, *, dpi: int, max_pixels: int) -> float:
    """Points to pixels at `dpi`, shrunk so the bitmap holds at most `max_pixels`."""
    scale = dpi / 72
    area = max(width, 1.0) * max(height, 1.0)
    if area * scale * scale > max_pixels:
        scale = math.sqrt(max_pixels / area)
    return scale


class Bitmap(NamedTuple):
    """One rendered page: 8-bit greyscale pixels, `rows` lines of `columns` bytes."""

    columns: int
    rows: int
    pixels: bytes


def page_image(document: pdfium.PdfDocument, index: int, *, dpi: int, max_pixels: int) -> Bitmap:
    """The page rendered in greyscale."""
    page = document[index]
    width, height = page.get_size()
    bitmap = page.render(scale=render_scale(width, height, dpi=dpi, max_pixels=max_pixels), grayscale=True)
    columns, rows, stride = bitmap.width, bitmap.height, bitmap.stride
    buffer = memoryview(bitmap.buffer)
    pixels = b"".join(buffer[row * stride : row * stride + columns] for row in range(rows))
    return Bitmap(columns, rows, pixels)


def tiff(pages: list[Bitmap]) -> bytes:
    """The pages as one uncompressed multi-page TIFF (little-endian, 8-bit greyscale), which Tesseract
    reads from stdin in one process, one page after another."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4  # where the offset of the next page's directory goes
    for columns, rows, pixels in pages:
        strip = len(out)
        out += pixels
        if len(out) % 2:
            out += b"\x00"  # directories start on a word boundary
        struct.pack_into("<I", out, link, len(out))
        # (tag, type: 3 SHORT or 4 LONG, value): width, length, 8 bits, uncompressed, black is zero,
        # strip offset, 1 sample a pixel, the page in one strip, its bytes.
        entries = [(256, 4, columns), (257, 4, rows), (258, 3, 8), (259, 3, 1), (262, 3, 1)]
        entries += [(273, 4, strip), (277, 3, 1), (278, 4, rows), (279, 4, len(pixels))]
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHII", tag, kind, 1, value)
        link = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def _tesseract(image: bytes, *, languages: str) -> str | None:
    try:
        done = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", languages, "--oem", "1", "--psm", "3"],
            input=image,
            capture_output=True,
            timeout=OCR_PAGE_SECONDS,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        return None
    return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None


def recognise(pages: list[Bitmap], *, languages: str) -> list[str]:
    """Tesseract's text of each page, read by one process (its start, ~0.2 s of a core, paid once);
    "" for a page that it fails on or cannot finish in OCR_PAGE_SECONDS. A batch that fails is read
    again page by page, so such a page loses only itself."""
    text = _tesseract(tiff(pages), languages=languages)
    texts = text.split("\f") if text is not None else []  # Tesseract puts a form feed between pages
    if len(texts) == len(pages):
        return texts
    if len(pages) == 1:
        return [""]
    return [recognise([page], languages=languages)[0] for page in pages]


def batch_size(scanned: int, *, workers: int, batch_pages: int) -> int:
    """Pages a Tesseract reads at once: `batch_pages`, fewer when that would leave a worker idle."""
    return max(1, min(batch_pages, math.ceil(scanned / workers)))


def main(path: str, max_pages: int, max_page_chars: int, ocr: "OcrOptions | None" = None) -> None:
    from app.ingestion.sandbox import lock_down

    lock_down(programs=("tesseract",))
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            refuse("password", "This PDF is password-protected; remove the password and upload it again.")
        refuse("damaged", "This PDF is damaged and cannot be read; try downloading or exporting it again.")
    page_count = len(document)
    if page_count == 0:
        refuse("damaged", "This PDF has no pages.")
    if page_count > max_pages:
        refuse("too_many_pages", f"This PDF has {page_count:,} pages; the limit is {max_pages:,}.")
    if ocr and shutil.which("tesseract") is None:
        ocr = None  # not installed here: scanned pages stay without text, as with OCR off
    scanned: set[int] = set()
    if ocr:
        scanned = {index for index in range(page_count) if not _text(document, index).strip()}
        if len(scanned) > ocr["max_pages"]:
            refuse(
                "too_many_scanned_pages",
                f"This PDF has {len(scanned):,} scanned pages (no text layer); OCR reads at most "
                f"{ocr['max_pages']:,} a file. Split it, or upload the part you study.",
            )
    print(json.dumps({"pages": page_count}), flush=True)
    if bookmarks := outline(document):
        print(json.dumps({"outline": bookmarks}), flush=True)
    characters = 0
    # Pages leave in order; scanned ones are rendered here (pdfium is not thread-safe), gathered into
    # batches of consecutive scanned pages and read by `workers` Tesseract processes at once, a batch
    # each, while the next pages are rendered.
    workers = max(1, ocr["workers"]) if ocr else 1
    batch = batch_size(len(scanned), workers=workers, batch_pages=ocr["batch_pages"]) if ocr else 1
    waiting: deque[tuple[int, str | tuple[Future[list[str]], int]]] = deque()
    pending: list[tuple[int, Bitmap]] = []  # scanned pages rendered, their batch not yet started
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def submit() -> None:
            if pending:
                read = pool.submit(recognise, [image for _, image in pending], languages=languages)
                waiting.extend((index, (read, position)) for position, (index, _) in enumerate(pending))
                pending.clear()

        def emit(index: int, page: str | tuple[Future[list[str]], int]) -> None:
            nonlocal characters
            recognised = not isinstance(page, str)
            text = page if isinstance(page, str) else page[0].result()[page[1]]
            if len(text) > max_page_chars:
                # Real pages hold a few thousand characters; far more is a text bomb (pages sharing one
                # huge content stream), refused before it leaves this process.
                refuse(
                    "too_much_text",
                    f"Page {index + 1} of this PDF holds {len(text):,} characters of text; the limit is "
                    f"{max_page_chars:,} a page.",
                )
            characters += len(text.strip())
            message: dict[str, object] = {"page": index + 1, "text": text}
            if recognised:
                message["ocr"] = True
            print(json.dumps(message), flush=True)

        languages = ocr["languages"] if ocr else ""
        unread = len(scanned)
        for index in range(page_count):
            if ocr and index in scanned:
                pending.append(
                    (index, page_image(document, index, dpi=ocr["dpi"], max_pixels=ocr["max_pixels"]))
                )
                unread -= 1
                if len(pending) >= batch or unread == 0:
                    submit()
            else:
                submit()  # a batch holds consecutive pages only
                waiting.append((index, _text(document, index)))
            while waiting and (
                isinstance(waiting[0][1], str) or waiting[0][1][0].done() or len(waiting) > workers * batch
            ):
                emit(*waiting.popleft())
        submit()
        while waiting:
            emit(*waiting.popleft())
    if characters == 0:
        if scanned:
            refuse("no_text", "This PDF has no text layer (scanned pages), and OCR found no text on them.")
        refuse("no_text", NO_TEXT)


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        json.loads(sys.argv[4]) if len(sys.argv) > 4 else None,
    )
