"""Local embedder throughput on real book text: load time, then chunks/s by batch size and threads.

    .venv/bin/python bench/embed.py [--chunks 500] [--all]

Chunks are ~1,000 characters cut from the shared corpus (pypdfium2 text), sampled evenly across all
books. `--all` also embeds every chunk of the corpus once with the defaults.
"""

import argparse
import re
import sys
import time
from pathlib import Path

import pypdfium2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ingestion.embeddings import DEFAULT_BATCH_SIZE, LocalEmbedder  # noqa: E402

CORPUS = Path("/work/shared/corpus/books")
CHUNK_CHARS = 1000


def book_text(path: Path) -> str:
    pdf = pypdfium2.PdfDocument(path)
    try:
        return "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    finally:
        pdf.close()


def cut(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """~size-character pieces ending at a space (a stand-in for the real splitter)."""
    words = re.sub(r"\s+", " ", text).strip()
    pieces = []
    while words:
        end = len(words) if len(words) <= size else words.rfind(" ", 0, size) + 1 or size
        pieces.append(words[:end].strip())
        words = words[end:]
    return [p for p in pieces if len(p) > 200]


def corpus_chunks() -> list[str]:
    return [chunk for path in sorted(CORPUS.glob("*.pdf")) for chunk in cut(book_text(path))]


def timed_run(embedder: LocalEmbedder, texts: list[str], *, sort: bool) -> float:
    """Chunks per second. Without sorting, each call gets one batch in corpus order."""
    start = time.perf_counter()
    if sort:
        embedder.embed_documents(texts)
    else:
        for i in range(0, len(texts), embedder.batch_size):
            embedder.embed_documents(texts[i : i + embedder.batch_size])
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--all", action="store_true", help="also embed the whole corpus once")
    args = parser.parse_args()

    start = time.perf_counter()
    chunks = corpus_chunks()
    print(f"corpus: {len(chunks)} chunks of ~{CHUNK_CHARS} chars in {time.perf_counter() - start:.1f} s")
    sample = chunks[:: max(1, len(chunks) // args.chunks)][: args.chunks]

    for threads in (1, 2):
        start = time.perf_counter()
        LocalEmbedder(threads=threads).load()
        print(f"load (threads={threads}, first includes imports): {time.perf_counter() - start:.2f} s")

    from app.ingestion.embeddings import _onnx_model

    tokenizer = _onnx_model(1).tokenizer
    lengths = sorted(len(e.ids) for e in tokenizer.encode_batch(sample))
    truncated = sum(n >= 256 for n in lengths)
    print(
        f"sample: {len(sample)} chunks, tokens median {lengths[len(lengths) // 2]}, "
        f"max {lengths[-1]}, truncated at 256: {truncated} ({truncated / len(sample):.0%})"
    )
    LocalEmbedder(threads=2).embed_documents(sample[:16])  # warm-up

    print(f"\n| batch | threads | sorted chunks/s | unsorted chunks/s | est. corpus ({len(chunks)}) s |")
    print("|---:|---:|---:|---:|---:|")
    for batch_size in (8, 16, 32, 64):
        for threads in (1, 2):
            embedder = LocalEmbedder(batch_size=batch_size, threads=threads)
            rate = timed_run(embedder, sample, sort=True)
            unsorted = timed_run(embedder, sample, sort=False)
            print(
                f"| {batch_size} | {threads} | {rate:.1f} | {unsorted:.1f} | {len(chunks) / rate:.1f} |",
                flush=True,
            )

    if args.all:
        embedder = LocalEmbedder(batch_size=DEFAULT_BATCH_SIZE)
        start = time.perf_counter()
        embedder.embed_documents(chunks)
        elapsed = time.perf_counter() - start
        print(
            f"\nwhole corpus, defaults (batch {embedder.batch_size}, threads {embedder.threads}): "
            f"{len(chunks)} chunks in {elapsed:.1f} s = {len(chunks) / elapsed:.1f} chunks/s"
        )


if __name__ == "__main__":
    main()
