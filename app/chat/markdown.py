"""Assistant answers: Markdown in, safe HTML out, with citation markers as `<sup>` elements.

The model's text may carry prompt-injected content from a book, so nothing in it is trusted: raw HTML
is escaped, images become their alt text (no URL a browser would fetch on its own), and the HTML is
sanitised against an allow-list afterwards anyway.
"""

import re
from collections.abc import Sequence
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

# "[1]", "[1, 3]"; three digits at most, so a bracketed year is not a citation.
CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")

# Headings in a chat bubble stay small: # and ## become h3, the rest h4.
HEADING_TAGS = {"h1": "h3", "h2": "h3", "h3": "h4", "h4": "h4", "h5": "h4", "h6": "h4"}

_cleaner = nh3.Cleaner(
    tags={"p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "h3", "h4", "a"}
    | {"table", "thead", "tbody", "tr", "th", "td", "sup", "span"},
    attributes={"a": {"href", "title"}, "sup": {"data-cite"}},
    allowed_classes={"sup": {"cite"}},
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


def citation_numbers(text: str) -> list[int]:
    """The distinct cited numbers, in order of first appearance."""
    numbers = (int(n) for match in CITATION.finditer(text) for n in match[1].split(","))
    return list(dict.fromkeys(numbers))


def _citation(state: StateInline, silent: bool) -> bool:
    match = CITATION.match(state.src, state.pos)
    # "[1](https://...)" is a real link whose text happens to be a number.
    if match is None or state.src.startswith("(", match.end()):
        return False
    if not silent:
        token = state.push("citation", "sup", 0)
        token.meta = {"numbers": [int(n) for n in match[1].split(",")]}
    state.pos = match.end()
    return True


def _render_citation(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return "".join(f'<sup class="cite" data-cite="{n}">[{n}]</sup>' for n in tokens[idx].meta["numbers"])


def _render_image_as_alt(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return escapeHtml(self.renderInlineAsText(tokens[idx].children or [], options, env))


_md = MarkdownIt("commonmark", {"html": False}).enable("table")
_md.inline.ruler.before("link", "citation", _citation)
_md.add_render_rule("citation", _render_citation)
_md.add_render_rule("image", _render_image_as_alt)


def render_answer(markdown_text: str) -> str:
    """Render an assistant answer to HTML that is safe to insert into the page as is."""
    env: dict[str, Any] = {}
    tokens = _md.parse(markdown_text, env)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = HEADING_TAGS[token.tag]
    return _cleaner.clean(_md.renderer.render(tokens, _md.options, env))
