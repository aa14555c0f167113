"""Slide decks, Word documents, EPUBs, Markdown, text and HTML made on the spot, with known units."""

import io
import zipfile

# Four units on distant topics, so a question about one finds that one.
TOPICS = [
    ("Course overview", "This lecture series introduces cell biology for first-year students of medicine."),
    (
        "Mitochondria",
        "Mitochondria produce most of the cell's ATP through oxidative phosphorylation on their inner "
        "membrane, which is folded into cristae.",
    ),
    (
        "Photosynthesis",
        "Chloroplasts capture light energy with chlorophyll and use it to turn carbon dioxide and water "
        "into glucose, releasing oxygen.",
    ),
    (
        "Ribosomes",
        "Ribosomes read messenger RNA and join amino acids into chains that fold into proteins.",
    ),
]
QUESTION = "How do chloroplasts use light to turn carbon dioxide and water into glucose?"
ANSWER_UNIT = 3  # Photosynthesis


def pptx_bytes(slides=TOPICS, *, empty_after: int | None = None) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    for number, (title, body) in enumerate(slides, start=1):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if number == empty_after:
            deck.slides.add_slide(deck.slide_layouts[6])  # a blank slide keeps its number
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def docx_bytes(sections=TOPICS) -> bytes:
    from docx import Document

    document = Document()
    for title, body in sections:
        document.add_heading(title, 1)
        document.add_paragraph(body)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def markdown_bytes(sections=TOPICS) -> bytes:
    return "\n\n".join(f"## {title}\n\n{body}" for title, body in sections).encode()


def text_bytes(sections=TOPICS) -> bytes:
    return "\n\n".join(f"{title.upper()}\n\n{body}" for title, body in sections).encode()


def html_bytes(sections=TOPICS, *, head: str = "", body_extra: str = "") -> bytes:
    parts = "".join(f"<h2>{title}</h2><p>{body}</p>" for title, body in sections)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Notes</title>{head}</head>"
        f"<body>{parts}{body_extra}</body></html>"
    ).encode()


def epub_bytes(
    chapters=TOPICS, *, cover: bool = True, extra_head: str = "", doctype: str = "", spine_extra: str = ""
) -> bytes:
    """An EPUB 3 of one XHTML file per chapter (and an image-only cover, which is no chapter)."""
    items, refs = [], []
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        book.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        files = []
        if cover:
            files.append(("cover", '<div><img src="cover.png" alt=""/></div>'))
        for number, (title, body) in enumerate(chapters, start=1):
            files.append((f"ch{number}", f"<h1>{title}</h1><p>{body}</p>"))
        for name, content in files:
            items.append(f'<item id="{name}" href="{name}.xhtml" media-type="application/xhtml+xml"/>')
            refs.append(f'<itemref idref="{name}"/>')
            book.writestr(
                f"OEBPS/{name}.xhtml",
                f'<?xml version="1.0" encoding="utf-8"?>{doctype}<html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{name}</title>{extra_head}</head><body>{content}</body></html>",
            )
        remote_ref = '<itemref idref="remote"/>' if spine_extra else ""
        book.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
            'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:title>Cells</dc:title><dc:identifier id="id">cells</dc:identifier>'
            f"<dc:language>en</dc:language></metadata><manifest>{''.join(items)}{spine_extra}</manifest>"
            f"<spine>{''.join(refs)}{remote_ref}</spine></package>",
        )
    return out.getvalue()


def with_entry(container: bytes, name: str, data: bytes) -> bytes:
    """`container` (a ZIP) with one more entry, deflated."""
    out = io.BytesIO(container)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def replaced_entry(container: bytes, name: str, data: bytes) -> bytes:
    """`container` with the entry `name` replaced by `data` (a damaged part, for instance)."""
    source = zipfile.ZipFile(io.BytesIO(container))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in source.infolist():
            archive.writestr(entry, data if entry.filename == name else source.read(entry.filename))
    return out.getvalue()
