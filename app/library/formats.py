"""The file formats StudyRAG reads, told apart by what a file holds, never by its name.

A file's extension must agree with its content: a PNG renamed `.docx`, or a PDF renamed `.pptx`, is
refused with a sentence saying what it really is. Office files and EPUBs are ZIP containers; their
central directory is read (never unpacked) to recognise them and to refuse zip bombs by the sizes
it declares, which Python's zipfile also holds a reader to when it unpacks an entry.
"""

import codecs
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

PDF_SIGNATURE = b"%PDF-"
SIGNATURE_WINDOW = 1024  # the PDF header may follow a little junk; readers look this far
MAX_ZIP_ENTRIES = 10_000
RATIO_FLOOR_BYTES = 1024 * 1024  # entries smaller than this unpacked may compress as well as they like


@dataclass(frozen=True)
class Format:
    name: str  # the value of documents.format
    label: str  # in sentences: "a PowerPoint presentation"
    extensions: tuple[str, ...]  # the first one is given to a file whose name has none of them
    unit: str  # what a citation counts: page, slide, section or chapter
    media_type: str


PDF = Format("pdf", "a PDF", (".pdf",), "page", "application/pdf")
PPTX = Format(
    "pptx",
    "a PowerPoint presentation (.pptx)",
    (".pptx",),
    "slide",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)
DOCX = Format(
    "docx",
    "a Word document (.docx)",
    (".docx",),
    "section",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
EPUB = Format("epub", "an EPUB e-book", (".epub",), "chapter", "application/epub+zip")
MARKDOWN = Format("md", "a Markdown file", (".md", ".markdown"), "section", "text/markdown")
TEXT = Format("txt", "a text file", (".txt",), "section", "text/plain")
HTML = Format("html", "an HTML page", (".html", ".htm"), "section", "text/html")
ALL = (PDF, PPTX, DOCX, EPUB, MARKDOWN, TEXT, HTML)
FORMATS = tuple(f.name for f in ALL)
BY_NAME = {f.name: f for f in ALL}
BY_EXTENSION = {extension: f for f in ALL for extension in f.extensions}
ACCEPTED = "PDF, PowerPoint (.pptx), Word (.docx), EPUB, Markdown, text and HTML files"

# What a refused file holds, by its first bytes, for the sentence that refuses it.
_KNOWN_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.doc/.ppt/.xls); save it as .docx or .pptx"),
    (b"{\\rtf", "an RTF document; save it as .docx"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a program"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body")


class FormatRefused(Exception):
    """A file StudyRAG will not take: `code` for the API, the message for the student."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def format_for_name(name: str) -> Format | None:
    dot = name.rfind(".")
    return BY_EXTENSION.get(name[dot:].lower()) if dot > 0 else None


def _zip_format(source: BinaryIO, *, max_unpacked: int, max_ratio: int) -> Format | str:
    """PPTX, DOCX or EPUB by the entries a ZIP holds; a description of it otherwise. Refuses bombs."""
    try:
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise FormatRefused(
                    "unpacks_too_large",
                    f"This file packs {len(entries):,} parts; the limit is {MAX_ZIP_ENTRIES:,}.",
                )
            unpacked = 0
            for entry in entries:
                unpacked += entry.file_size
                ratio = entry.file_size / max(entry.compress_size, 1)
                if entry.file_size > RATIO_FLOOR_BYTES and ratio > max_ratio:
                    raise FormatRefused(
                        "unpacks_too_large",
                        f"This file is a zip bomb or close to one: a part of it unpacks {ratio:,.0f} times "
                        f"larger than it is stored (the limit is {max_ratio:,}).",
                    )
            if unpacked > max_unpacked:
                raise FormatRefused(
                    "unpacks_too_large",
                    f"This file unpacks to {unpacked / 1024 / 1024:,.0f} MB; the limit is "
                    f"{max_unpacked / 1024 / 1024:,.0f} MB.",
                )
            names = {entry.filename for entry in entries}
            if "mimetype" in names and archive.read("mimetype").strip() == b"application/epub+zip":
                return EPUB
            if "[Content_Types].xml" in names:
                if "ppt/presentation.xml" in names:
                    return PPTX
                if "word/document.xml" in names:
                    return DOCX
                return "an Office file StudyRAG does not read (only .docx and .pptx)"
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError):
        return "a damaged ZIP archive"
    return "a ZIP archive"


def _text_kind(source: BinaryIO, head: bytes) -> Format | str:
    """TEXT or HTML when the whole file is UTF-8 (or UTF-16 with a byte-order mark) text."""
    encoding = "utf-16" if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    decoder = codecs.getincrementaldecoder(encoding)()
    source.seek(0)
    try:
        while chunk := source.read(1024 * 1024):
            text = decoder.decode(chunk)
            if "\x00" in text:
                return "a binary file"
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "not UTF-8 text (save it as UTF-8 and upload it again)"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if encoding == "utf-8-sig" and any(marker in start[:SIGNATURE_WINDOW] for marker in _HTML_MARKERS):
        return HTML
    return TEXT


def detect(source: BinaryIO, head: bytes, *, max_unpacked: int, max_ratio: int) -> Format | str:
    """The format `source` holds, or a few words saying what it is instead. May raise FormatRefused."""
    if PDF_SIGNATURE in head:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        source.seek(0)
        try:
            return _zip_format(source, max_unpacked=max_unpacked, max_ratio=max_ratio)
        finally:
            source.seek(0)
    for signature, description in _KNOWN_SIGNATURES:
        if head.startswith(signature):
            return description
    try:
        return _text_kind(source, head)
    finally:
        source.seek(0)


def check_format(
    source: BinaryIO, head: bytes, name: str, *, max_unpacked: int, max_ratio: int
) -> tuple[Format, str]:
    """(format, final file name) of an upload or a stored object; FormatRefused when the content is
    not one StudyRAG reads or does not match the name's extension."""
    claimed = format_for_name(name)
    if claimed is PDF and PDF_SIGNATURE not in head:
        raise FormatRefused("not_pdf", "This is not a PDF file (it lacks the %PDF- signature).")
    found = detect(source, head, max_unpacked=max_unpacked, max_ratio=max_ratio)
    if isinstance(found, str):
        raise FormatRefused("unsupported", f"This file is {found}, not a file StudyRAG reads ({ACCEPTED}).")
    if claimed is None:
        return found, name + found.extensions[0]
    text_like = found in (TEXT, HTML) and claimed in (TEXT, MARKDOWN)  # notes may hold some HTML
    if claimed is not found and not text_like:
        raise FormatRefused(
            "wrong_type",
            f"This file is named {name[name.rfind('.') :]} but holds {found.label}; StudyRAG goes by what "
            "a file holds, not by its name. Give it its right extension.",
        )
    return claimed, name


def unit_of(format: str) -> str:
    """What a file of this format counts: "page", "slide", "section" or "chapter"."""
    return BY_NAME.get(format, PDF).unit


def cite(format: str, number: int, title: str = "") -> str:
    """Where a source is, in its format's unit: "p. 12", "slide 3", "section 2 “Methods”",
    "chapter 4 “The Thaw”"."""
    fmt = BY_NAME.get(format, PDF)
    if fmt is PDF:
        return f"p. {number}"
    where = f"{fmt.unit} {number}"
    if fmt is PPTX or not title:
        return where
    short = title if len(title) <= 60 else title[:59].rstrip() + "…"
    return f"{where} “{short}”"
