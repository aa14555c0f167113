"""Runs `parse_pdf` in a child process with a memory limit and a wall-clock timeout."""

import asyncio
import json
import resource
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from app.ingestion.parse_pdf import EXIT_REFUSED
from app.ingestion.text import normalise

ProgressCallback = Callable[[int, int], Awaitable[None]]
STREAM_LIMIT = 64 * 1024 * 1024  # one page of text per line; generous


class PdfRefused(Exception):
    """A PDF that will never parse (password, damage, no text, too big): a sentence for the student."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


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
) -> list[tuple[int, str]]:
    """(page number, normalised text) for every page, 1-based; `PdfRefused` for a file that cannot be read
    or that holds more text than the caps allow (the child is stopped as soon as the sum passes)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.ingestion.parse_pdf",
        str(path),
        str(max_pages),
        str(max_page_chars),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=_limit_memory(memory_mb),
        limit=STREAM_LIMIT,
    )
    pages: list[tuple[int, str]] = []
    page_count = characters = 0
    refusal: dict | None = None
    try:
        async with asyncio.timeout(time_limit):
            assert process.stdout is not None
            while line := await process.stdout.readline():
                message = json.loads(line)
                if "pages" in message:
                    page_count = message["pages"]
                    await on_progress(0, page_count)
                elif "page" in message:
                    characters += len(message["text"])
                    if characters > max_document_chars:
                        raise PdfRefused(
                            "too_much_text",
                            f"This PDF holds more than {max_document_chars:,} characters of text (the "
                            f"limit per file) by page {message['page']:,}; split it, or upload the part "
                            "you study.",
                        )
                    pages.append((message["page"], normalise(message["text"])))
                    await on_progress(len(pages), page_count)
                elif "error" in message:
                    refusal = message
            returncode = await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PdfRefused(
            "too_slow",
            f"Reading this PDF took over {time_limit:.0f} seconds; it may be damaged or unusually complex.",
        ) from None
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if returncode == EXIT_REFUSED and refusal:
        raise PdfRefused(refusal["kind"], refusal["error"])
    if returncode != 0:
        raise PdfRefused(
            "too_complex",
            "This PDF could not be read within the memory limit; it may be damaged or unusually complex.",
        )
    return pages
