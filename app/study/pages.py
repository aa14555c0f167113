"""The study pages: decks, making flashcards from the library, review with keyboard grades, quizzes and
study guides. Forms post and redirect, so every page works without JavaScript; static/js/study.js adds
the shortcuts and checks quiz answers in place."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from app.chat.markdown import render_answer
from app.deps import CurrentUser, SessionDep, SettingsDep, TenantDep, rate_limit
from app.study import service
from app.study.schedule import GRADES
from app.study.schemas import MAX_CARDS, MAX_QUESTIONS
from app.templating import templates

router = APIRouter(include_in_schema=False)


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


@router.get("/study", name="study_page")
async def study_page(request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser) -> Response:
    decks = await service.list_decks(session, tenant)
    context = {"user": user, "active": "study", "decks": decks}
    return templates.TemplateResponse(request, "study/index.html", context)


@router.post("/study/decks", name="make_deck_page", dependencies=[rate_limit("study")])
async def make_deck_page(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    settings: SettingsDep,
    document_id: Annotated[uuid.UUID, Form()],
    chapter: Annotated[int | None, Form(ge=1)] = None,
    count: Annotated[int, Form(ge=1, le=MAX_CARDS)] = 20,
) -> Response:
    view, _ = await service.make_deck(
        session, tenant, settings, document_id=document_id, chapter=chapter, count=count
    )
    return _see(str(request.url_for("deck_page", deck_id=view.deck.id)))


@router.get("/study/decks/{deck_id}", name="deck_page")
async def deck_page(
    request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser, deck_id: uuid.UUID
) -> Response:
    view = await service.get_deck(session, tenant, deck_id)
    cards = await service.cards_of(session, tenant, deck_id)
    context = {"user": user, "active": "study", "view": view, "cards": cards}
    return templates.TemplateResponse(request, "study/deck.html", context)


@router.post("/study/decks/{deck_id}/delete", name="delete_deck_page")
async def delete_deck_page(
    request: Request, session: SessionDep, tenant: TenantDep, deck_id: uuid.UUID
) -> Response:
    await service.delete_deck(session, tenant, deck_id)
    return _see(str(request.url_for("study_page")))


@router.get("/study/decks/{deck_id}/review", name="review_page")
async def review_page(
    request: Request, session: SessionDep, tenant: TenantDep, user: CurrentUser, deck_id: uuid.UUID
) -> Response:
    """The next due card of the deck: its front, the answer behind "Show answer", and the four grades."""
    view = await service.get_deck(session, tenant, deck_id, action="deck.review")
    card, when = await service.next_due(session, tenant, deck_id)
    context = {
        "user": user,
        "active": "study",
        "view": view,
        "card": card,
        "next_due": when,
        "grades": GRADES,
    }
    return templates.TemplateResponse(request, "study/review.html", context)


@router.post("/study/cards/{card_id}/grade", name="grade_card_page")
async def grade_card_page(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    card_id: uuid.UUID,
    grade: Annotated[int, Form(ge=1, le=4)],
) -> Response:
    card = await service.review(session, tenant, card_id, grade)
    return _see(str(request.url_for("review_page", deck_id=card.deck_id)))


@router.get("/study/quiz", name="quiz_page", dependencies=[rate_limit("study")])
async def quiz_page(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    document_id: uuid.UUID,
    chapter: int | None = None,
    count: int = 10,
) -> Response:
    source, questions = await service.make_quiz(
        session,
        tenant,
        settings,
        document_id=document_id,
        chapter=chapter,
        count=max(1, min(count, MAX_QUESTIONS)),
    )
    context = {"user": user, "active": "study", "source": source, "questions": questions}
    return templates.TemplateResponse(request, "study/quiz.html", context)


@router.get("/study/guide", name="guide_page", dependencies=[rate_limit("study")])
async def guide_page(
    request: Request,
    session: SessionDep,
    tenant: TenantDep,
    user: CurrentUser,
    settings: SettingsDep,
    document_id: uuid.UUID,
    chapter: int | None = None,
) -> Response:
    source, guide = await service.make_guide(
        session, tenant, settings, document_id=document_id, chapter=chapter
    )
    summary_html = render_answer(guide.summary) if guide.summary else None
    context = {
        "user": user,
        "active": "study",
        "source": source,
        "guide": guide,
        "summary_html": summary_html,
    }
    return templates.TemplateResponse(request, "study/guide.html", context)
