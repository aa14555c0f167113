"""The dependency both chat surfaces (the API and the page's form) answer with."""

from typing import Annotated

from fastapi import Depends, Request

from app.chat.service import Answering
from app.deps import SettingsDep
from app.ingestion.embeddings import get_embedder


def answering(request: Request, settings: SettingsDep) -> Answering:
    state = request.app.state
    return Answering(
        sessionmaker=state.sessionmaker,
        embedder=get_embedder(settings, threads=settings.question_embedding_threads),
        embed_gate=state.embed_gate,
    )


AnsweringDep = Annotated[Answering, Depends(answering)]
