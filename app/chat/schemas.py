"""What chat takes and gives: one model per shape, shared by the API, the pages and the stored answers."""

import uuid
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.chat.retrieval import Scope
from app.config import get_settings
from app.models.conversation import AnswerMode

# A schema limit: FastAPI reads it when the routes are declared, so it is taken from the settings once.
MAX_QUESTION = get_settings().max_question_chars


class ChapterChoice(BaseModel):
    document_id: uuid.UUID
    number: int = Field(
        ge=1, le=10_000, description="The chapter's number, as GET /api/files/{id}/chapters lists it."
    )


class ChatRequest(BaseModel):
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION)]
    active_semester: str | None = Field(default=None, max_length=64)
    active_subject: str | None = Field(default=None, max_length=64)
    active_books: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)
    active_chapter: ChapterChoice | None = Field(
        default=None, description="Narrow the question to one chapter of one file (it replaces the books)."
    )
    conversation_id: uuid.UUID | None = None

    def scope(self) -> Scope:
        return Scope.parse(self.active_semester, self.active_subject, self.active_books)

    def chapter(self) -> tuple[uuid.UUID, int] | None:
        return (self.active_chapter.document_id, self.active_chapter.number) if self.active_chapter else None


class Source(BaseModel):
    """A cited passage: where it is (book and unit) and a quote that is text of that unit. Stored with
    the answer as JSON (without `deleted`, which is worked out when the answer is shown)."""

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
    deleted: bool = Field(default=False, description="The document has been deleted since.")

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"deleted"})


class Answered(BaseModel):
    """The whole answer, once it is written and saved."""

    answer: str
    mode: AnswerMode
    sources: list[Source]
    conversation_id: uuid.UUID


class ChatResponse(Answered):
    answer_html: str = Field(description="The answer as the chat page shows it (sanitised HTML).")
    sources_html: str = Field(
        default="", description="Its source chips as the chat page shows them (HTML); empty without sources."
    )


class ConversationOut(BaseModel):
    id: uuid.UUID
    title: str


class MessageOut(BaseModel):
    role: str
    content: str
    content_html: str
    mode: AnswerMode | None = Field(default=None, description="An answer's; null for a question.")
    sources: list[Source]
