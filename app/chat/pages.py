"""The chat page: conversation history, scope pickers, messages with source chips, a PDF pane.

chat.js streams answers from `/api/chat/stream`; without JavaScript the question form posts here and
the page reloads with the answer.
"""

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from app.chat import answer as answers
from app.chat import service
from app.chat.api import delete_conversation_or_404, prepare_question
from app.chat.markdown import render_answer
from app.chat.retrieval import Scope
from app.deps import CurrentUser, SessionDep, SettingsDep, TenantDep
from app.library.api import refuse_unknown
from app.models import Conversation, Document, Message
from app.security.rate_limit import rate_limit
from app.templating import is_htmx, templates
from app.tenancy import Tenant, owned

router = APIRouter(include_in_schema=False)

# Stored messages do not keep their mode; a not-found answer is recognised by its fixed opening.
NOT_FOUND_OPENING = answers.not_found(Scope()).text.split(".")[0]


async def _scope_options(session, tenant: Tenant) -> dict:
    """Semesters, subjects and books of the library, each with where it occurs (for filtering in JS)."""
    statement = owned(select(Document.semester, Document.subject, Document.book).distinct(), Document, tenant)
    rows = (await session.execute(statement)).all()
    subjects: dict[str, set[str]] = {}
    books: dict[str, set[tuple[str, str]]] = {}
    for semester, subject, book in rows:
        subjects.setdefault(subject, set()).add(semester)
        books.setdefault(book, set()).add((semester, subject))
    return {
        "semesters": sorted({row.semester for row in rows}, key=str.casefold),
        "subjects": {name: sorted(subjects[name]) for name in sorted(subjects, key=str.casefold)},
        "books": {name: sorted(books[name]) for name in sorted(books, key=str.casefold)},
    }


def _message_view(message: Message) -> dict:
    view = {"role": message.role, "content": message.content}
    if message.role == "assistant":
        sources = message.sources or []
        view["html"] = render_answer(message.content)
        view["sources"] = sources
        view["not_found"] = not sources and message.content.startswith(NOT_FOUND_OPENING)
    return view


def _opened_conversation(request: Request) -> uuid.UUID | None:
    """The conversation the page that sent this HTMX request shows, if any."""
    path = urlsplit(request.headers.get("HX-Current-URL", "")).path
    try:
        return uuid.UUID(path.rstrip("/").rsplit("/", 1)[-1]) if path.startswith("/chat/") else None
    except ValueError:
        return None


def _history(request: Request, conversations, current: uuid.UUID | None) -> Response:
    context = {"conversations": conversations, "current": current}
    return templates.TemplateResponse(request, "chat/_history.html", context)


async def _conversation_or_404(request: Request, session, tenant: Tenant, conversation_id, action: str):
    try:
        return await service.get_conversation(session, tenant, conversation_id)
    except service.ConversationNotFound:
        raise await refuse_unknown(
            request, session, tenant, action=action, target=str(conversation_id)
        ) from None


async def _page(request: Request, session, tenant: Tenant, user, conversation: Conversation | None):
    messages = []
    if conversation is not None:
        messages = await service.messages_of(session, tenant, conversation.id)
        await service.mark_deleted_sources(session, tenant, messages)
    chosen_books = set(conversation.document_ids or []) if conversation else set()
    context = {
        "user": user,
        "active": "chat",
        "conversation": conversation,
        "conversations": await service.list_conversations(session, tenant),
        "current": conversation.id if conversation else None,
        "messages": [_message_view(m) for m in messages],
        "options": await _scope_options(session, tenant),
        "max_question_chars": service.MAX_QUESTION,
        "chosen": {
            "semester": conversation.semester if conversation else None,
            "subject": conversation.subject if conversation else None,
            "books": chosen_books,
        },
    }
    return templates.TemplateResponse(request, "chat/index.html", context)


@router.get("/chat", name="new_chat")
async def new_chat(request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser) -> Response:
    return await _page(request, session, tenant, user, None)


@router.get("/chat/history", name="chat_history")
async def history(request: Request, session: SessionDep, tenant: TenantDep) -> Response:
    """The history list alone, refreshed by chat.js after an answer starts a conversation."""
    conversations = await service.list_conversations(session, tenant)
    return _history(request, conversations, _opened_conversation(request))


@router.get("/chat/{conversation_id}", name="open_chat")
async def open_chat(
    request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser, conversation_id: uuid.UUID
) -> Response:
    conversation = await _conversation_or_404(request, session, tenant, conversation_id, "chat.read")
    return await _page(request, session, tenant, user, conversation)


@router.post("/chat", name="chat_ask", dependencies=[rate_limit("chat")])
async def ask_without_javascript(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    settings: SettingsDep,
    query: Annotated[str, Form(min_length=1, max_length=service.MAX_QUESTION)],
    semester: Annotated[str, Form(max_length=64)] = "",
    subject: Annotated[str, Form(max_length=64)] = "",
    books: Annotated[list[str], Form()] = (),
    conversation_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """The plain form post; chat.js streams the answer from /api/chat/stream instead."""
    prepared = await prepare_question(
        request,
        session,
        tenant,
        settings,
        question=query,
        scope=Scope.parse(semester, subject, list(books)[:100]),
        conversation_id=conversation_id,
    )
    final: dict = {}
    async for piece in service.answer(request.app.state.sessionmaker, tenant, settings, prepared):
        if isinstance(piece, dict):
            final = piece
    return RedirectResponse(f"/chat/{final['conversation_id']}", status_code=303)


@router.delete("/chat/{conversation_id}", name="delete_chat")
@router.post("/chat/{conversation_id}/delete", name="delete_chat_form")
async def delete_chat(
    request: Request, session: SessionDep, tenant: TenantDep, conversation_id: uuid.UUID
) -> Response:
    """HTMX gets the updated history (or a redirect, when the open conversation is the one deleted)."""
    await delete_conversation_or_404(request, session, tenant, conversation_id)
    if not is_htmx(request):
        return RedirectResponse("/chat", status_code=303)
    current = _opened_conversation(request)
    if current == conversation_id:
        return Response(status_code=204, headers={"HX-Redirect": "/chat"})
    return _history(request, await service.list_conversations(session, tenant), current)
