"""Chat as JSON (`POST /api/chat`), as a stream (`POST /api/chat/stream`, SSE), and conversations."""

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app import metrics
from app.api_errors import COMMON, errors
from app.chat import service
from app.chat.markdown import render_answer
from app.chat.retrieval import Scope
from app.db import release
from app.deps import SessionDep, SettingsDep, TenantDep
from app.ingestion.embeddings import get_embedder
from app.library.api import refuse_unknown
from app.security.rate_limit import rate_limit
from app.usage import service as usage


class EventStream(StreamingResponse):
    """Server-sent events (declared so the OpenAPI schema names the media type)."""

    media_type = "text/event-stream"


router = APIRouter(prefix="/api", tags=["chat"], responses=COMMON)


class ChatRequest(BaseModel):
    query: Annotated[str, Field(min_length=1, max_length=service.MAX_QUESTION)]
    active_semester: str | None = Field(default=None, max_length=64)
    active_subject: str | None = Field(default=None, max_length=64)
    active_books: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)
    conversation_id: uuid.UUID | None = None

    def scope(self) -> Scope:
        return Scope.parse(self.active_semester, self.active_subject, self.active_books)


class SourceOut(BaseModel):
    n: int
    document_id: uuid.UUID
    filename: str
    book: str
    semester: str
    subject: str
    page: int = Field(
        description="The cited unit, 1-based: a page of a PDF, a slide, a section or a chapter."
    )
    quote: str
    format: str = Field(
        default="pdf", description="The document's format: pdf, pptx, docx, epub, md, txt, html."
    )
    location: str = Field(
        default="", description='The unit in words: "p. 12", "slide 3", "section 2 “Methods”".'
    )
    deleted: bool = False


class ChatResponse(BaseModel):
    answer: str
    answer_html: str
    mode: str
    sources: list[SourceOut]
    conversation_id: uuid.UUID


class ConversationOut(BaseModel):
    id: uuid.UUID
    title: str


class MessageOut(BaseModel):
    role: str
    content: str
    content_html: str
    sources: list[SourceOut]


async def prepare_question(request: Request, session, tenant, settings, **question) -> service.Prepared:
    """Check the conversation on the request's session, give its connection back, then retrieve
    (short sessions of its own). Refusals (404, 409, 503) happen here, before any answer is sent."""
    await conversation_open_or_refuse(request, session, tenant, settings, question.get("conversation_id"))
    try:
        await usage.ensure_within_limits(session, tenant, settings)
    except usage.UsageLimitReached as exc:
        metrics.USAGE_LIMIT_REFUSALS.labels(exc.limit).inc()
        raise HTTPException(status_code=429, detail=exc.message) from None
    await release(session)
    return await service.prepare(
        request.app.state.sessionmaker,
        tenant,
        settings,
        get_embedder(settings, threads=settings.question_embedding_threads),
        embed_gate=request.app.state.embed_gate,
        **question,
    )


def _prepare(request: Request, session, tenant, settings, body: ChatRequest):
    return prepare_question(
        request,
        session,
        tenant,
        settings,
        question=body.query,
        scope=body.scope(),
        conversation_id=body.conversation_id,
    )


async def _check_conversation(request, session, tenant, conversation_id: uuid.UUID) -> None:
    try:
        await service.get_conversation(session, tenant, conversation_id)
    except service.ConversationNotFound:
        raise await refuse_unknown(
            request, session, tenant, action="chat.read", target=str(conversation_id)
        ) from None


async def conversation_open_or_refuse(request, session, tenant, settings, conversation_id) -> None:
    """A follow-up question needs the user's own conversation (404 otherwise, logged) with room left."""
    if conversation_id is None:
        return
    await _check_conversation(request, session, tenant, conversation_id)
    try:
        await service.ensure_room(session, tenant, conversation_id, settings.max_conversation_messages)
    except service.ConversationFull as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


async def delete_conversation_or_404(request: Request, session, tenant, conversation_id: uuid.UUID) -> None:
    try:
        await service.delete_conversation(session, tenant, conversation_id)
    except service.ConversationNotFound:
        raise await refuse_unknown(
            request, session, tenant, action="chat.delete", target=str(conversation_id)
        ) from None


@router.post(
    "/chat", response_model=ChatResponse, dependencies=[rate_limit("chat")], responses=errors(409, 429, 503)
)
async def chat(
    request: Request, session: SessionDep, tenant: TenantDep, settings: SettingsDep, body: ChatRequest
) -> ChatResponse:
    """Ask within a scope; the answer cites book and page, or says it is not in the library."""
    prepared = await _prepare(request, session, tenant, settings, body)
    final: dict = {}
    async for piece in service.answer(request.app.state.sessionmaker, tenant, settings, prepared):
        if isinstance(piece, dict):
            final = piece
    return ChatResponse(answer_html=render_answer(final["answer"]), **final)


STREAM_EVENTS = {
    200: {
        "description": "Server-sent events. `token`: data {text} as the answer is written; then `done`: "
        "data is the whole answer, as POST /api/chat returns it; or `failed`: data {error}.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": ["token", "done", "failed"]},
                        "data": {"type": "string", "contentMediaType": "application/json"},
                    },
                }
            }
        },
    },
    **errors(409, 429, 503),
}


@router.post(
    "/chat/stream", response_class=EventStream, dependencies=[rate_limit("chat")], responses=STREAM_EVENTS
)
async def chat_stream(
    request: Request, session: SessionDep, tenant: TenantDep, settings: SettingsDep, body: ChatRequest
) -> StreamingResponse:
    """The same, streamed as server-sent events: `token` events, then one `done` with the sources."""
    prepared = await _prepare(request, session, tenant, settings, body)
    asking = service.answer(request.app.state.sessionmaker, tenant, settings, prepared)

    async def events():
        try:
            async for piece in asking:
                if isinstance(piece, dict):
                    piece["answer_html"] = render_answer(piece["answer"])
                    yield f"event: done\ndata: {json.dumps(piece)}\n\n"
                else:
                    yield f"event: token\ndata: {json.dumps({'text': piece})}\n\n"
        except Exception:
            message = "The answer could not be completed; try again in a moment."
            yield f"event: failed\ndata: {json.dumps({'error': message})}\n\n"
            raise

    return EventStream(
        events(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/conversations", response_model=list[ConversationOut])
async def conversations(session: SessionDep, tenant: TenantDep) -> list[ConversationOut]:
    return [
        ConversationOut(id=c.id, title=c.title) for c in await service.list_conversations(session, tenant)
    ]


@router.get("/conversations/{conversation_id}", response_model=list[MessageOut])
async def conversation(
    request: Request, session: SessionDep, tenant: TenantDep, conversation_id: uuid.UUID
) -> list[MessageOut]:
    await _check_conversation(request, session, tenant, conversation_id)
    messages = await service.messages_of(session, tenant, conversation_id)
    await service.mark_deleted_sources(session, tenant, messages)
    return [
        MessageOut(
            role=m.role, content=m.content, content_html=render_answer(m.content), sources=m.sources or []
        )
        for m in messages
    ]


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    request: Request, session: SessionDep, tenant: TenantDep, conversation_id: uuid.UUID
) -> Response:
    await delete_conversation_or_404(request, session, tenant, conversation_id)
    return Response(status_code=204)
