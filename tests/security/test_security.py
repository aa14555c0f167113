"""Hostile requests: cross-site form posts, oversized bodies; and the headers every response carries."""

import httpx
import pytest

from app.config import get_settings
from app.templating import HTMX_CDN
from tests.support.accounts import PASSWORD, new_email, register
from tests.support.library import new_student, pdf_bytes

EVIL = "https://evil.example"


@pytest.fixture
async def browser_like(app):
    """A client with no default Origin: each test says where its requests come from."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        yield c


async def _cookie_session(client: httpx.AsyncClient) -> str:
    email = new_email()
    await register(client, email)
    response = await client.post(
        "/auth/cookie/login",
        data={"username": email, "password": PASSWORD},
        headers={"Origin": "https://testserver"},
    )
    assert response.status_code == 204
    return email


async def test_a_cross_site_form_post_is_refused_and_changes_nothing(browser_like):
    await _cookie_session(browser_like)
    # What a page on another site can make the victim's browser send: a form post with their cookie.
    forged = await browser_like.post(
        "/library/upload",
        data={"semester": "Y1", "subject": "Evil", "book": "Book"},
        files={"file": ("planted.pdf", pdf_bytes("planted"), "application/pdf")},
        headers={"Origin": EVIL},
    )
    assert forged.status_code == 403
    assert "came from another website" in forged.text
    assert "<html" in forged.text.lower()  # a page a person can read, not a stack trace
    library = await browser_like.get("/api/files")
    assert library.json() == []

    # The same post from our own page goes through.
    same_site = await browser_like.post(
        "/library/upload",
        data={"semester": "Y1", "subject": "Evil", "book": "Book"},
        files={"file": ("mine.pdf", pdf_bytes("mine"), "application/pdf")},
        headers={"Origin": "https://testserver"},
    )
    assert same_site.status_code in (200, 303), same_site.text
    assert [f["filename"] for f in (await browser_like.get("/api/files")).json()] == ["mine.pdf"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},  # sandboxed frames and some redirects
        {"Referer": f"{EVIL}/page"},  # no Origin, a foreign Referer
        {},  # a cookie but no Origin and no Referer at all: strict
    ],
    ids=["foreign-origin", "null-origin", "foreign-referer", "no-origin-with-cookie"],
)
async def test_cookie_authenticated_changes_from_elsewhere_are_refused(browser_like, headers):
    await _cookie_session(browser_like)
    for method, url in (("POST", "/logout"), ("DELETE", "/api/files/00000000-0000-0000-0000-000000000000")):
        response = await browser_like.request(method, url, headers=headers)
        assert response.status_code == 403, (method, url, response.status_code)
    assert (await browser_like.get("/users/me")).status_code == 200  # still logged in: logout was refused


async def test_a_cross_site_login_is_refused(browser_like):
    email = new_email()
    await register(browser_like, email)
    response = await browser_like.post(
        "/login", data={"email": email, "password": PASSWORD}, headers={"Origin": EVIL}
    )
    assert response.status_code == 403
    assert "studyrag_auth" not in response.headers.get("set-cookie", "")


async def test_bearer_api_calls_need_no_origin(browser_like):
    student = await new_student(browser_like)
    response = await browser_like.post(
        "/api/upload",
        data={"semester": "Y1", "subject": "Api", "book": "Book"},
        files={"file": ("api.pdf", pdf_bytes("api"), "application/pdf")},
        headers={**student.headers, "Origin": EVIL},  # a bearer token is never sent by a browser on its own
    )
    assert response.status_code == 201, response.text


async def test_pages_and_api_carry_the_security_headers(client):
    settings = get_settings()
    for url in ("/login", "/api/health", "/no-such-page"):
        response = await client.get(url)
        headers = response.headers
        policy = headers["content-security-policy"]
        # The one pinned htmx file, not all of the CDN (which serves every npm package).
        assert f"script-src 'self' {HTMX_CDN};" in policy, url
        assert "'unsafe-inline'" not in policy and "img-src 'self' data:" in policy
        assert "frame-ancestors 'self'" in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "SAMEORIGIN"
        assert ("strict-transport-security" in headers) == (not settings.is_development)
    # The htmx CDN file is pinned by integrity in every page.
    assert 'integrity="sha384-' in (await client.get("/login")).text


async def test_a_pdf_may_be_framed_by_our_pages_only(client):
    student = await new_student(client)
    document = await student.upload_one(("framed.pdf", pdf_bytes("framed")))
    response = await student.get(f"/files/{document['id']}/content")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_oversized_bodies_get_a_clear_413(client):
    student = await new_student(client)
    limit = get_settings().max_request_kb * 1024
    too_big = "x" * (limit + 10)
    response = await client.post("/api/chat", json={"query": too_big}, headers=student.headers)
    assert response.status_code == 413
    page = await client.post("/login", data={"email": too_big, "password": "x"})
    assert page.status_code == 413 and "<html" in page.text.lower()


async def test_too_many_files_in_one_upload_are_refused(client):
    student = await new_student(client)
    count = get_settings().max_files_per_upload + 1
    files = [("file", (f"f{n}.pdf", pdf_bytes(f"many {n}"), "application/pdf")) for n in range(count)]
    response = await client.post(
        "/api/upload",
        data={"semester": "Y1", "subject": "Many", "book": "Files"},
        files=files,
        headers=student.headers,
    )
    assert response.status_code in (400, 413)
    assert "files" in response.json()["detail"].lower()
    assert (await student.get("/api/files")).json() == []


async def test_a_question_over_the_length_limit_is_refused(client):
    student = await new_student(client)
    limit = get_settings().max_question_chars
    response = await client.post("/api/chat", json={"query": "x" * (limit + 1)}, headers=student.headers)
    assert response.status_code == 422
    assert "at most 2000 characters" in response.text


async def test_a_conversation_stops_at_its_message_limit_with_a_clear_error(app, client):
    from app.config import get_settings as settings_dependency

    student = await new_student(client)
    small = get_settings().model_copy(update={"max_conversation_messages": 4})
    app.dependency_overrides[settings_dependency] = lambda: small
    try:
        body = {"query": "What is a tautology?"}
        first = await client.post("/api/chat", json=body, headers=student.headers)
        assert first.status_code == 200, first.text
        body["conversation_id"] = first.json()["conversation_id"]
        assert (await client.post("/api/chat", json=body, headers=student.headers)).status_code == 200
        full = await client.post("/api/chat", json=body, headers=student.headers)
        assert full.status_code == 409
        assert full.json()["detail"] == (
            "This conversation has reached its limit of 4 messages. Start a new chat to keep asking."
        )
        del body["conversation_id"]
        assert (await client.post("/api/chat", json=body, headers=student.headers)).status_code == 200
    finally:
        app.dependency_overrides.pop(settings_dependency, None)


async def test_nul_characters_get_a_clear_400_not_a_server_error(client):
    student = await new_student(client)
    cases = [
        ("POST", "/auth/jwt/login", {"data": {"username": "a\x00b@example.com", "password": "x"}}),
        ("GET", "/api/files?q=a%00b", {}),
        ("POST", "/api/chat", {"json": {"query": "a\x00b"}}),
        ("POST", "/api/chat/stream", {"json": {"query": "hi", "active_semester": "a\x00b"}}),
        ("PATCH", "/users/me", {"json": {"name": "a\x00b"}}),
    ]
    for method, url, kwargs in cases:
        response = await client.request(method, url, headers=student.headers, **kwargs)
        assert response.status_code == 400, (url, response.status_code, response.text)
        assert response.json()["detail"] == "Text may not contain NUL characters (U+0000)."


async def test_sending_null_for_a_required_account_field_changes_nothing(client):
    student = await new_student(client, name="Ada")
    for body in ({"name": None}, {"email": None}, {"name": None, "email": None}):
        response = await client.patch("/users/me", json=body, headers=student.headers)
        assert response.status_code == 200, response.text
    me = (await client.get("/users/me", headers=student.headers)).json()
    assert (me["name"], me["email"]) == ("Ada", student.user["email"])
    lax = await client.patch("/users/me", json={"is_verified": 0}, headers=student.headers)
    assert lax.status_code == 422  # 0 is not a boolean


HOSTILE_NEXT = [
    "/\t/evil.example",  # what `/login?next=/%09/evil.example` arrives as: browsers drop the tab
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/ /evil.example",
    "/\x7f/evil.example",
    "/\\evil.example",
    "//evil.example/x",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
]


@pytest.mark.parametrize("hostile", HOSTILE_NEXT, ids=repr)
async def test_log_in_never_redirects_off_the_site(client, hostile):
    email = new_email()
    await register(client, email)
    posted = await client.post("/login", data={"email": email, "password": PASSWORD, "next": hostile})
    assert posted.status_code == 303
    assert posted.headers["location"] == "/library"
    # Already logged in, the log-in page sends the browser on at once: the same rule.
    again = await client.get("/login", params={"next": hostile})
    assert again.headers["location"] == "/library"


async def test_log_in_keeps_a_path_on_the_site_quoted(client):
    email = new_email()
    await register(client, email)
    posted = await client.post("/login", data={"email": email, "password": PASSWORD, "next": "/chat?c=1"})
    assert posted.headers["location"] == "/chat?c=1"
    again = await client.get("/login", params={"next": "/library?q=Küche"})
    assert again.headers["location"] == "/library?q=K%C3%BCche"


async def test_an_authorization_header_other_than_bearer_does_not_skip_the_origin_check(browser_like):
    await _cookie_session(browser_like)
    # Browsers send Basic credentials by themselves behind a proxy with basic auth.
    basic = {"Origin": EVIL, "Authorization": "Basic dXNlcjpwYXNzd29yZA=="}
    for method, url in (("POST", "/logout"), ("DELETE", "/api/files/00000000-0000-0000-0000-000000000000")):
        response = await browser_like.request(method, url, headers=basic)
        assert response.status_code == 403, (method, url, response.status_code)
    assert (await browser_like.get("/users/me")).status_code == 200  # still logged in


async def test_a_request_with_a_bearer_token_is_not_authenticated_by_the_cookie(browser_like):
    await _cookie_session(browser_like)
    forged = {"Origin": EVIL, "Authorization": "Bearer made-up"}
    upload = await browser_like.post(
        "/api/upload",
        data={"semester": "Y1", "subject": "Evil", "book": "Book"},
        files={"file": ("planted.pdf", pdf_bytes("planted by bearer"), "application/pdf")},
        headers=forged,
    )
    assert upload.status_code == 401, upload.text
    assert (
        await browser_like.get("/users/me", headers={"Authorization": "Bearer made-up"})
    ).status_code == 401
    # The cookie itself still works, and nothing was planted.
    assert (await browser_like.get("/users/me")).status_code == 200
    assert (await browser_like.get("/api/files")).json() == []


async def test_nul_characters_in_multipart_text_fields_get_a_clear_400(client):
    """Multipart bodies too (any form may be sent as one): their text fields are checked, not their files."""
    student = await new_student(client)
    nul = "Text may not contain NUL characters (U+0000)."
    pdf = ("a.pdf", pdf_bytes("nul field"), "application/pdf")
    cases = [
        ("/auth/jwt/login", {"username": "a\x00b@example.com", "password": "x"}, {}),
        ("/api/upload", {"semester": "Y1", "subject": "Lo\x00gic", "book": "B"}, {"file": pdf}),
        ("/signup", {"email": new_email(), "password": PASSWORD, "name": "a\x00b"}, {}),
        ("/login", {"email": "a\x00b@example.com", "password": "x"}, {}),
        ("/chat", {"query": "what is\x00 a tautology?"}, {}),
    ]
    for url, fields, files in cases:
        # httpx sends multipart whenever there are files; an empty file part forces it for the rest.
        response = await client.post(
            url, data=fields, files=files or {"unused": ("", b"", "text/plain")}, headers=student.headers
        )
        assert response.status_code == 400, (url, response.status_code, response.text[:300])
        assert nul in response.text, url
    # A NUL inside a file is the file's business: a PDF may hold any byte.
    stored = await client.post(
        "/api/upload",
        data={"semester": "Y1", "subject": "Logic", "book": "B"},
        files={"file": ("b.pdf", pdf_bytes("binary \x00 inside"), "application/pdf")},
        headers=student.headers,
    )
    assert stored.status_code == 201, stored.text


async def test_an_anonymous_upload_is_refused_before_its_body_is_read(client):
    count = get_settings().max_files_per_upload + 1
    files = [("file", (f"f{n}.pdf", pdf_bytes(f"anonymous {n}"), "application/pdf")) for n in range(count)]
    folder = {"semester": "Y1", "subject": "Anon", "book": "Files"}
    response = await client.post("/api/upload", data=folder, files=files)
    assert response.status_code == 401  # not 400 "too many files": the files were never parsed

    # Not a byte of the body is read: a streamed body counts the chunks taken from it.
    taken = 0

    async def body():
        nonlocal taken
        for _ in range(50):
            taken += 1
            yield (
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.pdf"\r\n\r\n' + b"%" * 65536
            )

    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    api = await client.post("/api/upload", content=body(), headers=multipart)
    assert api.status_code == 401 and taken == 0, (api.status_code, taken)
    page = await client.post("/library/upload", content=body(), headers=multipart)
    assert page.status_code == 303 and page.headers["location"].startswith("/login"), page.status_code
    assert taken == 0
