"""Local embedder throughput on real book text: load time, then chunks/s by batch size and threads.

    .venv/bin/python bench/embed.py [--chunks 500] [--runs 2] [--all]

Chunks are ~1,000 characters cut from the shared corpus (pypdfium2 text), sampled evenly across all
books. Each figure is the best of --runs passes: on a shared machine the best is the least disturbed.
`--all` also embeds every chunk of the corpus once with the defaults.
"""

import argparse
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pypdfium2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ingestion import embeddings  # noqa: E402
from app.ingestion.embeddings import LocalEmbedder  # noqa: E402
from tests.support.corpus import BOOKS as CORPUS  # noqa: E402

CHUNK_CHARS = 1000
CORPUS_GOAL = 3500  # chunks in the product goal: the whole corpus in well under 45 s


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


def best_rate(embed: Callable[[], object], count: int, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        embed()
        best = min(best, time.perf_counter() - start)
    return count / best


def in_corpus_order(embedder: LocalEmbedder, texts: list[str]) -> None:
    """Batches as they come, without sorting by length (each call is one batch)."""
    for i in range(0, len(texts), embedder.batch_size):
        embedder.embed_documents(texts[i : i + embedder.batch_size])


def as_exported(threads: int, batch_size: int, texts: list[str]) -> Callable[[], object]:
    """The model graph as shipped, NaN guards included, batched like the embedder."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    exported = embeddings._verified_model_bytes(embeddings._model_file())
    session = ort.InferenceSession(exported, options, providers=["CPUExecutionProvider"])
    loaded = embeddings._onnx_model(threads)
    model = embeddings._OnnxModel(session, loaded.tokenizer, loaded.input_names)
    ids = sorted((e.ids for e in model.tokenizer.encode_batch(texts)), key=len)
    return lambda: [embeddings._run(model, ids[i : i + batch_size]) for i in range(0, len(ids), batch_size)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--all", action="store_true", help="also embed the whole corpus once")
    args = parser.parse_args()
    print(f"cpus: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")

    start = time.perf_counter()
    chunks = corpus_chunks()
    print(f"corpus: {len(chunks)} chunks of ~{CHUNK_CHARS} chars in {time.perf_counter() - start:.1f} s")
    sample = chunks[:: max(1, len(chunks) // args.chunks)][: args.chunks]

    for threads in (1, 2):
        start = time.perf_counter()
        LocalEmbedder(threads=threads).load()
        print(f"load (threads={threads}, the first includes imports): {time.perf_counter() - start:.2f} s")

    tokenizer = embeddings._onnx_model(1).tokenizer
    lengths = sorted(len(e.ids) for e in tokenizer.encode_batch(sample))
    cut_off = sum(n >= embeddings.MAX_TOKENS for n in lengths)
    print(
        f"sample: {len(sample)} chunks, tokens median {lengths[len(lengths) // 2]}, "
        f"cut at {embeddings.MAX_TOKENS}: {cut_off} ({cut_off / len(sample):.0%})"
    )
    LocalEmbedder(threads=2).embed_documents(sample[:16])  # warm-up

    # Rounds over every setting, best per setting: a busy spell then spoils one pass, not one row.
    grid = [(batch_size, threads) for batch_size in (8, 16, 32, 64) for threads in (1, 2)]
    rates = dict.fromkeys(grid, 0.0)
    for _ in range(args.runs):
        for batch_size, threads in grid:
            embedder = LocalEmbedder(batch_size=batch_size, threads=threads)
            rate = best_rate(lambda e=embedder: e.embed_documents(sample), len(sample), 1)
            rates[batch_size, threads] = max(rates[batch_size, threads], rate)
    print(f"\n| batch | threads | chunks/s | {CORPUS_GOAL} chunks | {len(chunks)} chunks (this corpus) |")
    print("|---:|---:|---:|---:|---:|")
    for (batch_size, threads), rate in rates.items():
        estimates = f"{CORPUS_GOAL / rate:.0f} s | {len(chunks) / rate:.0f} s"
        print(f"| {batch_size} | {threads} | {rate:.1f} | {estimates} |")

    default = LocalEmbedder()
    print(f"\ndefaults: batch {default.batch_size}, threads {default.threads}")
    for name, embed in (
        ("the embedder", lambda: default.embed_documents(sample)),
        ("batches in corpus order, unsorted", lambda: in_corpus_order(default, sample)),
        ("graph as exported (NaN guards kept)", as_exported(default.threads, default.batch_size, sample)),
    ):
        print(f"  {name}: {best_rate(embed, len(sample), args.runs):.1f} chunks/s", flush=True)

    if args.all:
        start = time.perf_counter()
        default.embed_documents(chunks)
        elapsed = time.perf_counter() - start
        rate = len(chunks) / elapsed
        print(f"\nwhole corpus: {len(chunks)} chunks in {elapsed:.1f} s = {rate:.1f} chunks/s")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
