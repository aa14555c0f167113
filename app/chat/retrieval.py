"""Passages for a question, within the student's scope: pgvector, optionally fused with full text.

Full text (Postgres tsvector, any-word match) fused by reciprocal rank is available, but on the dev
set (`bench/qa.jsonl`, `studyrag eval --retrieval`) vector ranking alone did best: page hit@5 84.6 %
and MRR 0.645, against 76.9 % / 0.558 fused and 43.6 % / 0.342 for full text alone. So the default
is vector only (CHAT_RETRIEVAL=hybrid turns fusion on). Measured again on the enlarged dev set
(`bench/qa_dev.jsonl`, 49 answerable questions) with a real BM25 (k1 1.2, b 0.75, Snowball stems) in
place of Postgres' ranking: vector 85.7 % / 0.674, fused 79.6 % / 0.679, fused at half weight
79.6 % / 0.655; with 500-character passages 85.7 % / 0.690 at best. Lexical ranking does not lift
the right page into the top 5 here, so it is not fused; the lexicon serves the refusal instead
(`absent_terms`). The top k show distinct pages (`_distinct_pages`). The vector ranking weighs each
candidate's neighbouring passages (`neighbour_similarity`, NEIGHBOUR_WEIGHT), and the top k are
marked when they hold every term of the question (`mark_passages_holding_every_term`), for the refusal.

Vector search must return the scope's nearest passages under row-level security. The plan follows
the number of passages in the scope (from the documents' counts): up to EXACT_SCAN_LIMIT, an exact
scan of those rows through the (user_id, document_id) index — complete, ~2 µs a passage; above it,
the HNSW index of the tenant's bucket (16 partial indexes by the last byte of the user id, migration
0011), walked with `hnsw.iterative_scan` so the filter cannot starve it. One index over everyone's
passages served a large tenant badly: its rows were a small share of the walk. Measured with
bench/retrieval.py (1M passages over 1,000 tenants, one with 50,000; figures in its docstring).
"""

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.tenancy import Tenant

RRF_K = 60
CANDIDATES = 30
# The vector ranking orders the candidates by similarity + NEIGHBOUR_WEIGHT × their neighbours' mean
# similarity (`neighbour_similarity`): a passage inside a stretch of text about the question beats one
# that matches alone. Dev set (bench/qa_dev.jsonl, k = 5): page hit@1 55.1 % → 61.2 %, MRR 0.678 →
# 0.718, hit@5 87.8 % unchanged, the same at every weight from 0.2 (0.722) to 0.5 (0.727); 0.3 is the
# middle of that plateau. Refusal still reads the passage's own similarity.
NEIGHBOUR_WEIGHT = 0.3
EXACT_SCAN_LIMIT = 10_000  # passages in the scope; above this the search walks its bucket's HNSW index
# Tenants share an HNSW index per bucket of their ids (migration 0011): a partial index of ~1/16 of
# the passages, in which a large tenant's are a large share, so a filtered walk finds them quickly.
TENANT_BUCKETS = 16
# bench/retrieval.py, heavy tenant, recall@8 by ef_search: 200 0.944, 400 0.946-0.953, 600 0.959, 800 0.970
HNSW_EF_SEARCH = 600
_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class ChapterPages:
    """A chapter of one document as chat searches it: the passages that touch its pages."""

    document_id: uuid.UUID
    number: int
    title: str
    first_page: int
    last_page: int


@dataclass(frozen=True)
class Scope:
    semester: str | None = None
    subject: str | None = None
    books: tuple[str, ...] = ()  # book names, within the semester/subject
    document_ids: tuple[uuid.UUID, ...] = ()
    chapter: ChapterPages | None = None  # narrows the scope to a chapter of one document

    def within(self, chapter: ChapterPages) -> "Scope":
        """The scope of `chapter` alone: its document, whatever semester, subject or books were chosen."""
        return Scope(None, None, (), (chapter.document_id,), chapter)

    @classmethod
    def parse(
        cls, semester: str | None = None, subject: str | None = None, books: Iterable[object] | None = None
    ) -> "Scope":
        """`books` may hold book names or document ids (the API accepts either)."""
        names: list[str] = []
        ids: list[uuid.UUID] = []
        for item in books or []:
            try:
                ids.append(uuid.UUID(str(item)))
            except ValueError:
                names.append(str(item))
        return cls(semester or None, subject or None, tuple(names), tuple(ids))


@dataclass
class Passage:
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    semester: str
    subject: str
    book: str
    page_start: int
    page_end: int
    page_breaks: list[int]
    text: str
    format: str  # the document's format: its unit is a page, a slide, a section or a chapter
    sections: list[str]  # titles of the units page_start..page_end (empty for PDFs)
    ordinal: int  # its place in the document: the passages before and after it are its neighbours
    similarity: float = 0.0
    score: float = 0.0
    found_by: set[str] = field(default_factory=set)
    # The share of the question's term weight (idf within the scope) in words that occur nowhere in the
    # scope: the same for every passage of one search. `app.chat.answer.relevant` refuses on it.
    absent_weight: float = 0.0
    # The question's names (capitalised words inside a sentence, as lexemes) that occur nowhere in the
    # scope, the same for every passage of one search: "Kruskal" asked of a graph-theory book.
    absent_names: tuple[str, ...] = ()
    # Whether the passage holds every term of the question (Postgres lexemes, stop words dropped):
    # `app.chat.answer.relevant` answers a question below the similarity floor on it.
    holds_every_term: bool = False


def _document_sql(scope: Scope, params: dict[str, Any]) -> list[str]:
    """The conditions on `documents d` that put a document in the scope."""
    clauses = ["d.status = 'ready'", "d.embedding_model = :model"]
    if scope.semester:
        clauses.append("d.semester = :semester")
        params["semester"] = scope.semester
    if scope.subject:
        clauses.append("d.subject = :subject")
        params["subject"] = scope.subject
    chosen = []
    if scope.books:
        chosen.append("d.book = any(:books)")
        params["books"] = list(scope.books)
    if scope.document_ids:
        chosen.append("d.id = any(:document_ids)")
        params["document_ids"] = list(scope.document_ids)
    if chosen:  # exactly the chosen books, not "those or anything else"
        clauses.append("(" + " or ".join(chosen) + ")")
    return clauses


def _scope_sql(scope: Scope, params: dict[str, Any]) -> str:
    clauses = [*_document_sql(scope, params), "c.user_id = :user_id"]
    if scope.chapter:  # a passage that starts before the chapter or runs past it is in it too
        clauses += ["c.page_end >= :chapter_first", "c.page_start <= :chapter_last"]
        params["chapter_first"] = scope.chapter.first_page
        params["chapter_last"] = scope.chapter.last_page
    return " and ".join(clauses)


_COLUMNS = (
    "c.id, c.document_id, d.filename, d.semester, d.subject, d.book, c.page_start, c.page_end,"
    " c.page_breaks, c.text, d.format, c.sections, c.ordinal"
)
_NEAREST_COLUMNS = (
    "id, document_id, filename, semester, subject, book, page_start, page_end, page_breaks, text, format,"
    " sections, ordinal"
)
_FIELDS = 13  # the columns above, in Passage's order; a similarity follows them


def full_text_query(question: str) -> str | None:
    """Any of the question's words (stop words fall away in to_tsquery); None when there are none."""
    words = _WORD.findall(question.lower())[:40]
    return " | ".join(dict.fromkeys(words)) or None


async def scope_chunk_count(session: AsyncSession, tenant: Tenant, scope: Scope, *, model: str) -> int:
    """How many passages the search has to rank: from the documents' counts, not by counting chunks."""
    params: dict[str, Any] = {"user_id": tenant.user_id, "model": model}
    where = " and ".join(["d.user_id = :user_id", *_document_sql(scope, params)])
    total = await session.scalar(
        text(f"select coalesce(sum(d.chunk_count), 0) from documents d where {where}"), params
    )
    return int(total or 0)


async def plan_vector_search(session: AsyncSession, *, exact: bool) -> None:
    """For a large library: walk the HNSW index (iteratively, so the tenant filter cannot starve it)
    rather than sort the tenant's rows; the planner's estimates for filtered vector search are poor."""
    if not exact:
        await session.execute(text("set local hnsw.iterative_scan = relaxed_order"))
        await session.execute(text(f"set local hnsw.ef_search = {int(HNSW_EF_SEARCH)}"))
        await session.execute(text("set local enable_sort = off"))


def tenant_bucket(user_id: uuid.UUID) -> int:
    """The tenant's HNSW index; the same as the indexes' predicate computes in SQL."""
    return uuid.UUID(str(user_id)).bytes[15] % TENANT_BUCKETS


def bucket_sql(bucket: int) -> str:
    """The partial index's predicate, with the bucket as a literal: the planner proves the index
    applies only from a constant, not from a parameter."""
    return f"(get_byte(uuid_send(c.user_id), 15) % {TENANT_BUCKETS}) = {int(bucket)}"


def vector_sql(scope: Scope, params: dict[str, Any], *, exact: bool) -> str:
    """The nearest passages of the scope, best first, each with its cosine similarity.

    Exact: every passage of the scope is compared (found through the (user_id, document_id) index);
    ordering by the similarity, not by the distance operator, keeps the planner off the HNSW index.
    Approximate: the HNSW index of the tenant's bucket, walked in (relaxed) distance order until
    :limit rows of the scope pass; the candidates are then put in exact order.
    """
    distance = "c.embedding <=> cast(:vector as vector)"
    source = f"from chunks c join documents d on d.id = c.document_id where {_scope_sql(scope, params)}"
    if exact:
        similarity = f"1 - ({distance}) as similarity"
        return f"select {_COLUMNS}, {similarity} {source} order by similarity desc limit :limit"
    source += " and " + bucket_sql(tenant_bucket(params["user_id"]))
    return (
        f"with nearest as materialized (select {_COLUMNS}, {distance} as distance {source}"
        " order by distance limit :limit)"
        # `+ 0`: a sort of its own, or the planner would take the relaxed order as already sorted.
        f" select {_NEAREST_COLUMNS}, 1 - distance as similarity from nearest order by distance + 0"
    )


def _distinct_pages(ranked: list[Passage], k: int) -> list[Passage]:
    """The first k passages that each show a page not shown yet: a page's neighbouring passages (the
    splitter's overlap, a running header, a short paragraph) do not take two of the k places.

    Dev set (bench/qa_dev.jsonl, vector, k = 5): page hit@5 85.7 % → 87.8 %, MRR 0.674 → 0.678.
    """
    shown: set[tuple[uuid.UUID, int]] = set()
    best = []
    for passage in ranked:
        pages = {(passage.document_id, n) for n in range(passage.page_start, passage.page_end + 1)}
        if pages <= shown:
            continue
        shown |= pages
        best.append(passage)
        if len(best) == k:
            break
    return best


_NEIGHBOURS_SQL = """
select c.document_id, c.ordinal, 1 - (c.embedding <=> cast(:vector as vector))
from chunks c
join unnest(cast(:documents as uuid[]), cast(:ordinals as integer[])) as n(document_id, ordinal)
    on c.document_id = n.document_id and c.ordinal = n.ordinal
where c.user_id = :user_id and c.embedding is not null
"""


async def neighbour_similarity(
    session: AsyncSession, tenant: Tenant, candidates: list[Passage], vector: str
) -> dict[int, float]:
    """Each candidate's neighbours' mean similarity to the question: the passages just before and after
    it in its document (whatever the scope), or its own similarity when it has none. One query, through
    the (document_id, ordinal) index, under the tenant's row-level security."""
    wanted = {(p.document_id, p.ordinal + step) for p in candidates for step in (-1, 1)}
    params: dict[str, Any] = {
        "user_id": tenant.user_id,
        "vector": vector,
        "documents": [document_id for document_id, _ in wanted],
        "ordinals": [ordinal for _, ordinal in wanted],
    }
    rows = (await session.execute(text(_NEIGHBOURS_SQL), params)).all()
    found = {(row[0], row[1]): float(row[2]) for row in rows}
    means = {}
    for passage in candidates:
        keys = [(passage.document_id, passage.ordinal + step) for step in (-1, 1)]
        near = [found[key] for key in keys if key in found]
        means[passage.chunk_id] = sum(near) / len(near) if near else passage.similarity
    return means


_EVERY_TERM_SQL = """
select c.id from chunks c
where c.user_id = :user_id and c.id = any(:ids) and numnode(plainto_tsquery('english', :question)) > 0
    and c.tsv @@ plainto_tsquery('english', :question)
"""


async def mark_passages_holding_every_term(
    session: AsyncSession, tenant: Tenant, question: str, passages: list[Passage]
) -> None:
    """Set `holds_every_term` on the passages whose full-text vector has each of the question's terms."""
    params = {"user_id": tenant.user_id, "ids": [p.chunk_id for p in passages], "question": question}
    holding = set((await session.scalars(text(_EVERY_TERM_SQL), params)).all())
    for passage in passages:
        passage.holds_every_term = passage.chunk_id in holding


_TERMS_SQL = """
with terms as (
    select distinct lexeme from unnest(tsvector_to_array(to_tsvector('english', :question))) lexeme
    where strpos(lexeme, '-') = 0 and strpos(lexeme, E'\\\\') = 0
)
select t.lexeme, (
    select coalesce(sum(t2.passages), 0) from document_terms t2 join documents d on d.id = t2.document_id
    where {scope} and t2.user_id = :user_id and t2.lexeme = t.lexeme
), t.lexeme = any(tsvector_to_array(to_tsvector('english', :names))) from terms t
"""
# A capitalised word that does not open a sentence or a quotation: a name, or a term the question
# spells as one ("Kruskal's algorithm", "Laplace smoothing", "Marcus", "Python").
_NAME = re.compile(r"(?<![.!?:;]\s)(?<![\w'‘’\"“])(?<!^)\b[A-Z][a-z]{2,}")


def question_names(question: str) -> list[str]:
    """The question's capitalised words, except the first of each sentence and of each quotation."""
    return [match.group() for match in _NAME.finditer(question.strip())]


@dataclass(frozen=True)
class Absence:
    """What of the question the scope never uses: its share of the term weight, and its names."""

    weight: float
    names: tuple[str, ...]


async def absent_terms(
    session: AsyncSession,
    tenant: Tenant,
    *,
    question: str,
    model: str,
    scope: Scope,
    total: int | None = None,
) -> Absence:
    """The share of the question's weight in terms that no passage of the scope holds, and the
    question's names (`question_names`, as lexemes) among those terms.

    Terms are Postgres' English lexemes of the question (stop words dropped, stemmed; a hyphenated
    compound such as 'five-word' is left out, its parts count), each weighed by
    its BM25 idf among the scope's `total` passages, ln(1 + (N - df + 0.5) / (df + 0.5)): a term found
    nowhere weighs most. The passage counts come from `document_terms` (written with the passages), a
    lookup per term and document under the tenant's row-level security: 25 ms a question for one book
    by reading the passages, 1.5–2.4 s for a 50,000-passage library, before that table.
    """
    params: dict[str, Any] = {
        "user_id": tenant.user_id,
        "model": model,
        "question": question,
        "names": " ".join(question_names(question)),
    }
    where = " and ".join(_document_sql(scope, params))
    rows = (await session.execute(text(_TERMS_SQL.format(scope=where)), params)).all()
    if total is None:
        total = await scope_chunk_count(session, tenant, scope, model=model)
    weights = [(math.log(1 + (total - df + 0.5) / (df + 0.5)), df) for _, df, _ in rows]
    whole = sum(weight for weight, _ in weights)
    share = sum(weight for weight, df in weights if df == 0) / whole if whole else 0.0
    return Absence(share, tuple(sorted(lexeme for lexeme, df, name in rows if name and df == 0)))


async def retrieve(
    session: AsyncSession,
    tenant: Tenant,
    *,
    question: str,
    query_vector: list[float],
    model: str,
    scope: Scope,
    k: int = 5,
    methods: tuple[str, ...] = ("vector",),
) -> list[Passage]:
    """The k best passages by reciprocal rank fusion of vector and full-text rankings.

    `methods` narrows it to one ranking, for `studyrag eval --retrieval` to measure what each adds.
    Similarities are always computed, since they decide whether the library holds an answer at all.
    """
    params: dict[str, Any] = {
        "user_id": tenant.user_id,
        "model": model,
        "limit": CANDIDATES,
        "vector": str(query_vector),
    }
    total = await scope_chunk_count(session, tenant, scope, model=model)
    exact = total <= EXACT_SCAN_LIMIT
    by_id: dict[int, Passage] = {}
    await plan_vector_search(session, exact=exact)
    rows = (await session.execute(text(vector_sql(scope, params, exact=exact)), params)).all()
    await session.execute(text("set local enable_sort = on"))
    similarities = {row[0]: float(row[_FIELDS]) for row in rows}
    candidates = [Passage(*row[:_FIELDS]) for row in rows]
    for candidate in candidates:
        candidate.similarity = similarities[candidate.chunk_id]
    if "vector" in methods and candidates:
        near = await neighbour_similarity(session, tenant, candidates, params["vector"])
        candidates.sort(key=lambda p: p.similarity + NEIGHBOUR_WEIGHT * near[p.chunk_id], reverse=True)
    for rank, candidate in enumerate(candidates if "vector" in methods else []):
        passage = by_id.setdefault(candidate.chunk_id, candidate)
        passage.score += 1 / (RRF_K + rank + 1)
        passage.found_by.add("vector")

    if "text" in methods and (tsquery := full_text_query(question)):
        fts_params = {**params, "tsquery": tsquery}
        fts_params.pop("vector")
        scope_sql = _scope_sql(scope, fts_params)
        rows = (
            await session.execute(
                text(
                    f"select {_COLUMNS} from chunks c join documents d on d.id = c.document_id,"
                    " to_tsquery('english', :tsquery) query"
                    f" where {scope_sql} and c.tsv @@ query"
                    " order by ts_rank_cd(c.tsv, query) desc limit :limit"
                ),
                fts_params,
            )
        ).all()
        for rank, row in enumerate(rows):
            passage = by_id.setdefault(row[0], Passage(*row[:_FIELDS]))
            passage.score += 1 / (RRF_K + rank + 1)
            passage.found_by.add("text")
    for passage in by_id.values():
        passage.similarity = similarities.get(passage.chunk_id, 0.0)
    best = _distinct_pages(sorted(by_id.values(), key=lambda p: p.score, reverse=True), k)
    if best and "vector" not in methods:
        # Keep the relevance signal of the vector ranking even when only full text ranks.
        best[0].similarity = max(best[0].similarity, max(similarities.values(), default=0.0))
    if best:
        absent = await absent_terms(session, tenant, question=question, model=model, scope=scope, total=total)
        for passage in best:
            passage.absent_weight = absent.weight
            passage.absent_names = absent.names
        await mark_passages_holding_every_term(session, tenant, question, best)
    return best
