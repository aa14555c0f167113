"""User B tries to reach user A's files through every library route, and fails with 404."""

import pytest
from sqlalchemy import text

from app.library.storage import LocalStorage
from tests.support.library import new_student, pdf_bytes


class RecordingStorage(LocalStorage):
    """The real local storage, noting every key it is asked about."""

    def __init__(self, inner: LocalStorage) -> None:
        super().__init__(inner.root)
        self.keys: list[str] = []

    def path(self, key: str):
        self.keys.append(key)
        return super().path(key)

    async def delete(self, key: str) -> None:
        self.keys.append(key)
        await super().delete(key)

    async def download_url(self, key: str, *, filename: str, expires: int, **response):
        self.keys.append(key)
        return None


@pytest.fixture
async def a_and_b(client, app):
    a, b = await new_student(client, "A"), await new_student(client, "B")
    file_a = await a.upload_one(
        ("private.pdf", pdf_bytes("A's notes")), semester="S1", subject="Secret", book="Diary"
    )
    original = app.state.storage
    recording = RecordingStorage(original)
    app.state.storage = recording
    try:
        yield a, b, file_a, recording
    finally:
        app.state.storage = original


def _attempts(file_id: str):
    return [
        ("get", f"/api/files/{file_id}", {}),
        ("delete", f"/api/files/{file_id}", {}),
        ("get", f"/files/{file_id}/content", {}),
        ("delete", f"/library/files/{file_id}", {}),
        ("delete", "/api/folders", {"params": {"semester": "S1"}}),
        ("delete", "/api/folders", {"params": {"semester": "S1", "subject": "Secret", "book": "Diary"}}),
        ("delete", "/library/folders", {"params": {"semester": "S1", "subject": "Secret"}}),
    ]


async def test_b_gets_404_on_every_route_that_names_as_file_or_folder(a_and_b, client, superuser_engine):
    a, b, file_a, recording = a_and_b
    for method, url, kwargs in _attempts(file_a["id"]):
        response = await client.request(method, url, headers=b.headers, **kwargs)
        assert response.status_code == 404, (method, url, response.status_code)
        assert "private" not in response.text and file_a["key"] not in response.text
    assert not any(key.startswith(f"users/{a.id}/") for key in recording.keys), recording.keys

    # A's file is untouched and still A's.
    assert (await a.get(f"/files/{file_a['id']}/content")).content == pdf_bytes("A's notes")
    assert [f["id"] for f in (await a.get("/api/files")).json()] == [file_a["id"]]
    assert (await b.get("/api/files")).json() == []
    assert (await b.get("/api/files", params={"q": "private"})).json() == []

    async with superuser_engine.connect() as conn:
        denied = (
            (
                await conn.execute(
                    text(
                        "select action from audit_log where user_id = :b and outcome = 'denied' order by id"
                    ),
                    {"b": b.id},
                )
            )
            .scalars()
            .all()
        )
    assert denied == [
        "file.read",
        "file.delete",
        "file.open",
        "file.delete",
        "folder.delete",
        "folder.delete",
        "folder.delete",
    ]


async def test_b_cannot_see_as_folders_in_the_library_page(a_and_b, client):
    _, b, _, _ = a_and_b
    page = await client.get("/library", headers=b.headers)
    assert page.status_code == 200
    assert "Secret" not in page.text and "Diary" not in page.text and "private.pdf" not in page.text


async def test_bs_uploads_land_under_bs_prefix_whatever_the_names(a_and_b):
    a, b, _, _ = a_and_b
    result = await b.upload_one(
        (f"../../{a.id}/raw_data/S1/Secret/Diary/private.pdf", pdf_bytes("B's")),
        semester="S1",
        subject="Secret",
        book="Diary",
    )
    assert result["key"] == f"users/{b.id}/raw_data/S1/Secret/Diary/private.pdf"
    # Same names as A's file, different user: both exist, each only to its owner.
    assert (await a.get("/api/files")).json()[0]["key"].startswith(f"users/{a.id}/")
