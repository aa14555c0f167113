"""Asking a question within a scope, and the conversations that keep the answers."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.chat import answer as answers
from app.chat.answer import AnswerText
from app.chat.retrieval import ChapterPages, Passage, Scope, retrieve
from app.chat.schemas import Answered
from app.config import Settings
from app.db import release
from app.exceptions import Conflict, NotYours
from app.ingestion.embeddings import Embedder, counted, vector_space
from app.library import service as library
from app.metrics import CHAT_STAGE_SECONDS
from app.models import Conversation, Document, Message
from app.models.conversation import AnswerMode
from app.models.document import DocumentStatus
from app.overload import Gate
from app.tenancy import Tenant, bind_tenant, owned
from app.usage import service as usage

# What answering yields: the text as it is written, then the saved answer.
AnswerEvent = AnswerText | Answered


class ConversationNotFound(NotYours):
    """No such conversation of this tenant's (it may be someone else's)."""

    default_message = "No such file in your library."


async def get_conversation(
    session: AsyncSession, tenant: Tenant, conversation_id: uuid.UUID, *, action: str = "chat.read"
) -> Conversation:
    conversation = await session.scalar(
        owned(select(Conversation), Conversation, tenant).where(Conversation.id == conversation_id)
    )
    if conversation is None:
        raise ConversationNotFound(action=action, user_id=tenant.user_id, target=str(conversation_id))
    return conversation


class ConversationFull(Conflict):
    """The conversation holds as many messages as MAX_CONVERSATION_MESSAGES allows."""


async def ensure_room(session: AsyncSession, tenant: Tenant, conversation_id: uuid.UUID, limit: int) -> None:
    """Refuse a question that would take the conversation past `limit` messages (question + answer)."""
    count = await session.scalar(
        owned(select(func.count()).select_from(Message), Message, tenant).where(
            Message.conversation_id == conversation_id
        )
    )
    if (count or 0) + 2 > limit:
        raise ConversationFull(
            f"This conversation has reached its limit of {limit} messages. Start a new chat to keep asking."
        )


async def list_conversations(session: AsyncSession, tenant: Tenant) -> list[Conversation]:
    statement = owned(select(Conversation), Conversation, tenant).order_by(Conversation.updated_at.desc())
    return list((await session.scalars(statement.limit(100))).all())


async def messages_of(session: AsyncSession, tenant: Tenant, conversation_id: uuid.UUID) -> list[Message]:
    statement = owned(select(Message), Message, tenant).where(Message.conversation_id == conversation_id)
    return list((await session.scalars(statement.order_by(Message.created_at))).all())


async def delete_conversation(session: AsyncSession, tenant: Tenant, conversation_id: uuid.UUID) -> None:
    await get_conversation(session, tenant, conversation_id, action="chat.delete")
    await session.execute(delete(Conversation).where(Conversation.id == conversation_id))


async def scope_options(session: AsyncSession, tenant: Tenant) -> dict[str, Any]:
    """Semesters, subjects and books of the library, each with where it occurs (for filtering in JS), and
    the chapters of its ready files."""
    statement = owned(select(Document.semester, Document.subject, Document.book).distinct(), Document, tenant)
    rows = (await session.execute(statement)).all()
    subjects: dict[str, set[str]] = {}
    books: dict[str, set[tuple[str, str]]] = {}
    for semester, subject, book in rows:
        subjects.setdefault(subject, set()).add(semester)
        books.setdefault(book, set()).add((semester, subject))
    with_chapters = owned(
        select(Document.id, Document.book, Document.filename, Document.chapters), Document, tenant
    ).where(Document.status == DocumentStatus.READY, func.jsonb_array_length(Document.chapters) > 0)
    files = (await session.execute(with_chapters.order_by(Document.book, Document.filename))).all()
    return {
        "semesters": sorted({row.semester for row in rows}, key=str.casefold),
        "subjects": {name: sorted(subjects[name]) for name in sorted(subjects, key=str.casefold)},
        "books": {name: sorted(books[name]) for name in sorted(books, key=str.casefold)},
        # Files with chapters, for the chapter picker: [{id, book, filename, chapters: [{number, title}]}]
        "chapters": [
            {"id": file.id, "book": file.book, "filename": file.filename, "chapters": file.chapters}
            for file in files
        ],
    }


async def mark_deleted_sources(session: AsyncSession, tenant: Tenant, messages: list[Message]) -> None:
    """Sources whose document has since been deleted say so, instead of linking nowhere."""
    ids = {s["document_id"] for m in messages for s in (m.sources or [])}
    if not ids:
        return
    statement = owned(select(Document.id), Document, tenant).where(
        Document.id.in_([uuid.UUID(i) for i in ids])
    )
    alive = {str(i) for i in (await session.scalars(statement)).all()}
    for message in messages:
        for source in message.sources or []:
            source["deleted"] = source["document_id"] not in alive


async def chapter_scope(
    session: AsyncSession, tenant: Tenant, scope: Scope, *, document_id: uuid.UUID, number: int
) -> Scope:
    """`scope` narrowed to chapter `number` of the tenant's document; 404 (and a refusal in the activity
    log) for another user's document or a chapter it does not have."""
    document = await library.get_document(session, tenant, document_id, action="chat.scope", chapters=True)
    found = library.chapter_of(document, number, tenant=tenant, action="chat.scope")
    return scope.within(
        ChapterPages(document.id, found.number, found.title, found.first_page, found.last_page)
    )


@dataclass
class Prepared:
    """A question with what retrieval found for it: everything answering needs, and no connection."""

    question: str
    scope: Scope
    conversation_id: uuid.UUID | None
    history: list[tuple[str, str]]
    passages: list[Passage]
    embedding_tokens: int = 0  # the question's, when an embeddings endpoint bills them


@dataclass(frozen=True)
class Answering:
    """What answering a question takes besides the request's own session: short sessions of its own,
    the question embedder and the gate in front of it."""

    sessionmaker: async_sessionmaker[AsyncSession]
    embedder: Any
    embed_gate: Gate | None = None


async def prepare_question(
    session: AsyncSession,
    answering: Answering,
    tenant: Tenant,
    settings: Settings,
    *,
    question: str,
    scope: Scope,
    conversation_id: uuid.UUID | None = None,
    chapter: tuple[uuid.UUID, int] | None = None,
) -> Prepared:
    """Check the conversation (the tenant's, with room left), the chapter asked for (document id and
    chapter number) and the month's limits on the request's session, give its connection back, then
    retrieve in short sessions of its own. Every refusal (404, 409, 429, 503) happens here, before any
    answer is sent."""
    if chapter is not None:
        scope = await chapter_scope(session, tenant, scope, document_id=chapter[0], number=chapter[1])
    if conversation_id is not None:
        await get_conversation(session, tenant, conversation_id)
        await ensure_room(session, tenant, conversation_id, settings.max_conversation_messages)
    await usage.ensure_within_limits(session, tenant, settings)
    await release(session)
    return await prepare(
        answering.sessionmaker,
        tenant,
        settings,
        answering.embedder,
        question=question,
        scope=scope,
        conversation_id=conversation_id,
        embed_gate=answering.embed_gate,
    )


async def prepare(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    settings: Settings,
    embedder: Embedder,
    *,
    question: str,
    scope: Scope,
    conversation_id: uuid.UUID | None = None,
    embed_gate: Gate | None = None,
) -> Prepared:
    """History, the question's embedding and the passages — each database step in a short session of
    its own, so no connection is held while the question is embedded. Raises ConversationNotFound for a
    conversation that is not this tenant's, and Overloaded when the embedder's queue is full."""
    question = question.strip()[: settings.max_question_chars]
    history: list[tuple[str, str]] = []
    if conversation_id is not None:
        async with sessionmaker() as session:
            await bind_tenant(session, tenant)
            await get_conversation(session, tenant, conversation_id)
            recent = (await messages_of(session, tenant, conversation_id))[-2 * settings.chat_history_turns :]
            history = [(m.role, m.content) for m in recent]
    previous = next((content for role, content in reversed(history) if role == "user"), "")
    search_text = f"{previous}\n{question}" if previous and len(question.split()) < 8 else question
    async with embed_gate.enter() if embed_gate else nullcontext():
        with CHAT_STAGE_SECONDS.labels("embed").time():
            vector, embedding_tokens = await asyncio.to_thread(
                counted, embedder, embedder.embed_query, search_text
            )
    started = time.perf_counter()
    async with sessionmaker() as session:
        await bind_tenant(session, tenant)
        passages = await retrieve(
            session,
            tenant,
            question=search_text,
            query_vector=vector,
            model=vector_space(embedder.model_name, settings.embedding_headers),
            scope=scope,
            k=settings.chat_passages,
            methods=("vector", "text") if settings.chat_retrieval == "hybrid" else ("vector",),
        )
    CHAT_STAGE_SECONDS.labels("retrieve").observe(time.perf_counter() - started)
    return Prepared(question, scope, conversation_id, history, passages, embedding_tokens)


async def answer(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant, settings: Settings, prepared: Prepared
) -> AsyncIterator[AnswerEvent]:
    """Yields the answer's text as it is produced (AnswerText), then, once it is saved, Answered.
    No connection is held while the answer is generated; the exchange is saved in one short session."""
    question, scope, passages = prepared.question, prepared.scope, prepared.passages
    started = time.perf_counter()
    result: answers.Answer | None = None
    if not answers.relevant(passages, settings):
        result = answers.not_found(scope)
        yield AnswerText(result.text)
    elif settings.openai_api_key is None:
        result = answers.extractive(passages, question)
        yield AnswerText(result.text)
    else:
        async for event in answers.generate(settings, question, passages, prepared.history, scope):
            if isinstance(event, answers.Answer):
                result = event
            else:
                yield event
        if result is None:  # generate always ends with its Answer
            raise RuntimeError("the model's answer ended without a result")
        if result.mode == AnswerMode.NOT_FOUND:
            yield AnswerText(result.text)
    CHAT_STAGE_SECONDS.labels("answer").observe(time.perf_counter() - started)
    conversation_id = await _save_exchange(sessionmaker, tenant, prepared, result)
    yield Answered(
        answer=result.text, mode=result.mode, sources=result.sources, conversation_id=conversation_id
    )


async def final_answer(events: AsyncIterator[AnswerEvent]) -> Answered:
    """The Answered event of an answer's stream, for callers that do not stream."""
    async for event in events:
        if isinstance(event, Answered):
            return event
    raise RuntimeError("the answer ended without being saved")


async def _save_exchange(
    sessionmaker: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    prepared: Prepared,
    result: answers.Answer,
) -> uuid.UUID:
    """The question and its answer, in a new conversation or the one asked in; its id."""
    question, scope, conversation_id = prepared.question, prepared.scope, prepared.conversation_id
    async with sessionmaker() as session, session.begin():
        await bind_tenant(session, tenant)
        if conversation_id is None:
            conversation = Conversation(
                id=uuid.uuid4(),
                user_id=tenant.user_id,
                title=question[:120],
                semester=scope.semester,
                subject=scope.subject,
                document_ids=[str(i) for i in scope.document_ids] + list(scope.books),
                chapter=scope.chapter.number if scope.chapter else None,
            )
            session.add(conversation)
            await session.flush()
            conversation_id = conversation.id
        else:
            conversation = await get_conversation(session, tenant, conversation_id)
            conversation.updated_at = func.now()
        # clock_timestamp(), not the transaction's now(): the question sorts before its answer.
        session.add(
            Message(
                user_id=tenant.user_id,
                conversation_id=conversation_id,
                role="user",
                content=question,
                created_at=func.clock_timestamp(),
            )
        )
        await session.flush()
        session.add(
            Message(
                user_id=tenant.user_id,
                conversation_id=conversation_id,
                role="assistant",
                created_at=func.clock_timestamp(),
                content=result.text,
                mode=result.mode,
                sources=result.sources_json(),
            )
        )
        await usage.record(
            session,
            tenant,
            questions=1,
            llm_tokens_in=result.tokens_in,
            llm_tokens_out=result.tokens_out,
            embedding_tokens=prepared.embedding_tokens,
        )
    return conversation_id
