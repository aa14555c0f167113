"""The chat page: conversation history, scope pickers, messages with source chips, a PDF pane.

chat.js streams answers from `/api/chat/stream`; without JavaScript the question form posts here and
the page reloads with the answer.
"""

import uuid
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import service
from app.chat.deps import AnsweringDep
from app.chat.markdown import render_answer
from app.chat.retrieval import Scope
from app.chat.schemas import MAX_QUESTION
from app.config import Settings
from app.deps import CurrentUser, SessionDep, SettingsDep, TenantDep, rate_limit
from app.exceptions import InvalidInput
from app.models import Conversation, Message, User
from app.models.conversation import AnswerMode
from app.templating import is_htmx, templates
from app.tenancy import Tenant

router = APIRouter(include_in_schema=False)


def _message_view(message: Message) -> dict[str, Any]:
    view: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant":
        sources = message.sources or []
        view["html"] = render_answer(message.content)
        view["sources"] = sources
        view["not_found"] = message.mode == AnswerMode.NOT_FOUND
    return view


def _opened_conversation(request: Request) -> uuid.UUID | None:
    """The conversation the page that sent this HTMX request shows, if any."""
    path = urlsplit(request.headers.get("HX-Current-URL", "")).path
    try:
        return uuid.UUID(path.rstrip("/").rsplit("/", 1)[-1]) if path.startswith("/chat/") else None
    except ValueError:
        return None


def _history(request: Request, conversations: Sequence[Conversation], current: uuid.UUID | None) -> Response:
    context = {"conversations": conversations, "current": current}
    return templates.TemplateResponse(request, "chat/_history.html", context)


async def _page(
    request: Request,
    session: AsyncSession,
    tenant: Tenant,
    user: User,
    settings: Settings,
    conversation: Conversation | None,
    chapter: str = "",
) -> Response:
    messages: list[Message] = []
    if conversation is not None:
        messages = await service.messages_of(session, tenant, conversation.id)
        await service.mark_deleted_sources(session, tenant, messages)
    chosen_books = set(conversation.document_ids or []) if conversation else set()
    if conversation is not None and conversation.chapter is not None and conversation.document_ids:
        chapter = chapter or f"{conversation.document_ids[0]}:{conversation.chapter}"
    context = {
        "user": user,
        "active": "chat",
        "conversation": conversation,
        "conversations": await service.list_conversations(session, tenant),
        "current": conversation.id if conversation else None,
        "messages": [_message_view(m) for m in messages],
        "options": await service.scope_options(session, tenant),
        "max_question_chars": settings.max_question_chars,
        "chosen": {
            "semester": conversation.semester if conversation else None,
            "subject": conversation.subject if conversation else None,
            "books": chosen_books,
            "chapter": chapter,
        },
    }
    return templates.TemplateResponse(request, "chat/index.html", context)


def chapter_choice(value: str) -> tuple[uuid.UUID, int] | None:
    """The chapter picker's "<document id>:<number>", or None for whole books."""
    if not value:
        return None
    document_id, _, number = value.partition(":")
    try:
        return uuid.UUID(document_id), int(number)
    except ValueError:
        raise InvalidInput("Choose a chapter from the list.") from None


@router.get("/chat", name="new_chat")
async def new_chat(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    chapter: Annotated[str, Query(max_length=60)] = "",
) -> Response:
    """A new conversation; `chapter` ("<document id>:<number>", from the library) picks a chapter."""
    return await _page(request, session, tenant, user, settings, None, chapter=chapter)


@router.get("/chat/history", name="chat_history")
async def history(request: Request, session: SessionDep, tenant: TenantDep) -> Response:
    """The history list alone, refreshed by chat.js after an answer starts a conversation."""
    conversations = await service.list_conversations(session, tenant)
    return _history(request, conversations, _opened_conversation(request))


@router.get("/chat/{conversation_id}", name="open_chat")
async def open_chat(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    conversation_id: uuid.UUID,
) -> Response:
    conversation = await service.get_conversation(session, tenant, conversation_id)
    return await _page(request, session, tenant, user, settings, conversation)


@router.post("/chat", name="chat_ask", dependencies=[rate_limit("chat")])
async def ask_without_javascript(
    session: SessionDep,
    answering: AnsweringDep,
    tenant: TenantDep,
    settings: SettingsDep,
    query: Annotated[str, Form(min_length=1, max_length=MAX_QUESTION)],
    semester: Annotated[str, Form(max_length=64)] = "",
    subject: Annotated[str, Form(max_length=64)] = "",
    books: Annotated[Sequence[str], Form()] = (),
    chapter: Annotated[str, Form(max_length=60)] = "",
    conversation_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """The plain form post; chat.js streams the answer from /api/chat/stream instead."""
    prepared = await service.prepare_question(
        session,
        answering,
        tenant,
        settings,
        question=query,
        scope=Scope.parse(semester, subject, list(books)[:100]),
        conversation_id=conversation_id,
        chapter=chapter_choice(chapter),
    )
    answered = await service.final_answer(service.answer(answering.sessionmaker, tenant, settings, prepared))
    return RedirectResponse(f"/chat/{answered.conversation_id}", status_code=303)


@router.delete("/chat/{conversation_id}", name="delete_chat")
@router.post("/chat/{conversation_id}/delete", name="delete_chat_form")
async def delete_chat(
    request: Request, session: SessionDep, tenant: TenantDep, conversation_id: uuid.UUID
) -> Response:
    """HTMX gets the updated history (or a redirect, when the open conversation is the one deleted)."""
    await service.delete_conversation(session, tenant, conversation_id)
    if not is_htmx(request):
        return RedirectResponse("/chat", status_code=303)
    current = _opened_conversation(request)
    if current == conversation_id:
        return Response(status_code=204, headers={"HX-Redirect": "/chat"})
    return _history(request, await service.list_conversations(session, tenant), current)
