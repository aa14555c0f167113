"""`studyrag eval QA.jsonl --user EMAIL [--k 5]`: how well retrieval (and answering) does on a dev set.

Each line: {"question", "book" (file name or null), "pages" ([1-based physical pages] or []), "answer"}.
A line with no pages is one the library cannot answer: it should be refused.
"""

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from app.chat import answer as answers
from app.chat.retrieval import Passage, Scope, retrieve
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.embedded import ServiceUrls
from app.ingestion.embeddings import get_embedder
from app.models import User
from app.tenancy import Tenant, bind_tenant


@dataclass
class Report:
    answerable: int = 0
    hits: int = 0
    reciprocal_ranks: float = 0.0
    wrongly_refused: int = 0
    unanswerable: int = 0
    refused: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.answerable if self.answerable else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.answerable if self.answerable else 0.0


def first_hit(passages: list[Passage], book: str | None, pages: list[int]) -> int | None:
    """1-based rank of the first passage from the right book whose pages include a listed page."""
    for rank, passage in enumerate(passages, start=1):
        right_book = book is None or passage.filename == book
        if right_book and any(passage.page_start <= page <= passage.page_end for page in pages):
            return rank
    return None


def read_dev_set(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def evaluate(
    urls: ServiceUrls, settings: Settings, *, lines: list[dict], email: str, k: int, methods: tuple[str, ...]
) -> Report:
    embedder = get_embedder(settings)
    engine = make_engine(urls.app_database_url)
    report = Report()
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            user_id = await session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
            if user_id is None:
                raise ValueError(f"No account with the email {email}.")
            tenant = Tenant(user_id)
            await bind_tenant(session, tenant)
            for item in lines:
                question = item["question"]
                vector = await asyncio.to_thread(embedder.embed_query, question)
                passages = await retrieve(
                    session,
                    tenant,
                    question=question,
                    query_vector=vector,
                    model=embedder.model_name,
                    scope=Scope(),
                    k=k,
                    methods=methods,
                )
                refused = not answers.relevant(passages, settings)
                if not refused and settings.openai_api_key is not None:
                    final = None
                    async for piece in answers.generate(settings, question, passages, [], Scope()):
                        final = piece
                    refused = final.mode == "not_found"
                if item.get("pages"):
                    report.answerable += 1
                    rank = first_hit(passages, item.get("book"), item["pages"])
                    if rank:
                        report.hits += 1
                        report.reciprocal_ranks += 1 / rank
                    else:
                        report.misses.append(question)
                    report.wrongly_refused += refused
                else:
                    report.unanswerable += 1
                    report.refused += refused
    finally:
        await engine.dispose()
    return report
