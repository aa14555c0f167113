"""Study aids for a book or a chapter of the tenant's library, and the decks their flashcards live in.

Each maker reads the document's pages on the request's session, gives its connection back
(`app.db.release`) while the cards, questions or guide are made — offline in the study child process
(`app.study.making`), or by the configured model — and only then writes, in a new transaction bound to
the same tenant. Decks, cards and reviews are tenant tables under row-level security; every query here
is also `owned`.
"""

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import release
from app.exceptions import Conflict, NotYours
from app.library.contents import Chapter, Page
from app.library.service import Contents, contents_of
from app.models import Card, Deck, Document, Review
from app.study import generated, making, offline, schedule
from app.study.drafts import CardDraft, GuideDraft, QuestionDraft
from app.study.export import ExportedCard
from app.tenancy import Tenant, owned
from app.usage import service as usage

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)


class DeckNotFound(NotYours):
    default_message = "There is no such deck in your library."


class CardNotFound(NotYours):
    default_message = "There is no such card in your decks."


class NothingToStudy(Conflict):
    """Generation found nothing to make from the pages (no definitions, no key terms)."""


@dataclass(frozen=True)
class Material:
    """What a study aid is made from: a ready document, the chapter asked for (None: the whole book),
    that chapter's pages and the whole book's (term specificity is measured against the book)."""

    contents: Contents
    chapter: Chapter | None
    pages: list[Page]

    @property
    def document(self) -> Document:
        return self.contents.document

    @property
    def book_pages(self) -> list[Page]:
        return self.contents.pages

    @property
    def title(self) -> str:
        part = self.chapter.title if self.chapter else self.document.filename
        return f"{self.document.book} — {part}"[:300]  # decks.title holds 300


async def material(
    session: AsyncSession, tenant: Tenant, *, document_id: uuid.UUID, chapter: int | None, action: str
) -> Material:
    """The tenant's ready document and chapter: DocumentNotFound / ChapterNotFound (recorded as a
    refused `action`) for another user's ids, ContentsNotReady before ingestion has read it."""
    contents = await contents_of(session, tenant, document_id=document_id, action=action)
    found = contents.chapter(chapter, tenant=tenant, action=action) if chapter is not None else None
    return Material(contents, found, contents.pages_of(found))


async def _model(session: AsyncSession, tenant: Tenant, settings: Settings) -> "BaseChatModel | None":
    """The configured chat model, once the month's limits allow it; None offline (no API key)."""
    if settings.openai_api_key is None:
        return None
    from app.chat.answer import chat_model

    await usage.ensure_within_limits(session, tenant, settings)
    return chat_model(settings)


async def _metered(session: AsyncSession, tenant: Tenant, tokens: generated.Tokens) -> None:
    if tokens.input or tokens.output:
        await usage.record(session, tenant, llm_tokens_in=tokens.input, llm_tokens_out=tokens.output)


def _where(source: Material) -> str:
    return f"chapter “{source.chapter.title}”" if source.chapter else "this file"


def _nothing(what: str, source: Material) -> NothingToStudy:
    return NothingToStudy(
        f"No {what} could be made from {_where(source)}: it holds no definitions or key terms to ask "
        "about. Try another chapter, or the whole book."
    )


async def _carded(session: AsyncSession, tenant: Tenant, source: Material) -> frozenset[tuple[int, str]]:
    """The (page, quote) of the cards in the student's decks of this book or chapter: a new deck of
    the same goes on where those stopped, rather than making them again."""
    chapter = source.chapter.number if source.chapter else None
    decks = owned(select(Deck.id), Deck, tenant).where(
        Deck.document_id == source.document.id,
        Deck.chapter.is_(None) if chapter is None else Deck.chapter == chapter,
    )
    rows = await session.execute(
        owned(select(Card.page, Card.quote), Card, tenant).where(Card.deck_id.in_(decks))
    )
    return frozenset((page, quote) for page, quote in rows)


# --- Flashcards and decks. ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeckView:
    deck: Deck
    book: str
    format: str  # the document's: what a card's page is called (page, slide, section)
    cards: int
    due: int


async def make_deck(
    session: AsyncSession,
    tenant: Tenant,
    settings: Settings,
    *,
    document_id: uuid.UUID,
    chapter: int | None = None,
    count: int = 20,
) -> tuple[DeckView, list[Card]]:
    """A new deck of up to `count` flashcards from the book or chapter, the most important first: by the
    model when one is configured (falling back to the offline cards if it gives none), else offline."""
    source = await material(
        session, tenant, document_id=document_id, chapter=chapter, action="study.flashcards"
    )
    known = await _carded(session, tenant, source)
    model = await _model(session, tenant, settings)
    await release(session)
    tokens = generated.Tokens()
    drafts: list[CardDraft] = []
    if model is not None:
        try:
            drafts = await generated.flashcards(model, source.pages, count=count, tokens=tokens)
        except Exception:
            log.exception("the model could not write flashcards; making them offline")
    made_by = "model" if drafts else "offline"
    if not drafts:
        drafts = await making.made(
            offline.flashcards, source.pages, count=count, book_pages=source.book_pages, known=known
        )
    if not drafts and known:
        raise NothingToStudy(
            f"Your decks already hold every flashcard {_where(source)} gives. Review them, or try "
            "another chapter."
        )
    if not drafts:
        raise _nothing("flashcards", source)
    deck = Deck(
        user_id=tenant.user_id,
        document_id=source.document.id,
        chapter=source.chapter.number if source.chapter else None,
        title=source.title,
        made_by=made_by,
    )
    session.add(deck)
    await session.flush()
    cards = [
        Card(
            user_id=tenant.user_id,
            deck_id=deck.id,
            position=position,
            front=draft.front,
            back=draft.back,
            kind=draft.kind,
            page=draft.page,
            quote=draft.quote,
        )
        for position, draft in enumerate(drafts)
    ]
    session.add_all(cards)
    await _metered(session, tenant, tokens)
    await session.flush()
    return DeckView(deck, source.document.book, source.document.format, len(cards), len(cards)), cards


def _deck_views(tenant: Tenant, now: datetime) -> Select[tuple[Deck, str, str, int, int]]:
    due = func.count(Card.id).filter(Card.due <= now)
    return (
        owned(select(Deck, Document.book, Document.format, func.count(Card.id), due), Deck, tenant)
        .join(Document, (Document.id == Deck.document_id) & (Document.user_id == Deck.user_id))
        .outerjoin(Card, (Card.deck_id == Deck.id) & (Card.user_id == Deck.user_id))
        .group_by(Deck.id, Document.book, Document.format)
    )


async def list_decks(session: AsyncSession, tenant: Tenant, *, now: datetime | None = None) -> list[DeckView]:
    """The tenant's decks, newest first, each with its card count and how many are due now."""
    statement = _deck_views(tenant, now or datetime.now(UTC)).order_by(Deck.created_at.desc())
    return [DeckView(*row) for row in await session.execute(statement)]


async def get_deck(
    session: AsyncSession, tenant: Tenant, deck_id: uuid.UUID, *, action: str = "deck.read"
) -> DeckView:
    row = (await session.execute(_deck_views(tenant, datetime.now(UTC)).where(Deck.id == deck_id))).first()
    if row is None:
        raise DeckNotFound(action=action, user_id=tenant.user_id, target=str(deck_id))
    return DeckView(*row)


async def cards_of(session: AsyncSession, tenant: Tenant, deck_id: uuid.UUID) -> list[Card]:
    statement = owned(select(Card), Card, tenant).where(Card.deck_id == deck_id).order_by(Card.position)
    return list((await session.scalars(statement)).all())


async def next_due(
    session: AsyncSession, tenant: Tenant, deck_id: uuid.UUID, *, now: datetime | None = None
) -> tuple[Card | None, datetime | None]:
    """The card to review now (the longest overdue; new cards in their ranked order), or None and when
    the next one comes due (None for an empty deck)."""
    now = now or datetime.now(UTC)
    in_deck = owned(select(Card), Card, tenant).where(Card.deck_id == deck_id)
    card = await session.scalar(in_deck.where(Card.due <= now).order_by(Card.due, Card.position).limit(1))
    if card is not None:
        return card, card.due
    later = await session.scalar(
        owned(select(func.min(Card.due)), Card, tenant).where(Card.deck_id == deck_id)
    )
    return None, later


async def delete_deck(session: AsyncSession, tenant: Tenant, deck_id: uuid.UUID) -> None:
    deleted = await session.scalar(
        delete(Deck).where(Deck.id == deck_id, Deck.user_id == tenant.user_id).returning(Deck.id)
    )
    if deleted is None:
        raise DeckNotFound(action="deck.delete", user_id=tenant.user_id, target=str(deck_id))


async def review(
    session: AsyncSession, tenant: Tenant, card_id: uuid.UUID, grade: int, *, now: datetime | None = None
) -> Card:
    """Grade the card (1 Again, 2 Hard, 3 Good, 4 Easy): its next due time from FSRS, the review kept.
    The card's row is locked meanwhile, so two grades sent at once are applied one after the other."""
    now = now or datetime.now(UTC)
    card = await session.scalar(owned(select(Card), Card, tenant).where(Card.id == card_id).with_for_update())
    if card is None:
        raise CardNotFound(action="card.review", user_id=tenant.user_id, target=str(card_id))
    step = schedule.review(card.schedule, grade, now=now)
    card.schedule, card.due, card.reviews = step.schedule, step.due, card.reviews + 1
    session.add(Review(user_id=tenant.user_id, card_id=card.id, grade=grade, reviewed_at=now, due=step.due))
    await session.flush()
    return card


async def due_by_document(session: AsyncSession, tenant: Tenant) -> dict[uuid.UUID, int]:
    """How many cards are due now in each document's decks (documents with none due are left out)."""
    statement = (
        owned(select(Deck.document_id, func.count(Card.id)), Deck, tenant)
        .join(Card, (Card.deck_id == Deck.id) & (Card.user_id == Deck.user_id))
        .where(Card.due <= func.now())
        .group_by(Deck.document_id)
    )
    return {document_id: due for document_id, due in await session.execute(statement)}


async def exported(
    session: AsyncSession, tenant: Tenant, deck_id: uuid.UUID
) -> tuple[DeckView, list[ExportedCard]]:
    view = await get_deck(session, tenant, deck_id, action="deck.export")
    cards = await cards_of(session, tenant, deck_id)
    return view, [ExportedCard(c.id, c.front, c.back, view.book, c.page, c.quote) for c in cards]


# --- Quizzes and study guides: made on request, not stored. ---------------------------------------------


async def make_quiz(
    session: AsyncSession,
    tenant: Tenant,
    settings: Settings,
    *,
    document_id: uuid.UUID,
    chapter: int | None = None,
    count: int = 10,
) -> tuple[Material, list[QuestionDraft]]:
    """Up to `count` multiple-choice questions on the book or chapter, four distinct choices each: by
    the model when one is configured (offline if it gives none), else offline, a new draw each time."""
    source = await material(session, tenant, document_id=document_id, chapter=chapter, action="study.quiz")
    model = await _model(session, tenant, settings)
    await release(session)
    tokens = generated.Tokens()
    questions: list[QuestionDraft] = []
    if model is not None:
        try:
            questions = await generated.quiz(model, source.pages, count=count, tokens=tokens)
        except Exception:
            log.exception("the model could not write a quiz; making it offline")
    if not questions:
        questions = await making.made(
            offline.quiz,
            source.pages,
            count=count,
            book_pages=source.book_pages,
            seed=secrets.randbelow(1 << 30),
        )
    if not questions:
        raise _nothing("quiz questions", source)
    await _metered(session, tenant, tokens)
    return source, questions


async def make_guide(
    session: AsyncSession,
    tenant: Tenant,
    settings: Settings,
    *,
    document_id: uuid.UUID,
    chapter: int | None = None,
) -> tuple[Material, GuideDraft]:
    """Key terms with their definitions and the most central sentences of the book or chapter; with a
    model, also a written summary citing them."""
    source = await material(session, tenant, document_id=document_id, chapter=chapter, action="study.guide")
    model = await _model(session, tenant, settings)
    await release(session)
    tokens = generated.Tokens()
    guide: GuideDraft | None = None
    if model is not None:
        try:
            guide = await generated.summary(model, source.pages, tokens=tokens)
        except Exception:
            log.exception("the model could not write a summary; showing the offline guide")
    if guide is None:
        guide = await making.made(offline.study_guide, source.pages, book_pages=source.book_pages)
    if not guide.terms and not guide.central:
        raise _nothing("study guide", source)
    await _metered(session, tenant, tokens)
    return source, guide
