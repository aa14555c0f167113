"""Factories for library tests: users with tokens, and uploads of real corpus files."""

from pathlib import Path

import httpx

from tests.support.accounts import bearer_token, new_email, register


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


def text_pdf(*pages: str) -> bytes:
    """A real PDF (Helvetica text, one string per page) that pdfium extracts text from."""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        None,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    kids = []
    for text in pages:
        lines = [text[i : i + 90] for i in range(0, len(text), 90)] or [""]
        stream = "BT /F1 10 Tf 40 800 Td 12 TL " + " ".join(f"({escape(line)}) '" for line in lines) + " ET"
        objects.append(f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {len(objects)} 0 R"
            " /Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    return pdf_of(objects)


def pdf_of(objects: list[str]) -> bytes:
    """A PDF file of these objects (numbered from 1, the first the catalog), with its xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
