"""Vectors of two spaces (model, or header embedded with each passage) are never searched together, and
the worker embeds the documents of another space again by itself, each under its owner."""

from sqlalchemy import text

from app.ingestion.embeddings import LocalEmbedder, vector_space
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student, text_pdf

CURRENT = LocalEmbedder.model_name  # the tests run with EMBEDDING_HEADERS=none
GLACIERS = text_pdf("A glacier moves by internal deformation of the ice and by basal sliding over meltwater.")
VOLCANOES = text_pdf("A volcano erupts when magma rises through the crust and gas pressure breaks the rock.")


def test_the_space_names_the_model_and_the_header():
    assert vector_space("all-MiniLM-L6-v2-int8", "none") == "all-MiniLM-L6-v2-int8"
    assert vector_space("all-MiniLM-L6-v2-int8", "outline") == "all-MiniLM-L6-v2-int8+outline"
    assert vector_space("all-MiniLM-L6-v2-int8", "book_outline") != vector_space(
        "all-MiniLM-L6-v2-int8", "outline"
    )


def _ask(student, question: str = "How does a glacier move?"):
    return student.client.post("/api/chat", json={"query": question}, headers=student.headers)


async def _spaces(superuser_engine, *document_ids: str) -> dict[str, tuple[str, str, int, set[str]]]:
    """Each document's (space, status, passages, owners of its passages), as stored."""
    async with superuser_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "select d.id::text, d.embedding_model, d.status::text, count(c.id),"
                    " array_remove(array_agg(distinct c.user_id::text), null)"
                    " from documents d left join chunks c on c.document_id = d.id"
                    " where d.id = any(cast(:ids as uuid[])) group by d.id"
                ),
                {"ids": list(document_ids)},
            )
        ).all()
    return {row[0]: (row[1], row[2], row[3], set(row[4])) for row in rows}


async def test_documents_of_another_space_are_not_searched_until_the_worker_embeds_them_again(
    client, services, superuser_engine, app_engine
):
    ada = await new_student(client)
    bob = await new_student(client, "Bob")
    glaciers = await ada.upload_one(("glaciers.pdf", GLACIERS), book="ice")
    volcanoes = await bob.upload_one(("volcanoes.pdf", VOLCANOES), book="fire")
    await run_worker_until_idle(services)
    before = await _spaces(superuser_engine, glaciers["id"], volcanoes["id"])
    assert before[glaciers["id"]][:2] == (CURRENT, "ready")
    asked = await _ask(ada)
    assert asked.json()["sources"][0]["filename"] == "glaciers.pdf"

    # As if both were embedded before the deployment changed its headers.
    async with superuser_engine.begin() as conn:
        await conn.execute(
            text("update documents set embedding_model = :old where id = any(cast(:ids as uuid[]))"),
            {"old": f"{CURRENT}+outline", "ids": [glaciers["id"], volcanoes["id"]]},
        )
    # The search reads this deployment's space only: Ada's book is not mixed in.
    stale = await _ask(ada)
    assert stale.json()["mode"] == "not_found" and stale.json()["sources"] == []
    # What the narrow path tells the app role: ids and owners, nothing of the documents themselves.
    async with app_engine.connect() as conn:
        listed = (await conn.execute(text(f"select * from documents_of_another_space('{CURRENT}')"))).all()
    assert {(str(d), str(u)) for d, u in listed} >= {(glaciers["id"], ada.id), (volcanoes["id"], bob.id)}
    assert all(len(row) == 2 for row in listed)

    # A worker starting (its reconciler) queues both and embeds them again, each under its owner.
    await run_worker_until_idle(services)
    after = await _spaces(superuser_engine, glaciers["id"], volcanoes["id"])
    assert after[glaciers["id"]] == (CURRENT, "ready", before[glaciers["id"]][2], {ada.id})
    assert after[volcanoes["id"]] == (CURRENT, "ready", before[volcanoes["id"]][2], {bob.id})
    again = await _ask(ada)
    assert [s["filename"] for s in again.json()["sources"]] == ["glaciers.pdf"]
    # Bob, asking of Ada's subject matter, finds only his own book, or nothing.
    bobs = await _ask(bob)
    assert {s["filename"] for s in bobs.json()["sources"]} <= {"volcanoes.pdf"}
