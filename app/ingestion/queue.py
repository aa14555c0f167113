"""Putting documents on the ingestion queue. The job id is the document's, so a document is queued once."""

import uuid


def job_id(document_id: uuid.UUID | str) -> str:
    return f"ingest:{document_id}"


async def enqueue_ingest(queue, document_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Queue `ingest_document`; False when that document's job is already queued or running."""
    job = await queue.enqueue_job(
        "ingest_document", str(document_id), str(user_id), _job_id=job_id(document_id)
    )
    return job is not None
