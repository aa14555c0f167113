"""The chat page: login, scope pickers from the library, reopening and deleting conversations, isolation."""

import re

from tests.support.library import new_student, pdf_bytes


async def _conversation(student, query: str) -> str:
    """A conversation of `student`: with nothing ingested the answer is "not in your library"."""
    response = await student.client.post("/api/chat", json={"query": query}, headers=student.headers)
    assert response.status_code == 200, response.text
    assert response.json()["mode"] == "not_found"
    return response.json()["conversation_id"]


async def test_the_chat_page_requires_login(client):
    for path in ("/chat", "/chat/history", "/chat/00000000-0000-0000-0000-000000000000"):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/login?next={path}"


async def test_scope_pickers_offer_the_users_semesters_subjects_and_books(client):
    ada = await new_student(client)
    await ada.upload_one(("a.pdf", pdf_bytes("a")), semester="Y3S2", subject="NLP", book="NLTK_Book")
    await ada.upload_one(("b.pdf", pdf_bytes("b")), semester="Y1S1", subject="Logic", book="forall x")
    page = await ada.get("/chat")
    assert page.status_code == 200
    assert '<option value="">All semesters</option>' in page.text
    assert '<option value="">All subjects</option>' in page.text
    for semester in ("Y3S2", "Y1S1"):
        assert f'<option value="{semester}">{semester}</option>' in page.text
    # Subjects and books say where they occur, so the page can narrow them to the chosen semester.
    assert re.search(r'<option value="NLP" data-semesters=\'\["Y3S2"\]\'>NLP</option>', page.text)
    assert '<input type="checkbox" name="books" value="forall x">' in page.text
    assert '<input type="checkbox" name="books" value="NLTK_Book">' in page.text
    assert 'href="/chat" aria-current="page">Chat</a>' in page.text
    assert "/static/js/chat.js" in page.text

    # Someone else's library is not offered.
    bob = await new_student(client, "Bob")
    assert "NLTK_Book" not in (await bob.get("/chat")).text


async def test_a_reopened_conversation_shows_its_messages_and_scope(client):
    ada = await new_student(client)
    await ada.upload_one(("a.pdf", pdf_bytes("scope")), semester="Y3S2", subject="NLP", book="NLTK_Book")
    response = await ada.client.post(
        "/api/chat",
        json={
            "query": "What is a <b>token</b>?",
            "active_semester": "Y3S2",
            "active_subject": "NLP",
            "active_books": ["NLTK_Book"],
        },
        headers=ada.headers,
    )
    conversation = response.json()["conversation_id"]
    page = await ada.get(f"/chat/{conversation}")
    assert page.status_code == 200
    assert "What is a &lt;b&gt;token&lt;/b&gt;?" in page.text  # the question is text, not HTML
    assert "This is not in your library (in Y3S2 / NLP / NLTK_Book)" in page.text
    assert 'class="message assistant notice"' in page.text
    assert '<option value="Y3S2" selected>' in page.text
    assert re.search(r'<option value="NLP" data-semesters=\'[^\']*\' selected>', page.text)
    assert '<input type="checkbox" name="books" value="NLTK_Book" checked>' in page.text
    assert f'data-conversation="{conversation}"' in page.text
    assert f'name="conversation_id" value="{conversation}"' in page.text
    # In the history, marked as the open one.
    assert (
        f'<a href="/chat/{conversation}" title="What is a &lt;b&gt;token&lt;/b&gt;?" aria-current="page">'
        in (page.text)
    )


async def test_another_user_gets_404_and_never_sees_the_conversation(client):
    ada = await new_student(client)
    bob = await new_student(client, "Bob")
    conversation = await _conversation(ada, "Ada's private question about Gödel")
    assert "Ada's private question about Gödel" in (await ada.get("/chat")).text.replace("&#39;", "'")

    assert (await bob.get(f"/chat/{conversation}")).status_code == 404
    for page in (await bob.get("/chat"), await bob.get("/chat/history", headers={"HX-Request": "true"})):
        assert page.status_code == 200
        assert "private question" not in page.text and conversation not in page.text


async def test_history_fragment_lists_conversations_newest_first(client):
    ada = await new_student(client)
    first = await _conversation(ada, "First question")
    second = await _conversation(ada, "Second question")
    fragment = await ada.get(
        "/chat/history", headers={"HX-Request": "true", "HX-Current-URL": f"https://testserver/chat/{first}"}
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<nav id="chat-history"')
    assert "<html" not in fragment.text
    assert fragment.text.index("Second question") < fragment.text.index("First question")
    assert f'<li class="current">\n      <a href="/chat/{first}"' in fragment.text
    assert f'<li>\n      <a href="/chat/{second}"' in fragment.text


async def test_deleting_a_conversation(client):
    ada = await new_student(client)
    bob = await new_student(client, "Bob")
    keep = await _conversation(ada, "Keep this one")
    drop = await _conversation(ada, "Drop this one")

    # Not Bob's to delete, with HTMX or without.
    assert (await bob.delete(f"/chat/{drop}", headers={"HX-Request": "true"})).status_code == 404
    assert (await bob.client.post(f"/chat/{drop}/delete", headers=bob.headers)).status_code == 404
    assert (await ada.get(f"/chat/{drop}")).status_code == 200

    # From another page of the chat: the updated list comes back.
    htmx = {"HX-Request": "true", "HX-Current-URL": f"https://testserver/chat/{keep}"}
    response = await ada.delete(f"/chat/{drop}", headers=htmx)
    assert response.status_code == 200
    assert "Keep this one" in response.text and "Drop this one" not in response.text
    assert (await ada.get(f"/chat/{drop}")).status_code == 404
    assert (await ada.delete(f"/chat/{drop}", headers=htmx)).status_code == 404

    # The open conversation itself: back to a new chat.
    response = await ada.delete(f"/chat/{keep}", headers=htmx)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/chat"

    # Without JavaScript the form posts and is redirected.
    last = await _conversation(ada, "One more")
    response = await ada.client.post(f"/chat/{last}/delete", headers=ada.headers)
    assert response.status_code == 303 and response.headers["location"] == "/chat"
    assert "No conversations yet" in (await ada.get("/chat")).text


async def test_asking_without_javascript_posts_and_shows_the_answer(client):
    ada = await new_student(client)
    response = await ada.client.post(
        "/chat", data={"query": "What is a lemma?", "semester": "", "subject": ""}, headers=ada.headers
    )
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/chat/[0-9a-f-]{36}", location)
    page = await ada.get(location)
    assert "What is a lemma?" in page.text and "This is not in your library" in page.text

    conversation = location.rsplit("/", 1)[1]
    follow_up = await ada.client.post(
        "/chat", data={"query": "And a stem?", "conversation_id": conversation}, headers=ada.headers
    )
    assert follow_up.headers["location"] == location
    assert "And a stem?" in (await ada.get(location)).text

    bob = await new_student(client, "Bob")
    hijack = await bob.client.post(
        "/chat", data={"query": "more?", "conversation_id": conversation}, headers=bob.headers
    )
    assert hijack.status_code == 404
