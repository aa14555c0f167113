"""Time the tenant-isolation audit on a large library.

    .venv/bin/python bench/audit.py [--users 200] [--documents-per-user 20] [--passages-per-document 25]
                                    [--runs 3] [--explain]

Starts its own embedded Postgres and Redis in var/bench-audit (fresh each run) and loads a library as
the cluster superuser with set-based SQL: users, ready documents with their passages (random
embeddings, the HNSW index built once after the load), a few conversations, messages and audit events
per user, then one small object per document in local storage. Then, as the app role, it times each
check of the isolation audit on its own (catalog checks, ownership consistency, storage with its object
listing shown apart, the live probe in a rolled-back transaction), the whole `run_audit` and
`run_and_record`, --runs times. Prints the counts, the load time per step, seconds per check per run
and whether each check passed (with the offenders of any that failed). With --explain it also prints
EXPLAIN (ANALYZE, BUFFERS), as the app role, of the live probe's queries on chunks, and the plans
auto_explain records inside `audit_consistency()` and `audit_storage()`. No assertions.
"""

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = ROOT / "var" / "bench-audit"
sys.path.insert(0, str(ROOT))
os.environ.update(ENVIRONMENT="development", VAR_DIR=str(BENCH_VAR))
for name in ("DATABASE_URL", "APP_DATABASE_URL", "REDIS_URL", "S3_BUCKET"):
    os.environ.pop(name, None)

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine  # noqa: E402

OBJECT_BYTES = b"%PDF-1.4\n% bench\n"
WORDS = [
    "mitochondria",
    "enzyme",
    "theorem",
    "integral",
    "matrix",
    "vector",
    "entropy",
    "photon",
    "lattice",
    "protein",
    "gradient",
    "eigenvalue",
    "kernel",
    "isotope",
    "catalyst",
    "tensor",
    "membrane",
    "neuron",
    "derivative",
    "polynomial",
    "osmosis",
    "quantum",
    "orbital",
    "spectrum",
    "inertia",
    "momentum",
    "torque",
    "reaction",
    "equilibrium",
    "genome",
    "ribosome",
]

console = Console(width=120)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the tenant-isolation audit on a large library.")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--documents-per-user", type=int, default=20)
    parser.add_argument("--passages-per-document", type=int, default=25)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print the plans of the audit's queries")
    return parser.parse_args()


class Stopwatch:
    def __init__(self) -> None:
        self.laps: list[tuple[str, float]] = []

    async def lap(self, label: str, step: Awaitable) -> object:
        started = time.perf_counter()
        result = await step
        self.laps.append((label, time.perf_counter() - started))
        return result


# --- the library ---------------------------------------------------------------------------------------


def plan_library(users: int, documents_per_user: int) -> tuple[list[uuid.UUID], dict[str, list]]:
    """User ids and, column by column, the documents: keys built as the app builds them."""
    from app.library.keys import document_key

    user_ids = [uuid.uuid4() for _ in range(users)]
    columns: dict[str, list] = {
        name: [] for name in ("id", "user_id", "semester", "subject", "book", "filename", "key", "sha")
    }
    for user_id in user_ids:
        for n in range(documents_per_user):
            document_id = uuid.uuid4()
            folder = {
                "semester": f"Semester {n % 4 + 1}",
                "subject": f"Subject {n % 5 + 1}",
                "book": f"Book {n + 1}",
                "filename": f"chapter-{n + 1}.pdf",
            }
            columns["id"].append(document_id)
            columns["user_id"].append(user_id)
            for name, value in folder.items():
                columns[name].append(value)
            columns["key"].append(document_key(user_id, **folder))
            columns["sha"].append(hashlib.sha256(document_id.bytes).hexdigest())
    return user_ids, columns


async def load_library(
    superuser: AsyncEngine, user_ids: list[uuid.UUID], documents: dict[str, list], passages: int, dim: int
) -> Stopwatch:
    """As the cluster superuser (which row-level security does not bind), set-based."""
    watch = Stopwatch()
    async with superuser.begin() as conn:
        await watch.lap(
            "users",
            conn.execute(
                text(
                    "insert into users (id, email, hashed_password, is_active, is_superuser, is_verified,"
                    " name)"
                    " select u, 'bench-' || n || '@example.com', '!', true, false, true, 'Bench ' || n"
                    " from unnest(cast(:ids as uuid[])) with ordinality as t(u, n)"
                ),
                {"ids": user_ids},
            ),
        )
        await watch.lap(
            "documents",
            conn.execute(
                text(
                    "insert into documents (id, user_id, semester, subject, book, filename, storage_key,"
                    " sha256, size_bytes, page_count, pages_done, chunk_count, status, embedding_model)"
                    " select id, user_id, semester, subject, book, filename, key, sha, cast(:size as bigint),"
                    " cast(:p as int), cast(:p as int), cast(:p as int),"
                    " 'ready', 'bench-random'"
                    " from unnest(cast(:id as uuid[]), cast(:user_id as uuid[]), cast(:semester as text[]),"
                    " cast(:subject as text[]), cast(:book as text[]), cast(:filename as text[]),"
                    " cast(:key as text[]), cast(:sha as text[]))"
                    " as t(id, user_id, semester, subject, book, filename, key, sha)"
                ),
                {**documents, "size": len(OBJECT_BYTES), "p": passages},
            ),
        )
        # One build of the HNSW indexes after the load is far faster than a graph insert per row.
        hnsw = (
            await conn.execute(
                text(
                    "select indexname, indexdef from pg_indexes"
                    " where tablename = 'chunks' and indexdef ilike '% using hnsw %'"
                )
            )
        ).all()
        for name, _ in hnsw:
            await conn.execute(text(f'drop index "{name}"'))
        # The subqueries mention the outer row, so they run per passage (not once, as an InitPlan).
        await watch.lap(
            "passages (text, tsv, embeddings)",
            conn.execute(
                text(
                    "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text,"
                    " embedding)"
                    " select d.user_id, d.id, g.n, g.n + 1, g.n + 1,"
                    " 'Passage ' || g.n || ' of ' || d.book || ': ' || (select string_agg("
                    "   (cast(:words as text[]))[1 + floor(random() * cast(:nwords as int))::int], ' ')"
                    "   from generate_series(1, 40) w where g.n >= 0),"
                    " (select cast(array_agg(random() - 0.5) as vector)"
                    "   from generate_series(1, cast(:dim as int)) e where g.n >= 0)"
                    " from documents d cross join generate_series(0, cast(:p as int) - 1) g(n)"
                ),
                {"words": list(WORDS), "nwords": len(WORDS), "dim": dim, "p": passages},
            ),
        )
        await conn.execute(text("set local maintenance_work_mem = '1GB'"))
        await conn.execute(text("set local max_parallel_maintenance_workers = 2"))
        started = time.perf_counter()
        for _, definition in hnsw:
            await conn.execute(text(definition))
        watch.laps.append((f"HNSW index build ({len(hnsw)} indexes)", time.perf_counter() - started))
        await watch.lap(
            "conversations, messages, audit log",
            conn.execute(
                text(
                    "with c as (insert into conversations (id, user_id, title)"
                    "  select gen_random_uuid(), u, 'Conversation ' || n"
                    "  from unnest(cast(:ids as uuid[])) u cross join generate_series(1, 2) n"
                    "  returning id, user_id),"
                    " m as (insert into messages (user_id, conversation_id, role, content)"
                    "  select c.user_id, c.id, case when n % 2 = 0 then 'user' else 'assistant' end,"
                    "  'Message ' || n from c cross join generate_series(1, 10) n)"
                    " insert into audit_log (user_id, action, target, outcome)"
                    " select user_id, 'document.uploaded', id::text, 'ok' from documents"
                ),
                {"ids": user_ids},
            ),
        )
    # What autovacuum would have done by the time anyone runs an audit: statistics, visibility map.
    async with superuser.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await watch.lap("vacuum analyze", conn.execute(text("vacuum analyze")))
    return watch


def write_objects(storage, keys: list[str]) -> None:
    """One small object per document, straight into the local store's layout (no fsync per object)."""
    for key in keys:
        path = storage.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(OBJECT_BYTES)


async def counts(superuser: AsyncEngine) -> dict[str, int]:
    async with superuser.connect() as conn:
        return {
            table: await conn.scalar(text(f"select count(*) from {table}"))
            for table in ("users", "documents", "chunks", "conversations", "messages", "audit_log")
        }


# --- the audit -----------------------------------------------------------------------------------------


async def time_checks(engine: AsyncEngine, storage, app_role: str) -> dict[str, tuple[float, list]]:
    """Seconds and results of each check on its own connection (as `run_and_record` uses one), then of
    the whole audit. Every connection is rolled back."""
    from app.admin.isolation import (
        catalog_checks,
        check_consistency,
        check_live_probe,
        check_storage,
        run_audit,
    )
    from app.admin.isolation_runs import results_of, run_and_record
    from app.library.keys import USERS_PREFIX

    async def live_probe(conn: AsyncConnection) -> list:
        transaction = await conn.begin()
        try:
            return [await check_live_probe(conn)]
        finally:
            await transaction.rollback()

    steps: dict[str, Callable[[AsyncConnection], Awaitable[list]]] = {
        "catalog checks (RLS, app role)": lambda conn: catalog_checks(conn, app_role=app_role),
        "ownership consistency": lambda conn: _one(check_consistency(conn)),
        "storage": lambda conn: _one(check_storage(conn, storage)),
        "  of which: listing the objects": lambda conn: _none(storage.list_keys(USERS_PREFIX)),
        "live probe (rolled back)": live_probe,
        "whole run_audit": lambda conn: run_audit(conn, app_role=app_role, storage=storage),
    }
    timings: dict[str, tuple[float, list]] = {}
    for label, step in steps.items():
        async with engine.connect() as conn:
            started = time.perf_counter()
            results = await step(conn)
            timings[label] = (time.perf_counter() - started, results)
            await conn.rollback()
    started = time.perf_counter()
    run = await run_and_record(engine, storage, app_role=app_role, admin=None, via="bench")
    timings["run_and_record (audit + history)"] = (time.perf_counter() - started, results_of(run))
    return timings


async def _one(check: Awaitable) -> list:
    return [await check]


async def _none(step: Awaitable) -> list:
    await step
    return []


# --- plans ---------------------------------------------------------------------------------------------


async def explain_probe(engine: AsyncEngine, some_user: uuid.UUID, dim: int) -> list[tuple[str, str]]:
    """The live probe's queries on chunks, as the app role: with no user set, and as a real user."""
    vector = "[" + ",".join(["0.1"] * dim) + "]"
    queries = [
        ("no user set: select count(*) from chunks", "", "select count(*) from chunks", {}),
        (
            "as a user: count(*) of another user's passages",
            str(some_user),
            "select count(*) from chunks where user_id = :b",
            {"b": uuid.uuid4()},
        ),
        (
            "as a user: the vector search",
            str(some_user),
            "select count(*) from (select user_id from chunks order by embedding <=> cast(:v as vector)"
            " limit 50) nearest where user_id = :b",
            {"v": vector, "b": uuid.uuid4()},
        ),
        (
            "as a user: the full-text search",
            str(some_user),
            "select count(*) from chunks where tsv @@ to_tsquery('english', 'zebrafinch') and user_id = :b",
            {"b": uuid.uuid4()},
        ),
    ]
    plans = []
    async with engine.connect() as conn:
        for title, user, query, params in queries:
            await conn.execute(text("select set_config('app.user_id', :u, true)"), {"u": user})
            rows = await conn.execute(text("explain (analyze, buffers) " + query), params)
            plans.append((title, "\n".join(rows.scalars())))
            await conn.rollback()
    return plans


async def explain_functions(superuser: AsyncEngine, app_role: str, storage) -> list[tuple[str, str]]:
    """The plans inside the SECURITY DEFINER functions, as auto_explain logs them when the app role
    calls them (the log lines reach this client at client_min_messages = log)."""
    from app.library.keys import USERS_PREFIX

    keys = await storage.list_keys(USERS_PREFIX)
    plans: list[tuple[str, str]] = []
    async with superuser.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        messages: list[str] = []
        raw.add_log_listener(lambda _conn, message: messages.append(message.message))
        for setting in (
            "load 'auto_explain'",
            "set auto_explain.log_min_duration = 0",
            "set auto_explain.log_analyze = on",
            "set auto_explain.log_buffers = on",
            "set auto_explain.log_nested_statements = on",
            "set auto_explain.log_parameter_max_length = 0",
            "set client_min_messages = log",
        ):
            await conn.execute(text(setting))
        await conn.commit()  # session settings: a rollback would undo them
        for title, query, params, role in (
            ("audit_consistency()", "select problem, item from audit_consistency()", {}, app_role),
            # The storage check is on the admin path only (migration 0009).
            (
                "audit_storage(keys)",
                "select problem, item from audit_storage(:keys)",
                {"keys": keys},
                f"{app_role}_admin",
            ),
        ):
            messages.clear()
            await conn.execute(text(f'set local role "{role}"'))
            await conn.execute(text(query), params)
            await conn.rollback()
            # Only the plans of the statements inside the function, not of the call itself.
            inner = [m for m in messages if "Query Text: select problem, item from audit_" not in m]
            plans.append((title, "\n\n".join(inner or messages)))
    return plans


# --- main ----------------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    from app.config import get_settings
    from app.db import make_engine
    from app.embedded import EmbeddedServices
    from app.library.storage import make_storage
    from app.migrate import upgrade_to_head

    shutil.rmtree(BENCH_VAR, ignore_errors=True)
    BENCH_VAR.mkdir(parents=True)
    settings = get_settings()
    services = EmbeddedServices(settings)
    urls = await services.start()
    try:
        await upgrade_to_head(urls.database_url)
        superuser = make_engine(make_url(urls.database_url).set(username="postgres").render_as_string(False))
        engine = make_engine(urls.app_database_url)
        storage = make_storage(settings)
        user_ids, documents = plan_library(args.users, args.documents_per_user)
        console.print(
            f"loading {args.users} users × {args.documents_per_user} documents × "
            f"{args.passages_per_document} passages …"
        )
        started = time.perf_counter()
        load = await load_library(
            superuser, user_ids, documents, args.passages_per_document, settings.embedding_dim
        )
        objects_started = time.perf_counter()
        await asyncio.to_thread(write_objects, storage, documents["key"])
        load.laps.append(("objects in local storage", time.perf_counter() - objects_started))
        load_total = time.perf_counter() - started
        rows = await counts(superuser)
        rows["objects"] = len(await storage.list_keys("users/"))
        versions = await _versions(superuser)

        runs = []
        for _ in range(args.runs):
            runs.append(await time_checks(engine, storage, settings.app_db_role))

        plans = []
        if args.explain:
            plans = await explain_probe(engine, user_ids[0], settings.embedding_dim)
            plans += await explain_functions(superuser, settings.app_db_role, storage)
        await engine.dispose()
        await superuser.dispose()
    finally:
        services.stop()

    report(args, rows, versions, load.laps, load_total, runs, plans)


async def _versions(superuser: AsyncEngine) -> str:
    async with superuser.connect() as conn:
        server = await conn.scalar(text("show server_version"))
        vector = await conn.scalar(text("select extversion from pg_extension where extname = 'vector'"))
    return f"PostgreSQL {server}, pgvector {vector}, {os.cpu_count()} CPUs"


def report(args, rows, versions, laps, load_total, runs, plans) -> None:
    console.print(versions)
    summary = Table(title="Library")
    for name in ("users", "documents", "passages", "objects", "conversations", "messages", "audit events"):
        summary.add_column(name, justify="right")
    summary.add_row(
        *(
            f"{rows[key]:,}"
            for key in ("users", "documents", "chunks", "objects", "conversations", "messages", "audit_log")
        )
    )
    console.print(summary)

    loading = Table(title=f"Load: {load_total:.1f} s")
    loading.add_column("step")
    loading.add_column("seconds", justify="right")
    for label, seconds in laps:
        loading.add_row(label, f"{seconds:.2f}")
    console.print(loading)

    audit = Table(title="Isolation audit as the app role (seconds)")
    audit.add_column("check")
    for n in range(len(runs)):
        audit.add_column(f"run {n + 1}", justify="right")
    audit.add_column("passed")
    failures: dict[str, list[str]] = {}
    for label in runs[0]:
        results = [result for run in runs for result in run[label][1]]
        for result in results:
            if not result.passed:
                failures.setdefault(result.name, result.offenders)
        passed = "—" if not results else ("yes" if all(r.passed for r in results) else "[red]NO[/red]")
        audit.add_row(label, *(f"{run[label][0]:.3f}" for run in runs), passed)
    console.print(audit)
    for name, offenders in failures.items():
        console.print(f"[red]FAILED[/red] {name}: {len(offenders)} offender(s)")
        for offender in offenders[:20]:
            console.print(f"  {offender}", markup=False)

    for title, plan in plans:
        console.rule(title)
        print(re.sub(r"'\[(0\.1,)+0\.1\]'", "'[0.1, … × dim]'", plan))


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
