"""`studyrag eval SET.jsonl --user EMAIL [--k 5]`: how well retrieval (and answering) does on a question set.

Two sets live in bench/: `qa_dev.jsonl` to tune on, and `qa_test.jsonl`, written before any tuning,
to report on only. Each line: {"question", "book" (file name or null), "pages" ([1-based physical
pages] or []), "answer"}, and optionally:
- "scope_books": the file names the question is asked of. Retrieval is limited to those books, as a
  student choosing them on the chat page, and the answer must cite nothing else.
- "scope": true for a scope question (a term two books define differently, asked of one of them).
- "near_book": on an off-library line, the book it is a hard negative for (close to its content).
A line with no pages is one the library cannot answer: it should be refused.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import answer as answers
from app.chat.retrieval import Passage, Scope, retrieve
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.embedded import ServiceUrls
from app.ingestion.embeddings import get_embedder, vector_space
from app.models import Document
from app.models.conversation import AnswerMode
from app.models.user import user_columns
from app.tenancy import Tenant, bind_tenant


@dataclass
class Outcome:
    """What happened to one question."""

    question: str
    book: str | None  # the book that answers it; None off-library
    rank: int | None  # 1-based rank of the first passage on a listed page; None: not in the top k
    refused: bool
    cited: tuple[str, ...] = ()  # file names of the passages the answer cites (none when refused)
    scope_books: tuple[str, ...] = ()
    near_book: str | None = None

    @property
    def answerable(self) -> bool:
        return self.book is not None

    @property
    def cites_only_scope(self) -> bool:
        """It cites something, and every cited passage is from a named book."""
        return bool(self.cited) and all(filename in self.scope_books for filename in self.cited)


@dataclass(frozen=True)
class BookFigures:
    book: str
    questions: int
    hits_at_1: int
    hits: int  # within the top k
    mrr: float


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Report:
    k: int
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def answerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.answerable]

    @property
    def off_library(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.answerable]

    def hits_at(self, n: int) -> int:
        return sum(o.rank is not None and o.rank <= n for o in self.answerable)

    def hit_rate_at(self, n: int) -> float | None:
        return _ratio(self.hits_at(n), len(self.answerable))

    @property
    def mrr(self) -> float | None:
        ranks = [1 / o.rank if o.rank else 0.0 for o in self.answerable]
        return sum(ranks) / len(ranks) if ranks else None

    @property
    def wrongly_refused(self) -> int:
        """Answerable questions that were refused."""
        return sum(o.refused for o in self.answerable)

    @property
    def refusals(self) -> int:
        return sum(o.refused for o in self.outcomes)

    @property
    def rightly_refused(self) -> int:
        """Off-library questions that were refused: the refusals that were right."""
        return sum(o.refused for o in self.off_library)

    @property
    def refusal_precision(self) -> float | None:
        return _ratio(self.rightly_refused, self.refusals)

    @property
    def refusal_recall(self) -> float | None:
        return _ratio(self.rightly_refused, len(self.off_library))

    @property
    def hard_negatives(self) -> list[Outcome]:
        return [o for o in self.off_library if o.near_book]

    @property
    def scoped(self) -> list[Outcome]:
        """Answerable questions asked of named books."""
        return [o for o in self.answerable if o.scope_books]

    @property
    def scope_correct(self) -> int:
        return sum(o.cites_only_scope for o in self.scoped)

    @property
    def misses(self) -> list[str]:
        return [o.question for o in self.answerable if o.rank is None]

    def per_book(self) -> list[BookFigures]:
        figures = []
        for book in sorted({o.book for o in self.answerable if o.book is not None}):  # all have one
            mine = Report(self.k, [o for o in self.answerable if o.book == book])
            mrr = mine.mrr or 0.0  # never None: the book has questions
            figures.append(BookFigures(book, len(mine.outcomes), mine.hits_at(1), mine.hits_at(self.k), mrr))
        return figures


def first_hit(passages: list[Passage], book: str | None, pages: list[int]) -> int | None:
    """1-based rank of the first passage from the right book whose pages include a listed page."""
    for rank, passage in enumerate(passages, start=1):
        right_book = book is None or passage.filename == book
        if right_book and any(passage.page_start <= page <= passage.page_end for page in pages):
            return rank
    return None


def read_question_set(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def _documents_by_filename(session: AsyncSession) -> dict[str, list[uuid.UUID]]:
    by_name: dict[str, list[uuid.UUID]] = {}
    for document_id, filename in await session.execute(select(Document.id, Document.filename)):
        by_name.setdefault(filename, []).append(document_id)
    return by_name


def _scope_of(item: dict[str, Any], documents: dict[str, list[uuid.UUID]], email: str) -> Scope:
    names = item.get("scope_books") or []
    if missing := [name for name in names if name not in documents]:
        raise ValueError(
            f"The library of {email} has no {', '.join(missing)} (named by: {item['question']})."
        )
    return Scope(document_ids=tuple(i for name in names for i in documents[name]))


async def evaluate(
    urls: ServiceUrls,
    settings: Settings,
    *,
    lines: list[dict[str, Any]],
    email: str,
    k: int,
    methods: tuple[str, ...],
) -> Report:
    embedder = get_embedder(settings, threads=settings.question_embedding_threads)
    engine = make_engine(urls.app_database_url)
    report = Report(k)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            user_id = await session.scalar(
                select(user_columns.id).where(func.lower(user_columns.email) == email.lower())
            )
            if user_id is None:
                raise ValueError(f"No account with the email {email}.")
            tenant = Tenant(user_id)
            await bind_tenant(session, tenant)
            documents = await _documents_by_filename(session)
            for item in lines:
                question = item["question"]
                scope = _scope_of(item, documents, email)
                vector = await asyncio.to_thread(embedder.embed_query, question)
                passages = await retrieve(
                    session,
                    tenant,
                    question=question,
                    query_vector=vector,
                    model=vector_space(embedder.model_name, settings.embedding_headers),
                    scope=scope,
                    k=k,
                    methods=methods,
                )
                refused = not answers.relevant(passages, settings)
                cited = () if refused else tuple(p.filename for p in passages)  # extractive: all are cited
                if not refused and settings.openai_api_key is not None:
                    final = await answers.generate_whole(settings, question, passages, scope)
                    refused = final.mode == AnswerMode.NOT_FOUND
                    cited = tuple(source.filename for source in final.sources)
                book = item.get("book") if item.get("pages") else None
                report.outcomes.append(
                    Outcome(
                        question=question,
                        book=book,
                        rank=first_hit(passages, book, item["pages"]) if book else None,
                        refused=refused,
                        cited=cited,
                        scope_books=tuple(item.get("scope_books") or ()),
                        near_book=item.get("near_book"),
                    )
                )
    finally:
        await engine.dispose()
    return report
