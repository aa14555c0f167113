"""The isolation audit's catalog checks pass on the real schema and fail on each planted violation.

Violations are planted inside a transaction that is rolled back, on the superuser's connection.
"""

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app.admin.isolation import catalog_checks
from app.config import get_settings
from tests.conftest import ROOT

ROLE = get_settings().app_db_role


async def test_a_clean_database_passes(app_engine):
    async with app_engine.connect() as conn:
        results = await catalog_checks(conn, app_role=ROLE)
    assert [(r.passed, r.offenders) for r in results] == [(True, []), (True, [])]


PLANTED = [
    ("alter table chunks disable row level security", "chunks: row-level security is disabled"),
    ("alter table messages no force row level security", "messages: row-level security is not forced"),
    ("drop policy tenant_isolation on conversations", "conversations: no policy on app.user_id"),
    (
        "create policy everyone on documents using (true)",
        "documents: policy everyone for public does not read",
    ),
    (f'alter role "{ROLE}" bypassrls', f"{ROLE} has BYPASSRLS"),
    (f'alter table documents owner to "{ROLE}"', f"{ROLE} owns documents"),
    (
        "create table notes (id int primary key, user_id uuid)",
        "notes: row-level security is disabled",  # a new tenant table is found from the catalog
    ),
]


@pytest.mark.parametrize(("violation", "reported"), PLANTED)
async def test_each_planted_violation_is_reported(superuser_engine, violation, reported):
    async with superuser_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text(violation))
            results = await catalog_checks(conn, app_role=ROLE)
        finally:
            await transaction.rollback()
    offenders = [o for r in results for o in r.offenders]
    assert any(o.startswith(reported) for o in offenders), offenders
    assert not all(r.passed for r in results)


async def test_studyrag_audit_prints_the_checks_and_exits_zero(services):
    import asyncio

    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "studyrag"),
        "audit",
        env=dict(os.environ),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode()
    assert "Row-level security on every tenant table" in output.decode()
    assert "Live probe with two canary tenants" in output.decode()
    assert "FAIL" not in output.decode()


async def test_the_live_probe_passes_as_the_app_role_and_leaves_nothing(app_engine, superuser_engine):
    from app.admin.isolation import check_live_probe

    async with app_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            result = await check_live_probe(conn)
        finally:
            await transaction.rollback()
    assert (result.passed, result.offenders) == (True, [])
    async with superuser_engine.connect() as conn:
        assert (
            await conn.scalar(text("select count(*) from users where email like 'canary-%@audit.invalid'"))
            == 0
        )


@pytest.mark.parametrize(
    ("violation", "reported"),
    [
        ("create policy peek on chunks for select using (true)", "chunks: canary A reads 1 row"),
        (
            "create policy peek on conversations for select using (true)",
            "conversations: canary A reads 1 row",
        ),
        ("alter table documents disable row level security", "documents: canary A reads 1 row"),
    ],
)
async def test_the_live_probe_catches_a_leak(superuser_engine, violation, reported):
    from app.admin.isolation import check_live_probe

    async with superuser_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text(violation))
            await conn.execute(text(f'set local role "{ROLE}"'))  # probe as the app role, as in production
            result = await check_live_probe(conn)
        finally:
            await transaction.rollback()
    assert not result.passed
    assert any(o.startswith(reported) for o in result.offenders), result.offenders
    if "chunks" in violation:
        assert "vector search as canary A returns canary B's passage" in result.offenders
        assert "full-text search as canary A returns canary B's passage" in result.offenders


SEED = [
    "insert into users (id, email, hashed_password, is_active, is_superuser, is_verified) values"
    " ('00000000-0000-4000-8000-00000000000a', 'seed-a@audit.invalid', '!', false, false, false),"
    " ('00000000-0000-4000-8000-00000000000b', 'seed-b@audit.invalid', '!', false, false, false)",
    "insert into documents (id, user_id, semester, subject, book, filename, storage_key, sha256, size_bytes)"
    " values ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-00000000000a', 's', 's', 'b',"
    " 'f.pdf', 'users/00000000-0000-4000-8000-00000000000a/raw_data/s/s/b/f.pdf', 'seed', 1)",
    "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text) values"
    " ('00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-0000000000d1', 0, 1, 1, 'seed')",
]


@pytest.mark.parametrize(
    ("violation", "reported"),
    [
        (
            [
                "update documents"
                " set storage_key = 'users/00000000-0000-4000-8000-00000000000b/raw_data/f.pdf'"
                " where id = '00000000-0000-4000-8000-0000000000d1'"
            ],
            "storage key outside its owner's prefix: 00000000-0000-4000-8000-0000000000d1",
        ),
        (
            [
                "alter table chunks drop constraint fk_chunks_document_id_user_id_documents",
                "update chunks set user_id = '00000000-0000-4000-8000-00000000000b'"
                " where document_id = '00000000-0000-4000-8000-0000000000d1'",
            ],
            "passage owned by another user than its document",
        ),
    ],
)
async def test_the_consistency_check_finds_planted_mismatches(superuser_engine, violation, reported):
    from app.admin.isolation import check_consistency

    async with superuser_engine.connect() as conn:
        transaction = await conn.begin()
        try:
            for statement in SEED:
                await conn.execute(text(statement))
            await conn.execute(text(f'set local role "{ROLE}"'))
            clean = await check_consistency(conn)
            await conn.execute(text("reset role"))
            for statement in violation:
                await conn.execute(text(statement))
            await conn.execute(text(f'set local role "{ROLE}"'))
            result = await check_consistency(conn)
        finally:
            await transaction.rollback()
    assert (clean.passed, clean.offenders) == (True, [])
    assert not result.passed
    assert any(o.startswith(reported) for o in result.offenders), result.offenders
