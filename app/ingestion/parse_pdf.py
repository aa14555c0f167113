"""Text of a PDF, page by page, in a child process:
`python -m app.ingestion.parse_pdf FILE MAX_PAGES MAX_PAGE_CHARS`.

Untrusted PDFs are opened here, not in the worker, so a decompression bomb or a hostile page can only
kill this process: the parent sets a memory limit and a wall-clock timeout (`app.ingestion.parsing`).

Output, one JSON object per line on stdout: `{"pages": N}`, then `{"page": i, "text": "..."}` for each
page (1-based), or a final `{"error": "<sentence for a student>", "kind": "..."}` with exit status 3.
"""

import json
import sys

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

EXIT_REFUSED = 3


def _refuse(kind: str, message: str) -> None:
    print(json.dumps({"error": message, "kind": kind}), flush=True)
    sys.exit(EXIT_REFUSED)


def main(path: str, max_pages: int, max_page_chars: int) -> None:
    try:
        document = pdfium.PdfDocument(path)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            _refuse("password", "This PDF is password-protected; remove the password and upload it again.")
        _refuse("damaged", "This PDF is damaged and cannot be read; try downloading or exporting it again.")
    page_count = len(document)
    if page_count == 0:
        _refuse("damaged", "This PDF has no pages.")
    if page_count > max_pages:
        _refuse("too_many_pages", f"This PDF has {page_count:,} pages; the limit is {max_pages:,}.")
    print(json.dumps({"pages": page_count}), flush=True)
    characters = 0
    for index in range(page_count):
        try:
            page = document[index]
            text = page.get_textpage().get_text_range()
        except pdfium.PdfiumError:
            text = ""  # one unreadable page does not lose the book
        if len(text) > max_page_chars:
            # Real pages hold a few thousand characters; far more is a text bomb (pages sharing one
            # huge content stream), refused before it leaves this process.
            _refuse(
                "too_much_text",
                f"Page {index + 1} of this PDF holds {len(text):,} characters of text; the limit is "
                f"{max_page_chars:,} a page.",
            )
        characters += len(text.strip())
        print(json.dumps({"page": index + 1, "text": text}), flush=True)
    if characters == 0:
        _refuse("no_text", "This PDF has no text layer (scanned pages); OCR is not available.")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
