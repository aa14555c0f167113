"""Upload, browse, search, open and delete, through the API and the pages, on local storage."""

import asyncio
import hashlib
import uuid

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.db import make_sessionmaker
from app.tenancy import Tenant, bind_tenant
from tests.support.corpus import BAD, BOOKS
from tests.support.library import new_student, pdf_bytes

FORALLX = BOOKS / "forallx_magnus.pdf"


async def test_upload_stores_the_pdf_under_the_users_prefix(client, app):
    ada = await new_student(client)
    result = await ada.upload_one(FORALLX, semester="Y3S2", subject="NLP", book="NLTK_Book")
    assert result["key"] == f"users/{ada.id}/raw_data/Y3S2/NLP/NLTK_Book/forallx_magnus.pdf"
    stored = app.state.storage.path(result["key"])
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(FORALLX.read_bytes()).hexdigest()

    listed = (await ada.get("/api/files")).json()
    assert [(f["id"], f["status"], f["size_bytes"]) for f in listed] == [
        (result["id"], "queued", FORALLX.stat().st_size)
    ]


async def test_several_files_at_once_each_get_a_status(client):
    ada = await new_student(client)
    response = await ada.upload(
        ("one.pdf", pdf_bytes("one")),
        ("image.pdf", (BAD / "png_renamed.pdf").read_bytes()),
        ("two.pdf", pdf_bytes("2")),
    )
    assert response.status_code == 201
    statuses = [(f["filename"], f["status"], f.get("code")) for f in response.json()["files"]]
    assert statuses == [
        ("one.pdf", "queued", None),
        ("image.pdf", "rejected", "not_pdf"),
        ("two.pdf", "queued", None),
    ]


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("empty_zero_bytes.pdf", "empty", "This file is empty."),
        ("png_renamed.pdf", "not_pdf", "This is not a PDF file"),
    ],
)
async def test_files_that_are_not_pdfs_are_refused_with_a_clear_message(client, app, name, code, message):
    ada = await new_student(client)
    response = await ada.upload(BAD / name)
    assert response.status_code in (400, 415)
    (result,) = response.json()["files"]
    assert (result["status"], result["code"]) == ("rejected", code)
    assert message in result["error"]
    assert await app.state.storage.list_keys(f"users/{ada.id}/") == []
    assert (await ada.get("/api/files")).json() == []


async def test_the_other_bad_files_are_accepted_for_ingestion_to_judge(client):
    ada = await new_student(client)
    others = sorted(p for p in BAD.glob("*.pdf") if p.name not in ("empty_zero_bytes.pdf", "png_renamed.pdf"))
    assert len(others) == 10
    response = await ada.upload(*others, book="bad")
    assert response.status_code == 201
    assert {f["filename"]: f["status"] for f in response.json()["files"]} == {
        p.name: "queued" for p in others
    }


async def test_the_same_file_twice_is_stored_once(client, app):
    ada = await new_student(client)
    first = await ada.upload_one(FORALLX)
    again = await ada.upload(FORALLX, semester="Y2S1", subject="Philosophy", book="Logic")
    assert again.status_code == 409
    (result,) = again.json()["files"]
    assert result["code"] == "duplicate"
    assert "already in your library as Y1S1 / Logic / forallx / forallx_magnus.pdf" in result["error"]
    assert await app.state.storage.list_keys(f"users/{ada.id}/") == [first["key"]]


async def test_a_name_taken_in_the_book_is_not_overwritten(client, app):
    ada = await new_student(client)
    first = await ada.upload_one(("notes.pdf", pdf_bytes("first")))
    clash = await ada.upload(("notes.pdf", pdf_bytes("second")))
    assert clash.status_code == 409
    assert "already in Y1S1 / Logic / forallx" in clash.json()["files"][0]["error"]
    assert app.state.storage.path(first["key"]).read_bytes() == pdf_bytes("first")
    # Another book may hold a file of the same name.
    await ada.upload_one(("notes.pdf", pdf_bytes("second")), book="other")


async def test_size_limit(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "max_upload_mb", 1)
    ada = await new_student(client)
    big = BOOKS / "discrete_math_levin.pdf"  # 1.4 MB
    response = await ada.upload(big)
    assert response.status_code == 413
    assert response.json()["files"][0]["error"] == "This file is over 1 MB, the largest allowed."


async def test_quotas_on_count_and_bytes(client, owner_engine):
    ada = await new_student(client)
    async with owner_engine.begin() as conn:
        await conn.execute(text("update users set quota_documents = 1 where id = :id"), {"id": ada.id})
    await ada.upload_one(("a.pdf", pdf_bytes("a")))
    full = await ada.upload(("b.pdf", pdf_bytes("b")))
    assert full.status_code == 413
    assert full.json()["files"][0]["error"] == "Your library is full (1 documents)."

    bob = await new_student(client)
    async with owner_engine.begin() as conn:
        await conn.execute(text("update users set quota_bytes = 1000 where id = :id"), {"id": bob.id})
    no_space = await bob.upload(FORALLX)
    assert no_space.status_code == 413
    assert "Not enough space" in no_space.json()["files"][0]["error"]


async def test_a_quota_of_zero_is_a_quota_not_the_default(client, owner_engine):
    ada = await new_student(client)
    async with owner_engine.begin() as conn:
        await conn.execute(text("update users set quota_documents = 0 where id = :id"), {"id": ada.id})
    full = await ada.upload(("a.pdf", pdf_bytes("zero documents")))
    assert full.status_code == 413
    assert full.json()["files"][0]["error"] == "Your library is full (0 documents)."

    bob = await new_student(client)
    async with owner_engine.begin() as conn:
        await conn.execute(text("update users set quota_bytes = 0 where id = :id"), {"id": bob.id})
    no_space = await bob.upload(("b.pdf", pdf_bytes("zero bytes")))
    assert no_space.status_code == 413
    assert "Not enough space" in no_space.json()["files"][0]["error"]
    assert (await ada.get("/api/files")).json() == [] and (await bob.get("/api/files")).json() == []


@pytest.mark.parametrize("quota", ["quota_documents", "quota_bytes"])
async def test_parallel_uploads_cannot_exceed_a_quota(client, owner_engine, quota):
    ada = await new_student(client)
    held = pdf_bytes("held 0")
    # Room for exactly one more file of the same size, counted in documents or in bytes.
    limit = 2 if quota == "quota_documents" else 2 * len(held) + len(held) // 2
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"update users set {quota} = :n where id = :id"), {"n": limit, "id": ada.id})
    await ada.upload_one(("held.pdf", held))
    responses = await asyncio.gather(
        *(ada.upload((f"parallel{n}.pdf", pdf_bytes(f"held {n + 1}"))) for n in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201] + [413] * 5, [r.text for r in responses]
    assert len((await ada.get("/api/files")).json()) == 2


WIDE = "\U00020000"  # a CJK letter that takes 4 bytes in UTF-8 (and stays itself under NFKC)


@pytest.mark.parametrize("field", ["semester", "subject", "book"])
async def test_folder_names_are_bounded_in_bytes_too(client, app, field):
    """64 letters of 4 bytes are 256 bytes: more than a file system allows for one name."""
    ada = await new_student(client)
    refused = await ada.upload(("wide.pdf", pdf_bytes(f"wide {field}")), **{field: WIDE * 64})
    assert refused.status_code == 400, refused.text
    assert refused.json()["detail"] == (
        f"The {field} name is too long: at most 192 bytes as stored (UTF-8), and this one takes 256. "
        "Some letters take up to 4 bytes; use a shorter name."
    )
    stored = await ada.upload_one(("wide.pdf", pdf_bytes(f"wide {field}")), **{field: WIDE * 48})
    assert app.state.storage.path(stored["key"]).is_file()


async def test_long_file_names_of_wide_letters_are_shortened_to_fit_the_store(client, app):
    ada = await new_student(client)
    stored = await ada.upload_one((WIDE * 170 + ".pdf", pdf_bytes("wide file name")))
    name = stored["key"].rsplit("/", 1)[-1]
    assert name.endswith(".pdf") and len(name.encode()) <= 255 and set(name[:-4]) == {WIDE}
    assert app.state.storage.path(stored["key"]).is_file()


@pytest.mark.parametrize("field", ["semester", "subject", "book"])
@pytest.mark.parametrize("value", ["..", "a/b", "", "x" * 65, "semi;colon", "../../etc"])
async def test_bad_folder_names_are_a_clear_400(client, app, field, value):
    ada = await new_student(client)
    response = await ada.upload(("a.pdf", pdf_bytes(value)), **{field: value})
    assert response.status_code in (400, 422)
    if response.status_code == 400:
        assert f"The {field} name must be 1–64 characters" in response.json()["detail"]
    assert await app.state.storage.list_keys(f"users/{ada.id}/") == []


HOSTILE_NAMES = [
    "../x.pdf",
    "..%2Fx.pdf",
    "/etc/passwd",
    "a\x00b.pdf",
    "..\\..\\windows\\system32.pdf",
    "x" * 1000 + ".pdf",
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fetc\uff0fpasswd.pdf",  # fullwidth ．．／
    "\u2024\u2024/secret.pdf",  # one-dot leaders
    "line\nbreak\r.pdf",
    "...",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_file_names_stay_under_the_users_prefix_or_are_refused(client, app, name):
    ada = await new_student(client)
    response = await ada.upload((name, pdf_bytes(name)))
    (result,) = response.json()["files"]
    if result["status"] == "rejected":
        assert result["code"] == "bad_name"
        assert "no usable name" in result["error"]
        return
    key = result["key"]
    prefix = f"users/{ada.id}/raw_data/Y1S1/Logic/forallx/"
    assert key.startswith(prefix)
    leaf = key.removeprefix(prefix)
    assert "/" not in leaf and "\\" not in leaf and ".." not in leaf and "\x00" not in leaf
    assert leaf.endswith(".pdf") and len(leaf) <= 180
    stored = app.state.storage.path(key)
    assert stored.is_file()
    assert stored.resolve().is_relative_to(app.state.storage.root.resolve() / "users" / ada.id)


async def test_browse_filter_and_search(client):
    ada = await new_student(client)
    await ada.upload_one(("Chapter 1.pdf", pdf_bytes("c1")), semester="Y3S2", subject="NLP", book="NLTK_Book")
    await ada.upload_one(("Chapter 2.pdf", pdf_bytes("c2")), semester="Y3S2", subject="NLP", book="NLTK_Book")
    await ada.upload_one(("forallx.pdf", pdf_bytes("fx")), semester="Y1S1", subject="Logic", book="forall_x")

    def names(response):
        assert response.status_code == 200
        return [f["filename"] for f in response.json()]

    assert names(await ada.get("/api/files")) == ["forallx.pdf", "Chapter 1.pdf", "Chapter 2.pdf"]
    assert names(await ada.get("/api/files", params={"semester": "Y3S2"})) == [
        "Chapter 1.pdf",
        "Chapter 2.pdf",
    ]
    assert names(await ada.get("/api/files", params={"subject": "Logic"})) == ["forallx.pdf"]
    assert names(await ada.get("/api/files", params={"q": "nltk"})) == ["Chapter 1.pdf", "Chapter 2.pdf"]
    assert names(await ada.get("/api/files", params={"q": "chapter 2"})) == ["Chapter 2.pdf"]
    assert names(await ada.get("/api/files", params={"q": "y1s"})) == ["forallx.pdf"]
    assert names(await ada.get("/api/files", params={"q": "%"})) == []  # a wildcard is just a character
    assert names(await ada.get("/api/files", params={"q": "_"})) == [
        "forallx.pdf",
        "Chapter 1.pdf",
        "Chapter 2.pdf",
    ]


async def test_open_streams_the_pdf_inline_to_its_owner(client):
    ada = await new_student(client)
    result = await ada.upload_one(FORALLX)
    response = await ada.get(f"/files/{result['id']}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith('inline; filename="forallx_magnus.pdf"')
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == FORALLX.read_bytes()
    # PDF viewers fetch ranges.
    part = await ada.get(f"/files/{result['id']}/content", headers={"Range": "bytes=0-7"})
    assert part.status_code == 206
    assert part.content == FORALLX.read_bytes()[:8]


async def test_unicode_file_names_get_a_safe_disposition(client):
    ada = await new_student(client)
    result = await ada.upload_one(("Grundlagen der Logik – Übung 1?.pdf", pdf_bytes("u")))
    assert result["filename"] == "Grundlagen der Logik – Übung 1_.pdf"
    response = await ada.get(f"/files/{result['id']}/content")
    disposition = response.headers["content-disposition"]
    assert disposition == (
        'inline; filename="Grundlagen der Logik _ _bung 1_.pdf"; '
        "filename*=UTF-8''Grundlagen%20der%20Logik%20%E2%80%93%20%C3%9Cbung%201_.pdf"
    )


async def _add_chunk(app_engine, user_id: str, document_id: str) -> None:
    async with make_sessionmaker(app_engine)() as session, session.begin():
        await bind_tenant(session, Tenant(uuid.UUID(user_id)))
        await session.execute(
            text(
                "insert into chunks (user_id, document_id, ordinal, page_start, page_end, text)"
                " values (:u, :d, 0, 1, 1, 'a passage')"
            ),
            {"u": user_id, "d": document_id},
        )


async def _count_chunks(superuser_engine, document_id: str) -> int:
    async with superuser_engine.connect() as conn:
        return await conn.scalar(
            text("select count(*) from chunks where document_id = :d"), {"d": document_id}
        )


async def test_delete_removes_object_document_and_chunks(client, app, app_engine, superuser_engine):
    ada = await new_student(client)
    result = await ada.upload_one(FORALLX)
    await _add_chunk(app_engine, ada.id, result["id"])
    assert await _count_chunks(superuser_engine, result["id"]) == 1

    assert (await ada.delete(f"/api/files/{result['id']}")).status_code == 204
    assert not await app.state.storage.exists(result["key"])
    assert await _count_chunks(superuser_engine, result["id"]) == 0
    assert (await ada.get(f"/api/files/{result['id']}")).status_code == 404
    assert (await ada.delete(f"/api/files/{result['id']}")).status_code == 404


async def test_delete_a_book_a_subject_a_semester(client, app):
    ada = await new_student(client)
    a = await ada.upload_one(("a.pdf", pdf_bytes("a")), semester="S1", subject="Math", book="Algebra")
    b = await ada.upload_one(("b.pdf", pdf_bytes("b")), semester="S1", subject="Math", book="Calculus")
    c = await ada.upload_one(("c.pdf", pdf_bytes("c")), semester="S1", subject="Physics", book="Mechanics")
    d = await ada.upload_one(("d.pdf", pdf_bytes("d")), semester="S2", subject="Math", book="Algebra")

    book = await ada.delete("/api/folders", params={"semester": "S1", "subject": "Math", "book": "Algebra"})
    assert book.json() == {"deleted": 1}
    subject = await ada.delete("/api/folders", params={"semester": "S1", "subject": "Math"})
    assert subject.json() == {"deleted": 1}
    semester = await ada.delete("/api/folders", params={"semester": "S1"})
    assert semester.json() == {"deleted": 1}
    assert [f["id"] for f in (await ada.get("/api/files")).json()] == [d["id"]]
    for gone in (a, b, c):
        assert not await app.state.storage.exists(gone["key"])
    assert await app.state.storage.exists(d["key"])
    assert (await ada.delete("/api/folders", params={"semester": "S1"})).status_code == 404


async def test_uploads_and_deletes_are_audited(client, superuser_engine):
    ada = await new_student(client)
    result = await ada.upload_one(FORALLX)
    await ada.delete(f"/api/files/{result['id']}")
    async with superuser_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "select action, outcome, target from audit_log"
                    " where user_id = :u and action not in ('register', 'login') order by id"
                ),
                {"u": ada.id},
            )
        ).all()
    assert rows == [("upload", "ok", result["id"]), ("delete", "ok", result["id"])]
