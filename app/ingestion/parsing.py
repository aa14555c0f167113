"""Runs the parser of a file's format (`parse_pdf`, or `parse_document` through unstructured) in a
child process with a memory limit and a wall-clock timeout, under the same text caps for every format.
The worker never imports unstructured itself: a hostile file can only take the child down."""

import asyncio
import json
import os
import resource
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.config import OcrOptions
from app.ingestion.parse_pdf import EXIT_REFUSED
from app.ingestion.text import normalise

ProgressCallback = Callable[[int, int], Awaitable[None]]
STREAM_LIMIT = 64 * 1024 * 1024  # one page of text per line; generous


class FileRefused(Exception):
    """A file that will never parse (password, damage, no text, too big): a sentence for the student."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Parsed:
    pages: list[tuple[int, str]]  # (unit number, normalised text): pages, slides, sections or chapters
    titles: dict[int, str] = field(default_factory=dict)  # unit number → its title, where units have one
    ocr_pages: int = 0  # pages read by OCR
    outline: list[dict[str, object]] = field(default_factory=list)  # a PDF's bookmarks: title, level, page


# unstructured and the libraries under it: no usage ping, no notice, no model hub.
CHILD_ENV = {
    "DO_NOT_TRACK": "1",
    "SCARF_NO_ANALYTICS": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
}


def _limit_memory(megabytes: int) -> Callable[[], None]:
    def apply() -> None:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


async def extract_pages(
    path: Path,
    *,
    max_pages: int,
    time_limit: float,
    memory_mb: int,
    on_progress: ProgressCallback,
    max_page_chars: int = 50_000,
    max_document_chars: int = 10_000_000,
    format: str = "pdf",
    ocr: OcrOptions | None = None,
    max_unpacked: int = 500 * 1024 * 1024,
    max_ratio: int = 200,
) -> Parsed:
    """(unit number, normalised text) for every page (slide, section, chapter), 1-based; `FileRefused`
    for a file that cannot be read or that holds more text than the caps allow (the child is stopped as
    soon as the sum passes). `ocr`: the OCR settings for scanned PDF pages, or None for none."""
    noun = "PDF" if format == "pdf" else "file"
    if format == "pdf":
        arguments = ["app.ingestion.parse_pdf", str(path), str(max_pages), str(max_page_chars)]
        if ocr:
            arguments.append(json.dumps(ocr))
    else:
        limits = {
            "max_units": max_pages,
            "max_page_chars": max_page_chars,
            "max_unpacked": max_unpacked,
            "max_ratio": max_ratio,
        }
        arguments = ["app.ingestion.parse_document", format, str(path), json.dumps(limits)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *arguments,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_limit_memory(memory_mb),
        limit=STREAM_LIMIT,
        env={**os.environ, **CHILD_ENV},
    )
    parsed = Parsed(pages=[])
    pages = parsed.pages
    page_count = characters = 0
    refusal: dict[str, str] | None = None
    try:
        async with asyncio.timeout(time_limit):
            assert process.stdout is not None
            while line := await process.stdout.readline():
                message = json.loads(line)
                if "pages" in message:
                    page_count = message["pages"]
                    await on_progress(0, page_count)
                elif "outline" in message:
                    parsed.outline = message["outline"]
                elif "page" in message:
                    characters += len(message["text"])
                    if characters > max_document_chars:
                        raise FileRefused(
                            "too_much_text",
                            f"This {noun} holds more than {max_document_chars:,} characters of text (the "
                            f"limit per file) by page {message['page']:,}; split it, or upload the part "
                            "you study.",
                        )
                    pages.append((message["page"], normalise(message["text"])))
                    if message.get("title"):
                        parsed.titles[message["page"]] = normalise(message["title"])
                    parsed.ocr_pages += bool(message.get("ocr"))
                    await on_progress(len(pages), page_count)
                elif "error" in message:
                    refusal = message
            returncode = await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise FileRefused(
            "too_slow",
            f"Reading this {noun} took over {time_limit:.0f} seconds; it may be damaged or unusually "
            "complex.",
        ) from None
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if returncode == EXIT_REFUSED and refusal:
        raise FileRefused(refusal["kind"], refusal["error"])
    if returncode != 0:
        raise FileRefused(
            "too_complex",
            f"This {noun} could not be read within the memory limit; it may be damaged or unusually complex.",
        )
    return parsed
