"""Key terms of a chapter and the sentences that define them.

A definition is found where the text says so: a glossary entry ("interpreter: A program that reads
another program and executes it"), "A program is a sequence of …", "… is called parsing", "… is
defined as …", "we call … ", "we say that A is a subset of B". A key term is a phrase the chapter
uses more than the rest of the book does (tf-idf over pages), built of words that are not function
words.
"""

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from app.library.contents import Page
from app.study.sentences import Sentence, body_lines, book_sentences, running_heads

# English function words, and words that describe rather than name: never a term alone, never the
# first or last word of one; a run of content words stops at them.
STOP_WORDS = frozenset(
    """
    a about above across after afterwards again against all almost alone along already also although
    always am among amongst an and another any anyhow anyone anything anyway anywhere are around as
    at back be became because become becomes becoming been before beforehand behind being below
    beside besides between beyond both but by can cannot could did do does doing done down due
    during each either else elsewhere enough even ever every everyone everything everywhere except
    few first for former formerly from further get gets getting give given gives go goes going gone
    got had has have having he hence her here hereby herein hers herself him himself his how however
    i if in indeed instead into is it its itself just keep last latter least less let like likely
    made make makes making many may me meanwhile might mine more moreover most mostly much must my
    myself namely neither never nevertheless next no nobody none nor not nothing now nowhere of off
    often on once one only onto or other others otherwise our ours ourselves out over own per
    perhaps please put quite rather really regarding same say says second see seem seemed seeming
    seems several she should show shown shows since so some somehow someone something sometime
    sometimes somewhere still such take takes than that the their theirs them themselves then thence
    there thereafter thereby therefore therein thereupon these they third this those though three
    through throughout thru thus to together too toward towards two under unless until up upon us
    use used uses using usually various very via was we well were what whatever when whence whenever
    where whereafter whereas whereby wherein whereupon wherever whether which while whither who
    whoever whole whom whose why will with within without would yet you your yours yourself
    yourselves able actually already called can't consider define defined definition different don't
    doesn't easy following good great hard important instance it's kind let's lot mean means new
    note notice reason right simple simply small start sure suppose thing things think true false
    try want way ways work write written yes
    strange particular handy previous excellent large certain specific general common main entire
    obvious interesting useful similar typical single better best worse easier difficult nice
    usual whole above below earlier later
    """.split()  # noqa: SIM905
)
# Textbook scaffolding: part of a term ("natural numbers", "running time"), never a term alone or its
# first word ("example program").
SCAFFOLD = frozenset(
    """
    number numbers problem problems point result time times word words part page section sections
    chapter chapters figure question questions example examples exercise exercises term terms
    """.split()  # noqa: SIM905
)
_WORD = re.compile(r"[^\W\d_][\w’'-]*[^\W_]|[^\W\d_]")
_PRONOUN_START = frozenset(
    """
    this that these those it they there here he she we you i one each such which what who another
    other some any all most many both either neither
    """.split()  # noqa: SIM905
)
_MAX_TERM_WORDS = 4


def words_of(text: str) -> list[str]:
    return _WORD.findall(text)


@lru_cache(maxsize=65536)
def key(term: str) -> str:
    """One spelling for a term and its near-duplicates: case, articles, plurals, hyphens folded."""
    words = re.sub(r"[-‐–_]", " ", term.lower().strip(" “”\"'‘’.,;:")).split()
    while words and words[0] in ("a", "an", "the"):
        words.pop(0)
    return " ".join(_singular(word) for word in words)


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def is_term(phrase: str) -> bool:
    """A phrase that can stand as a key term: 1-4 words, no function word at either end, mostly letters."""
    words = phrase.split()
    if not 1 <= len(words) <= _MAX_TERM_WORDS or len(phrase) > 48:
        return False
    lowered = [word.lower() for word in words]
    if lowered[0] in STOP_WORDS or lowered[-1] in STOP_WORDS or lowered[0] in _PRONOUN_START:
        return False
    if lowered[0] in SCAFFOLD:
        return False
    if sum(word in STOP_WORDS for word in lowered) > 1:
        return False
    letters = sum(ch.isalpha() for ch in phrase)
    if any(ch.isdigit() for ch in phrase) or max(len(word) for word in words) < 3:
        return False
    if letters < 0.8 * len(phrase.replace(" ", "")):
        return False
    if any(re.search(r"[a-z][A-Z]", word) or "_" in word for word in words):
        return False  # "AttributeError", "move_rectangle": code, not a term
    return not (len(words) == 1 and len(phrase) < 3)


@dataclass(frozen=True)
class Definition:
    term: str  # as the text spells it
    definition: str  # a reader's text: the glossary's gloss or the defining sentence, folded
    page: int
    quote: str  # exact text of the page
    source: str  # "glossary", "statement" ("A tree is …"), "naming" ("… is called a tree"), "condition"
    question: str = ""  # how a card asks for it, when not "What is meant by …": "When is an argument valid?"

    @property
    def key(self) -> str:
        return key(self.term)


# A term as a sentence names it: up to four words, possibly quoted.
_T = r"[“\"‘]?(?P<term>[^\W\d_][\w’'-]*(?: [^\W\d_][\w’'-]*){0,3})[”\"’]?"
_LEAD = r"^(?:(?:in|for|formally|informally)(?:\s+\w+){0,2},\s+)?"  # "For us, a set will …"
_STATEMENT = [
    # "A program is a sequence of instructions …", "Tokens are the basic elements …"
    re.compile(
        _LEAD + r"(?:an?\s+|the\s+)?" + _T + r"\s+(?:is|are)\s+(?:simply\s+)?"
        r"(?P<rest>(?:an?|the|one of the|any|all)\s+.+|\w+\s+(?:that|which|who|whose|of|in|for)\s+.+)$",
        re.IGNORECASE,
    ),
    # "A set will simply be an unordered collection of objects."
    re.compile(
        _LEAD
        + r"(?:an?\s+|the\s+)?"
        + _T
        + r"\s+(?:will|shall)\s+(?:simply\s+)?be\s+(?P<rest>(?:an?|the)\s+.+)$",
        re.IGNORECASE,
    ),
    # "A function is defined as …", "X is said to be …", "X means …", "X refers to …"
    re.compile(
        _LEAD
        + r"(?:an?\s+|the\s+)?"
        + _T
        + r"\s+(?:is|are)\s+(?:defined|said)\s+(?:as|to be)\s+(?P<rest>.+)$",
        re.IGNORECASE,
    ),
    re.compile(
        _LEAD + r"(?:an?\s+|the\s+)?" + _T + r"\s+(?:means|refers to|denotes)\s+(?P<rest>.+)$", re.IGNORECASE
    ),
]
# "An argument is deductively valid if and only if …", "A graph is bipartite if …"
_CONDITION = re.compile(
    _LEAD + r"(?P<subject>(?:an?|the)\s+[^\W\d_][\w’'-]*(?:\s+[^\W\d_][\w’'-]*){0,2}?)\s+(?:is|are)\s+"
    r"(?:said to be\s+|called\s+)?" + _T + r",?\s+(?:if|iff|when|whenever|provided)\b",
    re.IGNORECASE,
)
_NAMING = [
    # "… are called bugs", "… is known as the power set", "… is referred to as …"
    re.compile(
        r"\b(?:is|are|be)\s+(?:often\s+|sometimes\s+|also\s+)?(?:called|known as|referred to as|termed)\s+"
        r"(?:an?\s+|the\s+)?" + _T,
        re.IGNORECASE,
    ),
    # "We will use the term speed to refer to how fast …"
    re.compile(
        r"\b(?:the|a)\s+(?:term|word|name)\s+"
        + _T
        + r"\s+(?:to refer to|to mean|to describe|to denote|for)\b",
        re.IGNORECASE,
    ),
    # "we call them tokens" / "we call this a loop"
    re.compile(r"\bwe\s+call\s+(?:this|these|it|them)\s+(?:an?\s+|the\s+)?" + _T, re.IGNORECASE),
    # "we say that A is a subset of B"
    re.compile(r"\bwe\s+say\s+(?:that\s+)?\w+\s+(?:is|are)\s+(?:an?\s+|the\s+)?" + _T, re.IGNORECASE),
]
# "We call the set of all subsets of A the power set of A": the name follows the second article
_WE_CALL = re.compile(r"\bwe\s+call\s+(?:the|an?)\s+(?P<rest>.+)$", re.IGNORECASE)
_ARTICLE_TERM = re.compile(r"\b(?:the|an?)\s+" + _T)
_GLOSSARY = re.compile(r"^(?P<term>[^\W\d_][\w’'\- ]{0,40}?):\s+(?P<gloss>\S.*)$", re.DOTALL)
_LABELS = frozenset(
    """
    note example examples solution solutions proof hint exercise answer answers warning remark
    theorem lemma corollary question definition symbol read input output caution tip warning aside
    fact claim case cases step investigate notation summary see also prove show discussion careful todo
    first firstly second secondly third thirdly fourthly fifthly sixthly seventhly eighthly ninthly tenthly
    """.split()  # noqa: SIM905
)


def _term_from(match: re.Match[str], *, runs_on: bool = False) -> str | None:
    """The term a pattern matched. `runs_on`: the match may run on into the sentence ("called bugs and
    the process …" → "bugs"); otherwise the term must stand alone ("The constant a is …" names no term)."""
    term = re.sub(r"^\S+[’']s\s+", "", match.group("term").strip())  # "the set’s cardinality"
    opened = match.string[match.start("term") - 1 : match.start("term")] in ("“", '"', "‘")
    if opened and match.string[match.end("term") : match.end("term") + 1] not in ("”", '"', "’"):
        return None  # a quoted name that goes on past four words or a comma: “Hello, World!”
    words = term.split()
    for index, word in enumerate(words):
        if word.lower() in STOP_WORDS and index > 0:
            if not runs_on and word == "of" and 0 < index < len(words) - 1:
                continue  # "An inertial frame of reference is …"
            if not runs_on or word.lower() in ("a", "an", "the") and words[index - 1].endswith("ing"):
                return None  # "is called taking the anti-derivative": an action, not a name
            term = " ".join(words[:index])
            break
    return term if is_term(term) else None


# "… is a big topic", "… is a good idea": a judgement, not a definition
_JUDGED = re.compile(
    r"^(?:an?|the)\s+(?:big|good|great|useful|important|powerful|common|simple|nice|bad|hard|easy|"
    r"difficult|little|small|large|better|best|popular|convenient|strange|bit|lot|way|example|reference)\b",
    re.IGNORECASE,
)


# A naming sentence that leans on the one before: "This process is called parsing."
_LEANS_BACK = re.compile(r"^(?:this|these|such|that|it|they)\b|\blike (?:this|these|that)\b", re.IGNORECASE)


def sentence_definitions(
    sentences: Sequence[Sentence], texts: dict[int, str] | None = None
) -> list[Definition]:
    """Definitions stated in the sentences. With the pages' `texts`, a naming sentence that leans on
    the one before it ("This process is called parsing.") is quoted together with it."""
    found = []
    for index, sentence in enumerate(sentences):
        text = sentence.text
        for pattern in _STATEMENT:
            match = pattern.match(text)
            rest = match.group("rest") if match else ""
            term = _term_from(match) if match and len(rest.split()) >= 4 and not _JUDGED.match(rest) else None
            if term and term.split()[0].lower() not in _PRONOUN_START:
                found.append(Definition(term, text, sentence.page, sentence.quote, "statement"))
                break
        else:
            condition = _CONDITION.match(text)
            if condition and (term := _term_from(condition)):
                subject = condition.group("subject")
                subject = subject[:1].lower() + subject[1:]
                question = f"When is {subject} {term}?"
                found.append(Definition(term, text, sentence.page, sentence.quote, "condition", question))
                continue
            terms = []
            for pattern in _NAMING:
                terms += [
                    term for match in pattern.finditer(text) if (term := _term_from(match, runs_on=True))
                ]
            if call := _WE_CALL.search(text):
                named = (
                    term
                    for match in _ARTICLE_TERM.finditer(call.group("rest"))
                    if (term := _term_from(match, runs_on=True))
                )
                terms += [term for term in [next(named, None)] if term]
            if not terms:
                continue
            definition, quote = text, sentence.quote
            before = sentences[index - 1] if index else None
            page_text = texts.get(sentence.page) if texts else None
            if (
                _LEANS_BACK.search(text)
                and before is not None
                and page_text is not None
                and before.page == sentence.page
                and page_text[before.end : sentence.start].isspace()
            ):
                definition, quote = f"{before.text} {text}", page_text[before.start : sentence.end]
            for term in terms:
                found.append(Definition(term, definition, sentence.page, quote, "naming"))
    return found


GLOSSARY_ENTRIES = 3  # distinct terms on a page and the pages either side of it, for it to hold a glossary


def glossary_definitions(pages: Sequence[Page]) -> list[Definition]:
    """'term: Gloss' entries, each running on over its following lines until the next entry, on pages
    that hold a glossary: several entries of distinct terms on the page and the pages either side of
    it, mostly each once, and each gloss opening with a capital as glossaries write them. A lone
    "Careful: …", "Discussion: …" or "TODO: …", a sentence wrapped after "… how many strings:", a
    symbolisation key ("Lxy: x likes y"), or "Converse: …" and "Contrapositive: …" over and over in an
    answer key are not a glossary: Levin's counting chapter made quiz questions of such lines.
    """
    heads = running_heads(pages)
    by_page = {page.number: _entries(page, heads) for page in pages}

    def glossary_near(number: int) -> bool:
        near = by_page.get(number - 1, []) + by_page[number] + by_page.get(number + 1, [])
        terms = {entry.term.lower() for entry in near}
        return len(terms) >= GLOSSARY_ENTRIES and 2 * len(terms) >= len(near)  # each defined once, mostly

    return [
        entry for number, entries in by_page.items() if entries and glossary_near(number) for entry in entries
    ]


def _entries(page: Page, heads: set[str]) -> list[Definition]:
    """A page's 'term: Gloss' entries (before checking that the page holds a glossary)."""
    found = []
    lines = body_lines(page, heads)
    entries: list[tuple[int, int]] = []  # (first line, last line) of each entry
    for index, line in enumerate(lines):
        if (match := _GLOSSARY.match(line.text)) and len(match.group("term").split()) <= _MAX_TERM_WORDS:
            entries.append((index, index))
        elif (
            entries
            and entries[-1][1] == index - 1
            and not line.text.endswith(":")
            and not line.text[:1].isupper()  # a capital opens the next paragraph, not the gloss's rest
            and not lines[entries[-1][1]].text.endswith((".", "?", "!"))
        ):
            entries[-1] = (entries[-1][0], index)
    for first, last in entries:
        start, end = lines[first].start, lines[last].end
        quote = page.text[start:end]
        match = _GLOSSARY.match(" ".join(quote.split()))
        if not match:
            continue
        term, gloss = match.group("term").strip(), match.group("gloss").strip()
        if term.lower() in _LABELS or not is_term(term) or len(words_of(gloss)) < 3:
            continue
        if gloss.count(",") >= len(gloss.split()) / 2:
            continue  # "attributes: width, height, corner.": a list, not a gloss
        letters = sum(ch.isalpha() for ch in gloss)
        if letters < 0.7 * len(gloss.replace(" ", "")) or not gloss.lstrip("“‘\"'(")[:1].isupper():
            continue
        found.append(Definition(term, gloss, page.number, quote, "glossary"))
    return found


# Words after which a noun phrase begins: "the interpreter", "a set", "each element", "of objects".
_DETERMINERS = frozenset(
    "a an the this that these those each every any some no its their our your his her one another of".split()  # noqa: SIM905
)


# Words after which a verb follows more often than a noun: "to read", "we call", "which contains".
_VERB_CUES = frozenset(
    """
    to can could will would may might must should shall we you they i it not also then which who that
    usually often always never
    """.split()  # noqa: SIM905
)


# (text, after a determiner: "the union", after a verb cue: "to read", head: no content word follows)
Phrase = tuple[str, bool, bool, bool]
_TOKEN = re.compile(r"[\w’'-]+|[^\w\s’'-]+")


def candidate_phrases(text: str) -> list[Phrase]:
    """Phrases of 1-3 content words, split at function words and punctuation ("the Python interpreter
    reads code" → "Python interpreter", "Python", "interpreter", "reads code", …)."""
    phrases: list[Phrase] = []
    run: list[str] = []
    cue = previous = ""  # the function word before the run; the last token's, when it is one
    first = True  # a sentence's first word: "A" there is the article, elsewhere often a name ("A contains")
    for token in [*_TOKEN.findall(text), ""]:
        clean = token.strip("’'-")
        lower = clean.lower()
        if len(clean) > 1 and lower not in STOP_WORDS and clean.replace("-", "").isalpha():
            if not run:
                cue = previous
            run.append(clean)
            first = False
            continue
        if run:
            determined, acted, length = cue in _DETERMINERS, cue in _VERB_CUES, len(run)
            for size in range(1, min(3, length) + 1):
                for begin in range(length - size + 1):
                    opening = begin == 0
                    phrases.append(
                        (
                            " ".join(run[begin : begin + size]),
                            opening and determined,
                            opening and acted,
                            begin + size == length,
                        )
                    )
            run = []
        previous = lower if clean.islower() or (first and clean in ("A", "An", "The")) else ""
        first = False
    return phrases


@dataclass(frozen=True)
class Reference:
    """How many of a book's pages use each phrase: what makes a chapter's term specific."""

    pages: int
    frequency: Counter[str]


@lru_cache(maxsize=8)
def reference(book_pages: tuple[Page, ...]) -> Reference:
    by_page: dict[int, set[str]] = defaultdict(set)
    for sentence in book_sentences(book_pages):
        by_page[sentence.page].update(key(phrase[0]) for phrase in candidate_phrases(sentence.text))
    frequency: Counter[str] = Counter()
    for phrases in by_page.values():
        frequency.update(phrases)
    return Reference(len(by_page), frequency)  # the pages with prose


@dataclass
class TermStats:
    spelling: str  # the commonest spelling in the chapter
    count: int
    pages: int
    score: float
    named: int  # times it follows a determiner ("the union"): a thing
    acted: int  # times it follows "to", "we", "which"…: an action
    heads: int  # times no other content word follows it


def key_terms(sentences: Sequence[Sentence], book: Reference | None = None) -> dict[str, TermStats]:
    """Each candidate key term's specificity: its count in the chapter, weighted by how few of the
    book's pages use it (idf; the chapter's own pages without a book), and by length (a two-word term
    is rarer than its words)."""
    counts: Counter[str] = Counter()
    named: Counter[str] = Counter()
    acted: Counter[str] = Counter()
    heads: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    pages_with: dict[str, set[int]] = defaultdict(set)
    for sentence in sentences:
        for text, determined, acted_on, head in candidate_phrases(sentence.text):
            phrase_key = key(text)
            counts[phrase_key] += 1
            named[phrase_key] += determined
            acted[phrase_key] += acted_on
            heads[phrase_key] += head
            spellings[phrase_key][text] += 1
            pages_with[phrase_key].add(sentence.page)
    chapter_pages = len({sentence.page for sentence in sentences}) or 1
    stats = {}
    for phrase_key, count in counts.items():
        words = phrase_key.split()
        size = len(words)
        if count < 2 and size == 1 or not words or words[0] in SCAFFOLD:
            continue
        if book is not None and book.pages:
            idf = math.log((book.pages + 1) / (book.frequency[phrase_key] + 1)) + 1
        else:
            idf = math.log((chapter_pages + 1) / (len(pages_with[phrase_key]) + 0.5)) + 1.5
        # sqrt, not log, of the count, and the chapter's pages that use it: a term the chapter keeps
        # using outranks the name in one example ("wild animal park"), rare in the book as that is
        spread = 0.5 + 0.5 * min(1.0, len(pages_with[phrase_key]) / 3)
        score = math.sqrt(count) * idf * (1 + 0.3 * (size - 1)) * spread
        if len(phrase_key) <= 3:
            score *= 0.5
        spelling = _spelling(spellings[phrase_key])
        stats[phrase_key] = TermStats(
            spelling,
            count,
            len(pages_with[phrase_key]),
            score,
            named[phrase_key],
            acted[phrase_key],
            heads[phrase_key],
        )
    return stats


def _spelling(seen: Counter[str]) -> str:
    """The lower-case spelling when the text uses one (a sentence's first word is capitalised)."""
    lower = [(count, spelling) for spelling, count in seen.items() if spelling == spelling.lower()]
    if lower:
        return max(lower)[1]
    return seen.most_common(1)[0][0]
