"""What study-aid generation makes from a chapter's pages, before anything is stored.

Generation (offline in `app.study.offline`, with a model in `app.study.generated`) takes
`app.library.contents.Page`s and returns these; the study service stores cards in decks and cites
every item by page and quote. A quote is text of its page, so the viewer can show where it came from.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CardDraft:
    front: str
    back: str
    page: int
    quote: str  # text of `page` the card came from
    kind: str  # "definition", "term", "cloze" or "question" (made by a model)


@dataclass(frozen=True)
class QuestionDraft:
    question: str
    choices: tuple[str, str, str, str]  # four distinct choices
    answer_index: int  # 0-3
    page: int
    quote: str


@dataclass(frozen=True)
class GuideTerm:
    term: str
    definition: str
    page: int
    quote: str


@dataclass(frozen=True)
class GuideSentence:
    text: str
    page: int


@dataclass(frozen=True)
class GuideDraft:
    terms: list[GuideTerm] = field(default_factory=list)
    central: list[GuideSentence] = field(default_factory=list)  # the chapter's most central sentences
    summary: str | None = None  # with a model: prose citing [n], n indexing `summary_sources`
    summary_sources: list[GuideSentence] = field(default_factory=list)
