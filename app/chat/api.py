"""Chat as JSON (`POST /api/chat`), as a stream (`POST /api/chat/stream`, SSE), and conversations."""

import json
import uuid
from collections.abc import AsyncIterator, Awaitable

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.api_errors import COMMON, errors
from app.chat import service
from app.chat.deps import AnsweringDep
from app.chat.markdown import render_answer
from app.chat.schemas import Answered, ChatRequest, ChatResponse, ConversationOut, MessageOut, Source
from app.chat.sources import render_sources
from app.config import Settings
from app.deps import SessionDep, SettingsDep, TenantDep, rate_limit
from app.models.conversation import AnswerMode
from app.tenancy import Tenant


class EventStream(StreamingResponse):
    """Server-sent events (declared so the OpenAPI schema names the media type)."""

    media_type = "text/event-stream"


router = APIRouter(prefix="/api", tags=["chat"], responses=COMMON)


def _prepare(
    session: AsyncSession, answering: service.Answering, tenant: Tenant, settings: Settings, body: ChatRequest
) -> Awaitable[service.Prepared]:
    return service.prepare_question(
        session,
        answering,
        tenant,
        settings,
        question=body.query,
        scope=body.scope(),
        conversation_id=body.conversation_id,
        chapter=body.chapter(),
    )


def _response(request: Request, answered: Answered) -> ChatResponse:
    """The answer with its HTML, rendered once here from the page's own templates (chat.js shows it)."""
    return ChatResponse(
        **answered.model_dump(),
        answer_html=render_answer(answered.answer),
        sources_html=render_sources(request, answered.sources),
    )


@router.post(
    "/chat", response_model=ChatResponse, dependencies=[rate_limit("chat")], responses=errors(409, 429, 503)
)
async def chat(
    request: Request,
    session: SessionDep,
    answering: AnsweringDep,
    tenant: TenantDep,
    settings: SettingsDep,
    body: ChatRequest,
) -> ChatResponse:
    """Ask within a scope; the answer cites book and page, or says it is not in the library."""
    prepared = await _prepare(session, answering, tenant, settings, body)
    events = service.answer(answering.sessionmaker, tenant, settings, prepared)
    return _response(request, await service.final_answer(events))


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
    request: Request,
    session: SessionDep,
    answering: AnsweringDep,
    tenant: TenantDep,
    settings: SettingsDep,
    body: ChatRequest,
) -> StreamingResponse:
    """The same, streamed as server-sent events: `token` events, then one `done` with the sources."""
    prepared = await _prepare(session, answering, tenant, settings, body)
    asking = service.answer(answering.sessionmaker, tenant, settings, prepared)

    async def events() -> AsyncIterator[str]:
        try:
            async for event in asking:
                if isinstance(event, Answered):
                    yield f"event: done\ndata: {_response(request, event).model_dump_json()}\n\n"
                else:
                    yield f"event: token\ndata: {json.dumps({'text': event.text})}\n\n"
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
    session: SessionDep, tenant: TenantDep, conversation_id: uuid.UUID
) -> list[MessageOut]:
    await service.get_conversation(session, tenant, conversation_id)
    messages = await service.messages_of(session, tenant, conversation_id)
    await service.mark_deleted_sources(session, tenant, messages)
    return [
        MessageOut(
            role=m.role,
            content=m.content,
            content_html=render_answer(m.content),
            mode=AnswerMode(m.mode) if m.mode is not None else None,
            sources=[Source.model_validate(source) for source in m.sources or []],
        )
        for m in messages
    ]


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(session: SessionDep, tenant: TenantDep, conversation_id: uuid.UUID) -> Response:
    await service.delete_conversation(session, tenant, conversation_id)
    return Response(status_code=204)
