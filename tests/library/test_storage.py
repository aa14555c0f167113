"""Object storage: the same tests run against the local directory and against S3 (a real moto server).

Nothing of ours is mocked: S3 requests go over HTTP to a moto server started once for the session, and
the end-to-end test drives the app's routes with the S3 backend swapped in.
"""

import asyncio
import hashlib
import io
import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from app.config import Settings
from app.library.keys import document_key, user_prefix
from app.library.names import InvalidName
from app.library.storage import LocalStorage, S3Storage, make_storage
from tests.support.accounts import bearer_token, register
from tests.support.corpus import BOOKS

SAMPLE_PDF = BOOKS / "forallx_magnus.pdf"
MiB = 1024 * 1024
S3_PART = 8 * MiB  # boto3's default multipart chunk size
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint):
    # Signature V4 for presigned URLs (botocore still presigns with V2 in us-east-1 unless told).
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
        **CREDENTIALS,
    )


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"studyrag-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=item["Key"])
    s3_client.delete_bucket(Bucket=name)


@pytest.fixture
def s3_storage(bucket, s3_client) -> S3Storage:
    return S3Storage(bucket, s3_client)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return request.getfixturevalue("s3_storage")


def _open_stored(storage, key: str):
    if isinstance(storage, LocalStorage):
        return storage.path(key).open("rb")
    return storage.client.get_object(Bucket=storage.bucket, Key=key)["Body"]


def _digest_stored(storage, key: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    body = _open_stored(storage, key)
    try:
        while chunk := body.read(MiB):
            digest.update(chunk)
            size += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size


async def stored_digest(storage, key: str) -> tuple[str, int]:
    """SHA-256 and size of what the store holds under `key`, read back in chunks."""
    return await asyncio.to_thread(_digest_stored, storage, key)


async def stored_bytes(storage, key: str) -> bytes:
    def read() -> bytes:
        body = _open_stored(storage, key)
        try:
            return body.read()
        finally:
            body.close()

    return await asyncio.to_thread(read)


def pdf_bytes(size: int = 4096) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size)


def key_for(user_id: uuid.UUID, filename: str, *, subject: str = "NLP") -> str:
    return document_key(user_id, semester="Y3S2", subject=subject, book="NLTK_Book", filename=filename)


class RecordingReader(io.BufferedReader):
    """A real file whose reads are recorded, to show a store copies it in chunks."""

    def __init__(self, path: Path) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.largest_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.largest_read = max(self.largest_read, len(data))
        return data


@pytest.fixture
def big_source(tmp_path):
    """A 20 MB file written in 1 MB chunks, opened for reading, and its SHA-256."""
    path = tmp_path / "big.pdf"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(20):
            chunk = (b"%PDF-1.7\n" if index == 0 else b"") + os.urandom(MiB)
            digest.update(chunk)
            out.write(chunk)
    with RecordingReader(path) as source:
        yield source, digest.hexdigest(), path.stat().st_size


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    return SAMPLE_PDF.read_bytes()


# --- both backends ------------------------------------------------------------------------------------


async def test_put_then_exists_and_read_back(storage):
    key = key_for(uuid.uuid4(), "chapter 1.pdf")
    data = pdf_bytes()
    source = io.BytesIO()
    source.write(data)
    source.seek(0)

    assert not await storage.exists(key)
    await storage.put(key, source, content_type="application/pdf")

    assert await storage.exists(key)
    assert await stored_bytes(storage, key) == data


async def test_put_reads_from_the_current_position(storage):
    key = key_for(uuid.uuid4(), "chapter 2.pdf")
    data = pdf_bytes()
    source = io.BytesIO(b"junk before the PDF" + data)
    source.seek(len(b"junk before the PDF"))

    await storage.put(key, source, content_type="application/pdf")

    assert await stored_bytes(storage, key) == data


async def test_put_replaces_an_existing_object(storage):
    key = key_for(uuid.uuid4(), "chapter 1.pdf")
    await storage.put(key, io.BytesIO(pdf_bytes()), content_type="application/pdf")
    newer = pdf_bytes()
    await storage.put(key, io.BytesIO(newer), content_type="application/pdf")

    assert await stored_bytes(storage, key) == newer
    assert await storage.list_keys(key.rsplit("/", 1)[0] + "/") == [key]


async def test_list_keys_returns_exactly_the_keys_under_a_prefix(storage):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alice_keys = [
        key_for(alice, "chapter 1.pdf"),
        key_for(alice, "chapter 2.pdf"),
        key_for(alice, "intro.pdf", subject="Logic"),
    ]
    bob_keys = [key_for(bob, "chapter 1.pdf"), key_for(bob, "other.pdf", subject="Logic")]
    for key in alice_keys + bob_keys:
        await storage.put(key, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")

    assert await storage.list_keys(user_prefix(alice)) == sorted(alice_keys)
    assert await storage.list_keys(user_prefix(bob)) == sorted(bob_keys)
    nlp = f"users/{alice}/raw_data/Y3S2/NLP/"
    assert await storage.list_keys(nlp) == sorted(alice_keys[:2])
    assert await storage.list_keys(user_prefix(uuid.uuid4())) == []


async def test_delete_removes_the_object_and_a_missing_key_is_not_an_error(storage):
    user = uuid.uuid4()
    key, kept = key_for(user, "chapter 1.pdf"), key_for(user, "chapter 2.pdf")
    for each in (key, kept):
        await storage.put(each, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")

    await storage.delete(key)

    assert not await storage.exists(key)
    assert await storage.exists(kept)
    assert await storage.list_keys(user_prefix(user)) == [kept]
    await storage.delete(key)  # already gone
    await storage.delete(key_for(uuid.uuid4(), "never stored.pdf"))


async def test_put_streams_a_large_file(storage, big_source):
    source, digest, size = big_source
    key = key_for(uuid.uuid4(), "big book.pdf")
    source.seek(0)

    await storage.put(key, source, content_type="application/pdf")

    assert await stored_digest(storage, key) == (digest, size)
    assert 0 < source.largest_read <= S3_PART < size  # copied in chunks, never read whole


async def test_document_key_layout(storage):
    user = uuid.uuid4()
    key = document_key(user, semester="Y3S2", subject="NLP", book="NLTK_Book", filename="chapter 1.pdf")
    assert key == f"users/{user}/raw_data/Y3S2/NLP/NLTK_Book/chapter 1.pdf"

    await storage.put(key, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")
    assert await storage.list_keys(user_prefix(user)) == [key]


# --- names and keys -----------------------------------------------------------------------------------


def test_document_key_keeps_only_the_base_name_of_a_client_path():
    user = uuid.uuid4()
    for sent in ("../../etc/passwd.pdf", "C:\\Users\\x\\..\\passwd.pdf", "/abs/dir/passwd.pdf"):
        key = document_key(user, semester="Y3S2", subject="NLP", book="NLTK_Book", filename=sent)
        assert key == f"users/{user}/raw_data/Y3S2/NLP/NLTK_Book/passwd.pdf"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("semester", ".."),
        ("semester", "."),
        ("subject", "a/b"),
        ("subject", "a\\b"),
        ("book", ""),
        ("book", "   "),
        ("semester", "x" * 65),
        ("subject", "x" * 65),
        ("book", "x" * 65),
    ],
)
def test_document_key_refuses_bad_folder_names(field, value):
    names = {"semester": "Y3S2", "subject": "NLP", "book": "NLTK_Book", field: value}
    with pytest.raises(InvalidName):
        document_key(uuid.uuid4(), **names, filename="chapter 1.pdf")


def test_document_key_accepts_64_character_names():
    user, name = uuid.uuid4(), "x" * 64
    key = document_key(user, semester=name, subject=name, book=name, filename="a.pdf")
    assert key == f"users/{user}/raw_data/{name}/{name}/{name}/a.pdf"


@pytest.mark.parametrize(
    "key", ["../x", "users/../../etc/passwd", "/etc/passwd", "../objects-next-door/users/x.pdf"]
)
async def test_local_storage_refuses_keys_that_leave_the_root(tmp_path, key):
    storage = LocalStorage(tmp_path / "objects")
    with pytest.raises(ValueError):
        storage.path(key)
    with pytest.raises(ValueError):
        await storage.exists(key)
    with pytest.raises(ValueError):
        await storage.put(key, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")
    assert not (tmp_path / "objects-next-door").exists()


def test_local_storage_path_stays_under_the_root(tmp_path):
    storage = LocalStorage(tmp_path / "objects")
    path = storage.path("users/u/raw_data/Y3S2/NLP/NLTK_Book/chapter 1.pdf")
    assert path == (tmp_path / "objects/users/u/raw_data/Y3S2/NLP/NLTK_Book/chapter 1.pdf").resolve()


# --- download URLs ------------------------------------------------------------------------------------


async def test_local_storage_has_no_download_url(tmp_path):
    storage = LocalStorage(tmp_path / "objects")
    key = key_for(uuid.uuid4(), "chapter 1.pdf")
    await storage.put(key, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")
    assert await storage.download_url(key, filename="chapter 1.pdf", expires=300) is None


async def test_s3_stores_the_content_type(s3_storage):
    key = key_for(uuid.uuid4(), "chapter 1.pdf")
    await s3_storage.put(key, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")
    head = s3_storage.client.head_object(Bucket=s3_storage.bucket, Key=key)
    assert head["ContentType"] == "application/pdf"


async def test_s3_download_url_is_presigned_inline_and_serves_the_pdf(s3_storage):
    key = key_for(uuid.uuid4(), "chapter 1.pdf")
    data = pdf_bytes()
    await s3_storage.put(key, io.BytesIO(data), content_type="application/pdf")

    url = await s3_storage.download_url(key, filename="chapter 1.pdf", expires=300)

    assert quote(key) in url
    assert "X-Amz-Expires=300" in url
    query = parse_qs(urlsplit(url).query)
    assert query["response-content-disposition"][0].startswith("inline")
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("inline")


async def test_app_built_s3_client_presigns_with_signature_v4(s3_endpoint, bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    settings = Settings(s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_region="us-east-1")
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    key = key_for(uuid.uuid4(), "chapter 1.pdf")
    await storage.put(key, io.BytesIO(pdf_bytes(64)), content_type="application/pdf")

    url = await storage.download_url(key, filename="chapter 1.pdf", expires=300)

    assert "X-Amz-Expires=300" in url


# --- through the app ----------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_upload_open_and_delete_through_the_app_with_s3(app, client, s3_storage, sample_pdf):
    working = app.state.storage
    app.state.storage = s3_storage
    try:
        alice = await register(client)
        alice_token = await bearer_token(client, alice["email"])
        folder = {"semester": "Y1S1", "subject": "Logic", "book": "forall x"}

        response = await client.post(
            "/api/upload",
            data=folder,
            files={"file": ("forallx_magnus.pdf", sample_pdf, "application/pdf")},
            headers=bearer(alice_token),
        )
        assert response.status_code == 201, response.text
        [uploaded] = response.json()["files"]
        assert uploaded["status"] == "queued"
        key = uploaded["key"]
        assert key == f"users/{alice['id']}/raw_data/Y1S1/Logic/forall x/forallx_magnus.pdf"
        assert await s3_storage.exists(key)
        assert await stored_digest(s3_storage, key) == (
            hashlib.sha256(sample_pdf).hexdigest(),
            len(sample_pdf),
        )
        document_id = uploaded["id"]

        opened = await client.get(f"/files/{document_id}/content", headers=bearer(alice_token))
        assert opened.status_code == 307
        location = opened.headers["location"]
        assert location.startswith(f"{s3_storage.client.meta.endpoint_url}/{s3_storage.bucket}/{quote(key)}?")
        assert "X-Amz-Expires=300" in location
        assert opened.headers["cache-control"] == "no-store"
        async with httpx.AsyncClient(trust_env=False) as http:
            fetched = await http.get(location)
        assert fetched.status_code == 200
        assert fetched.content == sample_pdf
        assert fetched.headers["content-type"] == "application/pdf"

        bob = await register(client, name="Bob")
        bob_token = await bearer_token(client, bob["email"])
        refused = await client.get(f"/files/{document_id}/content", headers=bearer(bob_token))
        assert refused.status_code == 404
        assert s3_storage.bucket not in refused.text and key not in refused.text
        refused = await client.delete(f"/api/files/{document_id}", headers=bearer(bob_token))
        assert refused.status_code == 404
        assert await s3_storage.exists(key)

        deleted = await client.delete(f"/api/files/{document_id}", headers=bearer(alice_token))
        assert deleted.status_code == 204
        assert not await s3_storage.exists(key)
        assert await s3_storage.list_keys(user_prefix(uuid.UUID(alice["id"]))) == []
        gone = await client.get(f"/files/{document_id}/content", headers=bearer(alice_token))
        assert gone.status_code == 404
    finally:
        app.state.storage = working
