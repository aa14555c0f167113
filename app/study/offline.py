"""Flashcards, quiz questions and a study guide from a chapter's own text, with no model.

Every item quotes its page exactly (`quote` is a substring of that `Page.text`) and names the page.
Cards come in three kinds: a definition the text states (glossary entries, "A tree is …", "… is
called …"), a key term with the sentence that explains it, and a cloze (a central sentence with its
key term blanked). They are ranked by what the text marks as a definition, how specific the term is
to the chapter (tf-idf against the book) and how central its sentence is (TextRank).
"""

import random
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from functools import lru_cache

from wordfreq import word_frequency

from app.library.contents import Page
from app.study.drafts import CardDraft, GuideDraft, GuideSentence, GuideTerm, QuestionDraft
from app.study.ranking import centrality
from app.study.sentences import Sentence, book_sentences, chapter_sentences, prose_pages
from app.study.terms import (
    Definition,
    TermStats,
    candidate_phrases,
    glossary_definitions,
    key,
    key_terms,
    reference,
    sentence_definitions,
)

BLANK = "_____"
# Openings of a sentence that leans on the one before it, or sets a task.
_DANGLING = re.compile(
    r"^(?:also|but|so|and|or|this|that|these|those|it|they|then|thus|hence|however|now|yet|here|there|"
    r"such|again|instead|similarly|otherwise|finally|for example|for instance|in this case|of course)\b",
    re.IGNORECASE,
)
_CODE_WORD = re.compile(r"\w_\w|\w\(\)|\w\.\w+\(")
_EXERCISE = re.compile(
    r"^(?:\(?[a-z0-9]{1,3}[.)]\s+|as an exercise,?\s+)?(?:find|describe|explain|show|prove|compute|"
    r"calculate|determine|write|list|give|suppose|let|consider|draw|use|try|what|which|how|why|exercise|"
    r"problem|hint|solution|"
    r"example|answer|figure|fig|table|listing)\b",
    re.IGNORECASE,
)
MAX_BACK = 420
# A cloze blanks a term the chapter uses at least this many times more often than English does
# (wordfreq's frequency): "measurement" in a physics chapter (1,600×), "nature" in the Meditations
# (46×), never "hand" (6×), "world" (2×) or "life" (4×) there. Set by reading the clozes of six
# chapters of the corpus books (one a book); 10 is where the common words stop.
MIN_KEYNESS = 10.0
_SOURCE_WEIGHT = {"glossary": 1.5, "statement": 1.2, "condition": 1.2, "naming": 1.0}
_EXPLAINS = (
    r"(?:is|are|means|refers to|represents|describes|contains|consists of|provides|indicates|performs)"
)


@dataclass
class Chapter:
    """What generation needs to know about a chapter, worked out once."""

    sentences: list[Sentence]
    centre: dict[tuple[int, int], float]  # (page, start) → centrality, 0-1 (the chapter's best is 1)
    definitions: list[tuple[float, Definition]]  # one per term, best first
    terms: dict[str, TermStats]  # by key
    top_term: float
    words: int  # in its sentences
    _keys: dict[tuple[int, int], frozenset[str]] = field(default_factory=dict)
    _worth: dict[tuple[int, int], float] = field(default_factory=dict)

    def keys_in(self, sentence: Sentence) -> frozenset[str]:
        """The keys of the candidate terms the sentence uses."""
        where = (sentence.page, sentence.start)
        if where not in self._keys:
            self._keys[where] = frozenset(key(phrase[0]) for phrase in candidate_phrases(sentence.text))
        return self._keys[where]

    def central(self, sentence: Sentence) -> float:
        return self.centre.get((sentence.page, sentence.start), 0.0)

    def keyness(self, term_key: str) -> float:
        """How many times more often the chapter uses the term than English at large does."""
        stats = self.terms.get(term_key)
        if stats is None or not self.words:
            return 0.0
        english = word_frequency(term_key, "en")
        return stats.count / self.words / english if english else float("inf")

    def specificity(self, term_key: str) -> float:
        stats = self.terms.get(term_key)
        return stats.score / self.top_term if stats and self.top_term else 0.0

    def worth(self, sentence: Sentence) -> float:
        """What a sentence is worth to a student: central, naming the chapter's specific terms, and
        standing on its own (not "Also, …", not an exercise's "Describe the set …")."""
        where = (sentence.page, sentence.start)
        if where in self._worth:
            return self._worth[where]
        value = 0.0
        if not (_EXERCISE.match(sentence.text) or sentence.text.endswith("?")):
            density = max((self.specificity(k) for k in self.keys_in(sentence)), default=0.0)
            value = 0.6 * self.central(sentence) + 0.4 * density
            if _DANGLING.match(sentence.text):
                value *= 0.5
            if _CODE_WORD.search(sentence.text):
                value *= 0.3  # "write a function named move_rectangle that …"
        self._worth[where] = value
        return value


def read_chapter(
    pages: Sequence[Page],
    book_pages: Sequence[Page] = (),
    *,
    rank: bool = True,
    sentences: Sequence[Sentence] | None = None,
) -> Chapter:
    """`rank=False` leaves out sentence centrality (the costly part), for a whole book's terms."""
    sentences = list(chapter_sentences(pages) if sentences is None else sentences)
    scores = centrality(sentences) if rank else [0.0] * len(sentences)
    best = max(scores, default=0.0) or 1.0
    centre = {(s.page, s.start): score / best for s, score in zip(sentences, scores, strict=True)}
    terms = key_terms(sentences, reference(tuple(book_pages)) if book_pages else None)
    top_term = max((stats.score for stats in terms.values()), default=0.0)
    chapter = Chapter(sentences, centre, [], terms, top_term, sum(s.words for s in sentences))
    by_quote = {(s.page, s.quote): s for s in sentences}
    texts = {page.number: page.text for page in pages}
    ranked: dict[str, tuple[float, Definition]] = {}
    for definition in [*glossary_definitions(prose_pages(pages)), *sentence_definitions(sentences, texts)]:
        if definition.source != "glossary" and not _named_thing(definition, terms):
            continue
        spelling = terms[definition.key].spelling if definition.key in terms else definition.term
        if definition.term[:1].isupper() and spelling == definition.term.lower():
            definition = replace(definition, term=spelling)  # "Logic is …" defines "logic"
        sentence = by_quote.get((definition.page, definition.quote))
        score = (
            _SOURCE_WEIGHT[definition.source]
            + chapter.specificity(definition.key)
            + (chapter.central(sentence) if sentence else 0.5)
        )
        if (
            definition.source == "glossary"
            and definition.term[:1].isupper()
            and not definition.term.isupper()
        ):
            score -= 0.8  # "Poetry: Words are used for …" is a paragraph's label more often than a gloss
        held = ranked.get(definition.key)
        if held is None or score > held[0]:
            ranked[definition.key] = (score, definition)
    chapter.definitions = sorted(ranked.values(), key=lambda item: -item[0])
    return chapter


def _named_thing(definition: Definition, terms: dict[str, TermStats]) -> bool:
    """A one-word term a sentence opens with ("Short is the life of every man", "Seldom are any …") is a
    term only if the chapter also names it as a thing somewhere ("the logic", "of logic")."""
    term = definition.term
    if " " in term or not term[:1].isupper() or term.isupper() or not definition.definition.startswith(term):
        return True
    stats = terms.get(definition.key)
    return stats is not None and stats.named > 0


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _clip(text: str) -> str:
    if len(text) <= MAX_BACK:
        return text
    return text[:MAX_BACK].rsplit(" ", 1)[0] + " …"


def _term_pattern(term: str) -> re.Pattern[str]:
    """The term as written in a sentence, in the singular or the plural, in any case."""
    words = [re.escape(word) for word in term.split()]
    last = words[-1]
    stem = last[:-1] if last.endswith("s") and len(last) > 3 else last
    ending = rf"{stem}(?:s|es)?"
    body = r"[\s-]+".join([*words[:-1], ending]) if len(words) > 1 else ending
    return re.compile(rf"(?<![\w-]){body}(?![\w-])", re.IGNORECASE)


def blanked(text: str, term: str) -> str | None:
    """The text with every mention of the term blanked, or None when it does not mention it."""
    result, replaced = _term_pattern(term).subn(BLANK, text)
    return result if replaced else None


def _definition_card(definition: Definition) -> CardDraft:
    back = _capital(definition.definition) if definition.source == "glossary" else definition.definition
    return CardDraft(
        front=definition.question or f"What is meant by “{definition.term}”?",
        back=_clip(back),
        page=definition.page,
        quote=definition.quote,
        kind="definition",
    )


def _near(a: str, b: str) -> bool:
    """Two term keys that name the same thing, or one inside the other ("set", "empty set")."""
    if a == b or re.search(rf"\b{re.escape(a)}\b", b) or re.search(rf"\b{re.escape(b)}\b", a):
        return True
    return _alike(a, b, 0.85)


def clozeable(term_key: str, stats: TermStats, terms: dict[str, TermStats] | None = None) -> bool:
    """A term worth blanking: a noun phrase used more than in passing, not a verb form or an adverb."""
    words = term_key.split()
    if stats.heads < 0.5 * stats.count:
        return False  # mostly followed by another word: "natural" (numbers), "real" (numbers)
    last = terms.get(words[-1]) if terms and len(words) > 1 else None
    if last is not None and last.acted > last.named:
        return False  # "circles represents"
    if stats.named == 0 or stats.acted >= stats.named:
        return False  # rather "to …", "which …" than "the …": an action or a quality, not a thing
    if len(words) == 1 and (stats.count < 3 or re.search(r"(?:ing|ed|ly|er)$", term_key)):
        return False
    capitalised = stats.spelling[:1].isupper() and not stats.spelling.isupper()
    return not re.search(r"(?:ing|ly)$", words[-1]) and not capitalised


def _same(a: str, b: str) -> bool:
    """Two term keys for one card: equal once folded, spelt nearly alike ("colour", "color"), or a
    word and the phrase it qualifies ("contingent", "contingent sentence"; "valid", "deductively
    valid"). A phrase's head is another term: "set" and "power set" get a card each."""
    if a == b or _alike(a, b, 0.9):
        return True
    word, phrase = (a, b.split()) if " " not in a else (b, a.split())
    if " " in word or len(phrase) < 2:
        return False
    return phrase[0] == word or (phrase[0].endswith("ly") and phrase[-1] == word)


def _alike(a: str, b: str, threshold: float) -> bool:
    matcher = SequenceMatcher(None, a, b)
    return (
        matcher.real_quick_ratio() > threshold
        and matcher.quick_ratio() > threshold
        and matcher.ratio() > threshold
    )


def _best_term(chapter: Chapter, sentence: Sentence, used: set[str]) -> tuple[str, str] | None:
    """The sentence's most specific key term that has no card yet: (key, spelling in the sentence)."""
    ranked = []
    for term_key in chapter.keys_in(sentence):
        stats = chapter.terms.get(term_key)
        if (
            stats is None
            or len(term_key) < 4
            or stats.count < 2
            or term_key in used
            or not clozeable(term_key, stats, chapter.terms)
        ):
            continue
        ranked.append((stats.score, term_key, stats.spelling))
    for _, term_key, spelling in sorted(ranked, reverse=True):
        match = _term_pattern(spelling).search(sentence.text)
        if match is None or chapter.keyness(term_key) < MIN_KEYNESS:
            continue  # a word of everyday English: the blank is a guess, not a recall
        if re.match(r"\s*\d", sentence.text[match.end() :]):
            continue  # "Table 2.4", "Figure 3": a label, not a term
        return term_key, match.group(0)
    return None


def flashcards(
    pages: Sequence[Page],
    *,
    count: int = 20,
    book_pages: Sequence[Page] = (),
    known: Collection[tuple[int, str]] = (),
) -> list[CardDraft]:
    """Up to `count` cards, the most important first. `book_pages` (the whole book), when given,
    makes term specificity measured against the rest of the book. `known`: the (page, quote) of cards
    the student has already, which no card repeats (a second deck goes on where the first stopped)."""
    chapter = read_chapter(pages, book_pages)
    scored: list[tuple[float, CardDraft]] = []
    used_terms: list[str] = []
    used_quotes: set[tuple[int, str]] = set(known)

    def fresh(term_key: str) -> bool:
        return not any(_same(term_key, other) for other in used_terms)

    for score, definition in chapter.definitions:
        if fresh(definition.key) and (definition.page, definition.quote) not in used_quotes:
            scored.append((score, _definition_card(definition)))
            used_terms.append(definition.key)
            used_quotes.add((definition.page, definition.quote))
    ranked_sentences = sorted(chapter.sentences, key=lambda s: -chapter.worth(s))
    for sentence in ranked_sentences:
        if len(scored) >= count * 2:
            break
        if (sentence.page, sentence.quote) in used_quotes or not 8 <= sentence.words <= 45:
            continue
        if chapter.worth(sentence) <= 0:
            break  # the rest are exercises and questions
        found = _best_term(chapter, sentence, set(used_terms))
        if found is None or not fresh(found[0]):
            continue
        term_key, spelling = found
        explains = re.match(rf"^(?:an?\s+|the\s+)?{re.escape(spelling)}\s+{_EXPLAINS}\b", sentence.text, re.I)
        base = chapter.specificity(term_key) + chapter.worth(sentence)
        if explains:
            card = CardDraft(
                front=spelling,
                back=_clip(sentence.text),
                page=sentence.page,
                quote=sentence.quote,
                kind="term",
            )
            scored.append((0.6 + base, card))
        else:
            front = blanked(sentence.text, spelling)
            if front is None or front.count(BLANK) > 2:
                continue
            card = CardDraft(
                front=front, back=spelling, page=sentence.page, quote=sentence.quote, kind="cloze"
            )
            scored.append((0.4 + base, card))
        used_terms.append(term_key)
        used_quotes.add((sentence.page, sentence.quote))
    scored.sort(key=lambda item: -item[0])
    return [card for _, card in scored[:count]]


@lru_cache(maxsize=4)
def _book(pages: tuple[Page, ...]) -> Chapter:
    """A whole book's defined and key terms, for distractors; kept for the next quiz on the same book."""
    return read_chapter(pages, pages, rank=False, sentences=book_sentences(pages))


@dataclass(frozen=True)
class _Ask:
    question: str
    answer: str  # the term, as the text spells it
    answer_key: str
    page: int
    quote: str


def _questions(chapter: Chapter) -> Iterator[_Ask]:
    """Questions, best first: the chapter's definitions, then its most valuable sentences' terms."""
    used = {definition.key for _, definition in chapter.definitions}
    for _, definition in chapter.definitions:
        if definition.source == "glossary":
            gloss = blanked(definition.definition, definition.term) or definition.definition
            question = f"Which term is defined as: “{_capital(gloss)}”?"
        else:
            blank = blanked(definition.definition, definition.term)
            if blank is None:
                continue
            question = f"Which term fills the blank? “{blank}”"
        yield _Ask(question, definition.term, definition.key, definition.page, definition.quote)
    for sentence in sorted(chapter.sentences, key=lambda s: -chapter.worth(s)):
        if chapter.worth(sentence) <= 0:
            break  # the rest are exercises and questions
        if not 8 <= sentence.words <= 45:
            continue
        found = _best_term(chapter, sentence, used)
        if found and (blank := blanked(sentence.text, found[1])) and blank.count(BLANK) <= 2:
            used.add(found[0])
            yield _Ask(
                f"Which term fills the blank? “{blank}”", found[1], found[0], sentence.page, sentence.quote
            )


def _distractor_pool(chapter: Chapter, book: Chapter | None) -> list[tuple[float, str, str]]:
    """(weight, key, spelling): the chapter's defined terms, its key terms, then the book's."""
    pool: list[tuple[float, str, str]] = []
    seen: set[str] = set()

    def add(weight: float, term_key: str, spelling: str) -> None:
        # Not an everyday word ("menu", "method", "left") beside a term of the book: it gives itself away.
        if term_key not in seen and len(term_key) >= 3 and (book or chapter).keyness(term_key) >= MIN_KEYNESS:
            seen.add(term_key)
            pool.append((weight, term_key, spelling))

    def named_terms(source: Chapter, limit: int) -> list[tuple[str, TermStats]]:
        ranked = sorted(source.terms.items(), key=lambda item: -item[1].score)
        return [(k, stats) for k, stats in ranked if clozeable(k, stats, source.terms)][:limit]

    for _, definition in chapter.definitions:
        add(3, definition.key, definition.term)
    for term_key, stats in named_terms(chapter, 60):
        add(2.5, term_key, stats.spelling)
    if book is not None:
        for _, definition in book.definitions:
            add(1.5, definition.key, definition.term)
        for term_key, stats in named_terms(book, 150):
            add(1, term_key, stats.spelling)
    return pool


def _styled(spelling: str, answer: str) -> str:
    """A distractor written like the answer: "Vertex coloring" beside "power set" is "vertex coloring"."""
    if answer[:1].islower() and spelling[:1].isupper() and spelling[1:] == spelling[1:].lower():
        return spelling[:1].lower() + spelling[1:]
    return spelling


def _choices(ask: _Ask, pool: list[tuple[float, str, str]], rng: random.Random) -> list[str] | None:
    """Three distractors of the same kind as the answer: defined or key terms, of about its length,
    in the same number, sharing its head word when they can ("formal language", "natural language")."""
    words = ask.answer.split()
    plural = ask.answer.endswith("s")
    head = ask.answer_key.split()[-1]
    question_key = f" {key(ask.question)} "
    candidates = []
    for weight, term_key, spelling in pool:
        if _near(term_key, ask.answer_key) or f" {term_key} " in question_key:
            continue
        likeness = weight - abs(len(spelling.split()) - len(words)) - 0.5 * (spelling.endswith("s") != plural)
        if len(words) > 1 and term_key.split()[-1] == head:
            likeness += 0.5
        candidates.append((likeness + rng.random(), _styled(spelling, ask.answer), term_key))
    candidates.sort(reverse=True)
    chosen: list[tuple[str, str]] = []
    for _, spelling, term_key in candidates[:12]:
        if all(not _near(term_key, other) for _, other in chosen):
            chosen.append((spelling, term_key))
    if len(chosen) < 3:
        return None
    picked = rng.sample(chosen[:6], 3)
    return [spelling for spelling, _ in picked]


def quiz(
    pages: Sequence[Page], *, count: int = 10, book_pages: Sequence[Page] = (), seed: int = 0
) -> list[QuestionDraft]:
    """Up to `count` multiple-choice questions: a definition or a central sentence with its term
    blanked; the other three choices are related key terms of the chapter, then of the book."""
    chapter = read_chapter(pages, book_pages)
    book = _book(tuple(book_pages)) if book_pages else None
    pool = _distractor_pool(chapter, book)
    questions: list[QuestionDraft] = []
    asked: list[str] = []
    for ask in _questions(chapter):
        if len(questions) >= count:
            break
        if any(_same(ask.answer_key, other) for other in asked):
            continue
        rng = random.Random(f"{seed}:{ask.answer_key}")
        distractors = _choices(ask, pool, rng)
        if distractors is None:
            continue
        asked.append(ask.answer_key)
        answer_index = rng.randrange(4)
        choices = [*distractors]
        choices.insert(answer_index, ask.answer)
        questions.append(
            QuestionDraft(
                question=ask.question,
                choices=(choices[0], choices[1], choices[2], choices[3]),
                answer_index=answer_index,
                page=ask.page,
                quote=ask.quote,
            )
        )
    return questions


def study_guide(
    pages: Sequence[Page], *, terms: int = 15, sentences: int = 8, book_pages: Sequence[Page] = ()
) -> GuideDraft:
    """The chapter's defined terms (most important first) and its most central sentences (in reading
    order), each with its page."""
    chapter = read_chapter(pages, book_pages)
    guide_terms: list[GuideTerm] = []
    taken: list[str] = []
    for _, definition in chapter.definitions:
        if len(guide_terms) >= terms:
            break
        if any(_same(definition.key, other) for other in taken):
            continue
        taken.append(definition.key)
        definition_text = (
            _capital(definition.definition) if definition.source == "glossary" else definition.definition
        )
        guide_terms.append(
            GuideTerm(definition.term, _clip(definition_text), definition.page, definition.quote)
        )
    candidates = [s for s in chapter.sentences if 10 <= s.words <= 50 and chapter.worth(s) > 0]
    best = sorted(candidates, key=lambda s: -chapter.worth(s))[:sentences]
    best.sort(key=lambda s: (s.page, s.start))
    return GuideDraft(terms=guide_terms, central=[GuideSentence(s.text, s.page) for s in best])
