"""The isolation audit's catalog checks pass on the real schema and fail on each planted violation.

Violations are planted inside a transaction that is rolled back, on the superuser's connection
(`superuser_rollback`).
"""

import io
import os
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from app.admin.isolation import catalog_checks, check_storage
from app.admin.isolation_runs import clean_storage
from app.config import get_settings
from app.library.keys import document_key
from app.library.storage import LocalStorage, make_storage
from tests.support.library import new_student, pdf_bytes
from tests.support.paths import ROOT

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
async def test_each_planted_violation_is_reported(superuser_rollback, violation, reported):
    conn = superuser_rollback
    await conn.execute(text(violation))
    results = await catalog_checks(conn, app_role=ROLE)
    offenders = [o for r in results for o in r.offenders]
    assert any(o.startswith(reported) for o in offenders), offenders
    assert not all(r.passed for r in results)


async def _studyrag_audit(*args: str) -> tuple[int, str]:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "studyrag"),
        "audit",
        *args,
        env={**os.environ, "COLUMNS": "400"},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, output.decode()


async def test_studyrag_audit_fails_on_an_orphan_and_passes_once_cleaned_up(services):
    storage = make_storage(get_settings())
    # Orphans that tests run before this one left: the report lists the first 20 offenders of a check,
    # and the one planted here must be among them, whatever the order the tests ran in.
    await _studyrag_audit("--clean-orphans")
    stray = f"users/{uuid.uuid4()}/raw_data/Y1/Old/Book/stray.pdf"
    await storage.put(stray, io.BytesIO(pdf_bytes("stray")), content_type="application/pdf")

    code, output = await _studyrag_audit()
    assert code == 1, output
    assert f"object under a prefix that is no user: {stray}" in output
    assert "Row-level security on every tenant table" in output
    assert "Live probe with two canary tenants" in output

    code, output = await _studyrag_audit("--clean-orphans")
    assert code == 0, output
    assert "FAIL" not in output
    assert not await storage.exists(stray)


async def test_the_storage_check_lists_planted_orphans_and_clean_up_removes_only_those(client, app_engine):
    storage = make_storage(get_settings())
    student = await new_student(client)
    kept = await student.upload_one(("kept.pdf", pdf_bytes("kept")))
    gone = await student.upload_one(("gone.pdf", pdf_bytes("gone")))
    folder = {"semester": "Y1S1", "subject": "Logic", "book": "forallx"}
    gone_key = document_key(uuid.UUID(student.id), **folder, filename="gone.pdf")
    no_user = f"users/{uuid.uuid4()}/raw_data/Y1/Old/Book/stray.pdf"
    no_document = document_key(uuid.UUID(student.id), **folder, filename="leftover.pdf")
    for key in (no_user, no_document):
        await storage.put(key, io.BytesIO(pdf_bytes(key)), content_type="application/pdf")
    await storage.delete(gone_key)

    async with app_engine.connect() as conn:
        result = await check_storage(conn, storage)
    planted = {
        f"object under a prefix that is no user: {no_user}",
        f"object with no document: {no_document}",
        f"document whose file is missing: {gone['id']}",
    }
    assert not result.passed
    assert planted <= set(result.offenders), result.offenders

    # An orphan that appears after the audit was not reviewed by anyone: clean-up leaves it alone.
    later = document_key(uuid.UUID(student.id), **folder, filename="later.pdf")
    await storage.put(later, io.BytesIO(pdf_bytes("later")), content_type="application/pdf")
    done = await clean_storage(app_engine, storage, listed=planted, admin=None, via="test")
    assert sorted(done.deleted_objects) == sorted([no_user, no_document])
    assert done.forgotten_documents == [gone["id"]]
    assert await storage.exists(later)
    await storage.delete(later)

    async with app_engine.connect() as conn:
        offenders = set((await check_storage(conn, storage)).offenders)
    assert not planted & offenders
    files = (await student.get("/api/files")).json()
    assert [f["id"] for f in files] == [kept["id"]]
    assert (await student.get(f"/files/{kept['id']}/content")).status_code == 200


async def test_the_storage_check_passes_when_storage_and_database_agree(superuser_rollback, tmp_path):
    conn, storage = superuser_rollback, LocalStorage(tmp_path)
    await conn.execute(text("delete from documents"))
    clean = await check_storage(conn, storage)
    await storage.put("users/x/raw_data/a/b/c/d.pdf", io.BytesIO(b"%PDF"), content_type="application/pdf")
    dirty = await check_storage(conn, storage)
    assert (clean.passed, clean.offenders) == (True, [])
    assert dirty.offenders == ["object under a prefix that is no user: users/x/raw_data/a/b/c/d.pdf"]


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
async def test_the_live_probe_catches_a_leak(superuser_rollback, violation, reported):
    from app.admin.isolation import check_live_probe

    conn = superuser_rollback
    await conn.execute(text(violation))
    await conn.execute(text(f'set local role "{ROLE}"'))  # probe as the app role, as in production
    result = await check_live_probe(conn)
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
async def test_the_consistency_check_finds_planted_mismatches(superuser_rollback, violation, reported):
    from app.admin.isolation import check_consistency

    conn = superuser_rollback
    for statement in SEED:
        await conn.execute(text(statement))
    await conn.execute(text(f'set local role "{ROLE}"'))
    clean = await check_consistency(conn)
    await conn.execute(text("reset role"))
    for statement in violation:
        await conn.execute(text(statement))
    await conn.execute(text(f'set local role "{ROLE}"'))
    result = await check_consistency(conn)
    assert (clean.passed, clean.offenders) == (True, [])
    assert not result.passed
    assert any(o.startswith(reported) for o in result.offenders), result.offenders
