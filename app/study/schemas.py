"""The study API's requests and answers."""

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.models import Card
from app.study.drafts import GuideDraft, QuestionDraft
from app.study.service import DeckView

MAX_CARDS = 100
MAX_QUESTIONS = 50


class StudyRequest(BaseModel):
    document_id: uuid.UUID = Field(description="A ready file of your library (`GET /api/files`).")
    chapter: int | None = Field(
        None,
        ge=1,
        description="A chapter's `number` (`GET /api/files/{id}/chapters`); omit for the whole file.",
    )


class FlashcardsRequest(StudyRequest):
    count: int = Field(20, ge=1, le=MAX_CARDS, description="How many cards at most.")


class QuizRequest(StudyRequest):
    count: int = Field(10, ge=1, le=MAX_QUESTIONS, description="How many questions at most.")


class CardRead(BaseModel):
    id: uuid.UUID
    front: str
    back: str
    kind: str = Field(description="definition, term, cloze (offline) or question (written by a model).")
    document_id: uuid.UUID
    book: str
    page: int = Field(description="The page (slide, section) the card cites, 1-based.")
    quote: str = Field(description="Text of that page the card came from.")
    due: datetime
    reviews: int

    @classmethod
    def of(cls, card: Card, view: DeckView) -> "CardRead":
        return cls(
            id=card.id,
            front=card.front,
            back=card.back,
            kind=card.kind,
            document_id=view.deck.document_id,
            book=view.book,
            page=card.page,
            quote=card.quote,
            due=card.due,
            reviews=card.reviews,
        )


class DeckSummary(BaseModel):
    deck_id: uuid.UUID
    title: str
    document_id: uuid.UUID
    book: str
    chapter: int | None
    made_by: str = Field(description="offline, or model when a configured model wrote the cards.")
    card_count: int
    due_count: int = Field(description="Cards due for review now.")
    created_at: datetime

    @classmethod
    def of(cls, view: DeckView) -> "DeckSummary":
        deck = view.deck
        return cls(
            deck_id=deck.id,
            title=deck.title,
            document_id=deck.document_id,
            book=view.book,
            chapter=deck.chapter,
            made_by=deck.made_by,
            card_count=view.cards,
            due_count=view.due,
            created_at=deck.created_at,
        )


class DeckRead(DeckSummary):
    cards: list[CardRead]

    @classmethod
    def with_cards(cls, view: DeckView, cards: list[Card]) -> "DeckRead":
        return cls(**DeckSummary.of(view).model_dump(), cards=[CardRead.of(card, view) for card in cards])


class QuestionRead(BaseModel):
    question: str
    choices: list[str] = Field(min_length=4, max_length=4, description="Four distinct choices.")
    answer_index: int = Field(ge=0, le=3, description="The right choice (0-3).")
    page: int
    quote: str = Field(description="Text of that page the question came from.")

    @classmethod
    def of(cls, draft: QuestionDraft) -> "QuestionRead":
        return cls(
            question=draft.question,
            choices=list(draft.choices),
            answer_index=draft.answer_index,
            page=draft.page,
            quote=draft.quote,
        )


class QuizRead(BaseModel):
    document_id: uuid.UUID
    book: str
    chapter: int | None
    title: str
    questions: list[QuestionRead]


class GuideTermRead(BaseModel):
    term: str
    definition: str
    page: int
    quote: str


class GuideSentenceRead(BaseModel):
    text: str
    page: int


class GuideRead(BaseModel):
    document_id: uuid.UUID
    book: str
    chapter: int | None
    title: str
    terms: list[GuideTermRead]
    central: list[GuideSentenceRead] = Field(description="The most central sentences, in reading order.")
    summary: str | None = Field(
        None, description="With a model configured: a written summary citing [n] from `summary_sources`."
    )
    summary_sources: list[GuideSentenceRead] = []

    @classmethod
    def of(
        cls, document_id: uuid.UUID, book: str, chapter: int | None, title: str, guide: GuideDraft
    ) -> "GuideRead":
        return cls(
            document_id=document_id,
            book=book,
            chapter=chapter,
            title=title,
            terms=[GuideTermRead(**vars(term)) for term in guide.terms],
            central=[GuideSentenceRead(**vars(s)) for s in guide.central],
            summary=guide.summary,
            summary_sources=[GuideSentenceRead(**vars(s)) for s in guide.summary_sources],
        )


class ReviewRequest(BaseModel):
    grade: int = Field(ge=1, le=4, description="1 Again, 2 Hard, 3 Good, 4 Easy.")


class ReviewRead(BaseModel):
    card_id: uuid.UUID
    grade: int
    due: datetime = Field(description="When the card is due again (FSRS).")
    reviews: int
