"""The dependency both chat surfaces (the API and the page's form) answer with."""

from typing import Annotated

from fastapi import Depends, Request

from app.chat.service import Answering


def answering(request: Request) -> Answering:
    state = request.app.state
    return Answering(
        sessionmaker=state.sessionmaker,
        embedder=state.question_embedder,  # built once, in the lifespan (app/main.py)
        embed_gate=state.embed_gate,
    )


AnsweringDep = Annotated[Answering, Depends(answering)]
