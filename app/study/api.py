"""The study API: flashcards into decks, quizzes and study guides from a book or chapter, review, export."""

import uuid

from fastapi import APIRouter, Response

from app.api_errors import COMMON, errors
from app.deps import SessionDep, SettingsDep, TenantDep, rate_limit
from app.library.storage import inline_disposition
from app.study import export, service
from app.study.schemas import (
    DeckRead,
    DeckSummary,
    FlashcardsRequest,
    GuideRead,
    QuestionRead,
    QuizRead,
    QuizRequest,
    ReviewRead,
    ReviewRequest,
    StudyRequest,
)

router = APIRouter(prefix="/api/study", tags=["study"], responses=COMMON)
LIMITED = [rate_limit("study")]
MAKING_ERRORS = errors(409, 429)
APKG = "application/apkg"


@router.post(
    "/flashcards", response_model=DeckRead, status_code=201, dependencies=LIMITED, responses=MAKING_ERRORS
)
async def make_flashcards(
    session: SessionDep, tenant: TenantDep, settings: SettingsDep, body: FlashcardsRequest
) -> DeckRead:
    """A new deck of flashcards from a ready file or one of its chapters, the most important first; each
    card cites its page with the quote it came from. 409 while the file is not ready, or when nothing
    could be made from it."""
    view, cards = await service.make_deck(
        session, tenant, settings, document_id=body.document_id, chapter=body.chapter, count=body.count
    )
    return DeckRead.with_cards(view, cards)


@router.post("/quiz", response_model=QuizRead, dependencies=LIMITED, responses=MAKING_ERRORS)
async def make_quiz(
    session: SessionDep, tenant: TenantDep, settings: SettingsDep, body: QuizRequest
) -> QuizRead:
    """Multiple-choice questions (four distinct choices, one right), each citing its page; a new draw
    each time. Not stored."""
    source, questions = await service.make_quiz(
        session, tenant, settings, document_id=body.document_id, chapter=body.chapter, count=body.count
    )
    return QuizRead(
        document_id=source.document.id,
        book=source.document.book,
        chapter=body.chapter,
        title=source.title,
        questions=[QuestionRead.of(question) for question in questions],
    )


@router.post("/guide", response_model=GuideRead, dependencies=LIMITED, responses=MAKING_ERRORS)
async def make_guide(
    session: SessionDep, tenant: TenantDep, settings: SettingsDep, body: StudyRequest
) -> GuideRead:
    """Key terms with their definitions and the most central sentences, cited; with a model configured,
    also a summary citing [n]."""
    source, guide = await service.make_guide(
        session, tenant, settings, document_id=body.document_id, chapter=body.chapter
    )
    return GuideRead.of(source.document.id, source.document.book, body.chapter, source.title, guide)


@router.get("/decks", response_model=list[DeckSummary])
async def list_decks(session: SessionDep, tenant: TenantDep) -> list[DeckSummary]:
    """Your decks, newest first, with how many cards each has due now."""
    return [DeckSummary.of(view) for view in await service.list_decks(session, tenant)]


@router.get("/decks/{deck_id}", response_model=DeckRead)
async def get_deck(session: SessionDep, tenant: TenantDep, deck_id: uuid.UUID) -> DeckRead:
    view = await service.get_deck(session, tenant, deck_id)
    return DeckRead.with_cards(view, await service.cards_of(session, tenant, deck_id))


@router.delete("/decks/{deck_id}", status_code=204)
async def delete_deck(session: SessionDep, tenant: TenantDep, deck_id: uuid.UUID) -> Response:
    """Delete a deck with its cards and their review history."""
    await service.delete_deck(session, tenant, deck_id)
    return Response(status_code=204)


@router.get(
    "/decks/{deck_id}/export.apkg",
    response_class=Response,
    responses={200: {"content": {APKG: {}}, "description": "The deck as an Anki package."}},
)
async def export_apkg(session: SessionDep, tenant: TenantDep, deck_id: uuid.UUID) -> Response:
    """The deck as an Anki package: fields Front, Back, Book, Page and Quote."""
    view, cards = await service.exported(session, tenant, deck_id)
    return Response(
        export.apkg(view.deck.id, view.deck.title, cards),
        media_type=APKG,
        headers={"Content-Disposition": inline_disposition(f"{view.deck.title}.apkg", inline=False)},
    )


@router.get(
    "/decks/{deck_id}/export.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The deck as CSV."}},
)
async def export_csv(session: SessionDep, tenant: TenantDep, deck_id: uuid.UUID) -> Response:
    """The deck as CSV: front, back, book, page, quote."""
    view, cards = await service.exported(session, tenant, deck_id)
    return Response(
        export.csv_text(cards),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": inline_disposition(f"{view.deck.title}.csv", inline=False)},
    )


@router.post("/review/{card_id}", response_model=ReviewRead)
async def review_card(
    session: SessionDep, tenant: TenantDep, card_id: uuid.UUID, body: ReviewRequest
) -> ReviewRead:
    """Grade a card after answering it (1 Again, 2 Hard, 3 Good, 4 Easy); answers when it is due next."""
    card = await service.review(session, tenant, card_id, body.grade)
    return ReviewRead(card_id=card.id, grade=body.grade, due=card.due, reviews=card.reviews)
