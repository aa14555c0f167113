"""The plan's API contract, spoken beside ours: `book_id` on upload, `success`/`s3_key`/`job_id`/`status`
in its answer, `progress`/`total` on jobs. The plan's example flow runs exactly as it is written there."""

import asyncio
import time

from app.ingestion.api import STATUS_MEANINGS
from app.models.document import DOCUMENT_STATUSES, DocumentStatus
from tests.support.ingestion import TERMINAL, run_worker_until_idle
from tests.support.library import new_student, pdf_bytes, text_pdf

PAGES = (
    "Photosynthesis takes place in the chloroplasts of plant cells. Light energy splits water, "
    "releasing oxygen, and the Calvin cycle fixes carbon dioxide into sugar.",
    "Mitochondria are the powerhouse of the cell: cellular respiration in the mitochondria turns "
    "glucose and oxygen into ATP, the energy currency the cell spends.",
    "Ribosomes read messenger RNA and join amino acids into proteins, following the genetic code.",
)


async def _poll_job(student, job_id: str, seconds: float = 120) -> tuple[dict, list[dict]]:
    """`GET /api/jobs/{job_id}` until the job is done, as the plan's client does; every answer seen."""
    seen, deadline = [], time.monotonic() + seconds
    while True:
        response = await student.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        seen.append(job)
        if job["status"] in TERMINAL:
            return job, seen
        assert time.monotonic() < deadline, f"still waiting: {job}"
        await asyncio.sleep(0.05)


async def test_the_plans_example_flow(client, services):
    ada = await new_student(client)

    # Upload with the plan's field names: semester, subject, book_id, file.
    response = await client.post(
        "/api/upload",
        data={"semester": "Sem1", "subject": "Biology", "book_id": "Campbell"},
        files={"file": ("cells.pdf", text_pdf(*PAGES), "application/pdf")},
        headers=ada.headers,
    )
    assert response.status_code == 201, response.text
    upload = response.json()
    assert upload["success"] is True
    assert upload["status"] == "queued"
    assert upload["s3_key"] == f"users/{ada.id}/raw_data/Sem1/Biology/Campbell/cells.pdf"
    job_id = upload["job_id"]
    # Today's answer is still there, and names the same file and job.
    (stored,) = upload["files"]
    assert stored["key"] == upload["s3_key"] and stored["job_id"] == stored["id"] == job_id
    assert stored["status"] == "queued" and stored["filename"] == "cells.pdf"

    # Poll the job until it is done, while a real worker ingests it.
    worker = asyncio.create_task(run_worker_until_idle(services))
    try:
        job, seen = await _poll_job(ada, job_id)
    finally:
        await worker
    assert job["status"] == "ready", job
    assert job["progress"] == job["total"] == len(PAGES)
    assert job["id"] == job_id and job["error"] is None and job["passages"] > 0
    for answer in seen:
        assert answer["status"] in DOCUMENT_STATUSES
        assert answer["progress"] == answer["pages_done"] and answer["total"] == answer["page_count"]
        assert answer["total"] is None or 0 <= answer["progress"] <= answer["total"]

    # List files by semester.
    response = await ada.get("/api/files", params={"semester": "Sem1"})
    assert response.status_code == 200, response.text
    (listed,) = response.json()
    assert listed["key"] == upload["s3_key"]
    assert (listed["semester"], listed["subject"], listed["book"]) == ("Sem1", "Biology", "Campbell")
    assert listed["id"] == job_id and listed["filename"] == "cells.pdf" and listed["status"] == "ready"
    assert (await ada.get("/api/files", params={"semester": "Sem2"})).json() == []

    # Ask a question in that book.
    response = await client.post(
        "/api/chat",
        json={
            "query": "What is the powerhouse of the cell?",
            "active_semester": "Sem1",
            "active_subject": "Biology",
            "active_books": ["Campbell"],
        },
        headers=ada.headers,
    )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["answer"] and reply["sources"], reply
    assert {source["book"] for source in reply["sources"]} == {"Campbell"}
    assert reply["sources"][0]["page"] == 2 and "Mitochondria" in reply["sources"][0]["quote"]

    # Health, as the plan documents it.
    health = (await client.get("/api/health")).json()
    assert (health["status"], health["storage"], health["vectordb"]) == ("ok", "local", "pgvector")


async def test_several_files_each_carry_their_key_and_job_and_success_says_if_all_were_stored(client):
    ada = await new_student(client)
    folder = {"semester": "Sem1", "subject": "Biology", "book_id": "Notes"}
    files = [("file", (f"{name}.pdf", pdf_bytes(name), "application/pdf")) for name in ("one", "two")]
    response = await client.post("/api/upload", data=folder, files=files, headers=ada.headers)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["success"] is True
    assert "s3_key" not in answer and "job_id" not in answer  # those name one file
    for entry, name in zip(answer["files"], ("one", "two"), strict=True):
        assert entry["key"] == f"users/{ada.id}/raw_data/Sem1/Biology/Notes/{name}.pdf"
        assert entry["job_id"] == entry["id"]
        assert (await ada.get(f"/api/jobs/{entry['job_id']}")).json()["status"] == "queued"

    files = [
        ("file", ("three.pdf", pdf_bytes("three"), "application/pdf")),
        ("file", ("notes.pdf", b"plain text, not a PDF", "application/pdf")),
    ]
    response = await client.post("/api/upload", data=folder, files=files, headers=ada.headers)
    assert response.status_code == 201, response.text  # one file was stored
    answer = response.json()
    assert answer["success"] is False
    stored, refused = answer["files"]
    assert stored["job_id"] == stored["id"] and stored["key"].endswith("/Notes/three.pdf")
    assert refused["status"] == "rejected" and refused["code"] == "not_pdf"
    assert "key" not in refused and "job_id" not in refused


async def test_one_refused_file_answers_success_false_with_its_reason(client):
    ada = await new_student(client)
    response = await client.post(
        "/api/upload",
        data={"semester": "Sem1", "subject": "Biology", "book_id": "Notes"},
        files={"file": ("notes.pdf", b"plain text, not a PDF", "application/pdf")},
        headers=ada.headers,
    )
    assert response.status_code == 415, response.text
    answer = response.json()
    assert (answer["success"], answer["status"], answer["s3_key"], answer["job_id"]) == (
        False,
        "rejected",
        None,
        None,
    )
    assert answer["files"][0]["code"] == "not_pdf"


async def test_book_and_book_id_are_one_field(client):
    ada = await new_student(client)

    async def upload(name: str, **folder: str):
        data = {"semester": "Sem1", "subject": "Biology", **folder}
        file = {"file": (f"{name}.pdf", pdf_bytes(name), "application/pdf")}
        return await client.post("/api/upload", data=data, files=file, headers=ada.headers)

    response = await upload("both", book="Ours", book_id="Plans")
    assert response.status_code == 201, response.text
    assert response.json()["s3_key"].endswith("/Biology/Ours/both.pdf")  # `book` wins
    response = await upload("neither")
    assert response.status_code == 400
    assert "book name" in response.json()["detail"]
    response = await upload("bad", book_id="../../etc")  # validated like `book`
    assert response.status_code == 400
    assert "book name" in response.json()["detail"]


async def test_the_schema_documents_both_names_progress_total_and_every_status(client):
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    body = schema["paths"]["/api/upload"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = components[body["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert {"semester", "subject", "book", "book_id", "file"} <= set(form)
    assert "book_id" in form["book"]["description"] and "book" in form["book_id"]["description"]
    upload = components["UploadResponse"]["properties"]
    assert {"success", "s3_key", "job_id", "status", "files"} <= set(upload)
    assert "job_id" in components["UploadedFile"]["properties"]

    job = components["JobStatus"]
    assert {"progress", "total", "status", "pages_done", "page_count"} <= set(job["required"])
    status = job["properties"]["status"]
    statuses = components[status["$ref"].rsplit("/", 1)[-1]]
    assert tuple(statuses["enum"]) == DOCUMENT_STATUSES == tuple(STATUS_MEANINGS)
    assert tuple(DocumentStatus) == DOCUMENT_STATUSES
    for name, meaning in STATUS_MEANINGS.items():
        assert f"`{name}`: {meaning}" in status["description"]
