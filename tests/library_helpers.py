"""Factories for library tests: users with tokens, and uploads of real corpus files."""

from pathlib import Path

import httpx

from tests.conftest import bearer_token, new_email, register

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
BOOKS = CORPUS / "books"
BAD = CORPUS / "bad"


class Student:
    def __init__(self, client: httpx.AsyncClient, user: dict, token: str) -> None:
        self.client, self.user, self.token = client, user, token
        self.id = user["id"]
        self.headers = {"Authorization": f"Bearer {token}"}

    async def upload(
        self,
        *files: tuple[str, bytes] | Path,
        semester: str = "Y1S1",
        subject: str = "Logic",
        book: str = "forallx",
    ) -> httpx.Response:
        parts = []
        for item in files:
            name, data = (item.name, item.read_bytes()) if isinstance(item, Path) else item
            parts.append(("file", (name, data, "application/pdf")))
        return await self.client.post(
            "/api/upload",
            data={"semester": semester, "subject": subject, "book": book},
            files=parts,
            headers=self.headers,
        )

    async def upload_one(self, item, **folder) -> dict:
        response = await self.upload(item, **folder)
        assert response.status_code == 201, response.text
        (result,) = response.json()["files"]
        assert result["status"] == "queued", result
        return result

    async def get(self, url: str, headers: dict | None = None, **kwargs) -> httpx.Response:
        return await self.client.get(url, headers={**self.headers, **(headers or {})}, **kwargs)

    async def delete(self, url: str, headers: dict | None = None, **kwargs) -> httpx.Response:
        return await self.client.delete(url, headers={**self.headers, **(headers or {})}, **kwargs)


async def new_student(client: httpx.AsyncClient, name: str = "Ada") -> Student:
    email = new_email()
    user = await register(client, email, name=name)
    return Student(client, user, await bearer_token(client, email))


def pdf_bytes(text: str = "hello") -> bytes:
    """A tiny, distinct, valid-looking PDF (distinct content gives a distinct SHA-256)."""
    return b"%PDF-1.4\n% " + text.encode() + b"\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
