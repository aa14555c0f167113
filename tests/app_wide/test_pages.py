"""The server-rendered pages: sign up, log in, library, log out, and readable errors."""

from fastapi import APIRouter

from tests.support.accounts import PASSWORD, new_email, register, set_active


async def _signup(client, email: str, name: str = "Ada Lovelace", password: str = PASSWORD):
    return await client.post("/signup", data={"name": name, "email": email, "password": password})


async def test_sign_up_lands_on_the_library_with_my_name(client):
    response = await _signup(client, new_email())
    assert response.status_code == 303
    assert response.headers["location"] == "/library"
    page = await client.get("/library")
    assert page.status_code == 200
    assert "Ada Lovelace's library" in page.text
    assert "Your library is empty" in page.text
    assert "Log out" in page.text


async def test_sign_up_errors_are_shown_in_the_form(client):
    email = new_email()
    weak = await _signup(client, email, password="password")
    assert weak.status_code == 400
    assert "most commonly used" in weak.text
    assert email in weak.text  # what was typed is kept
    assert "Traceback" not in weak.text

    bad_email = await _signup(client, "not-an-email")
    assert bad_email.status_code == 400
    assert "Enter a valid email address." in bad_email.text

    await _signup(client, email)
    client.cookies.clear()
    taken = await _signup(client, email)
    assert taken.status_code == 400
    assert "already exists" in taken.text


async def test_log_in_and_out(client):
    email = new_email()
    await register(client, email, name="Grace")
    wrong = await client.post("/login", data={"email": email, "password": "wrong password!"})
    assert wrong.status_code == 400
    assert "Wrong email or password." in wrong.text

    ok = await client.post("/login", data={"email": email, "password": PASSWORD, "next": "/library"})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/library"
    token = client.cookies["studyrag_auth"]
    assert "Grace's library" in (await client.get("/library")).text

    out = await client.post("/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/login?logged_out=1"
    assert "studyrag_auth" not in client.cookies
    assert "You have been logged out." in (await client.get("/login?logged_out=1")).text

    # The old cookie is dead, not just deleted from this browser.
    client.cookies.set("studyrag_auth", token, domain="testserver.local")
    again = await client.get("/library")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/library"


async def test_log_in_only_redirects_within_the_site(client):
    email = new_email()
    await register(client, email)
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = await client.post("/login", data={"email": email, "password": PASSWORD, "next": hostile})
        assert response.headers["location"] == "/library", hostile


async def test_deactivated_account_is_told_so_and_logged_out(client, owner_engine):
    email = new_email()
    user = await register(client, email)
    await client.post("/login", data={"email": email, "password": PASSWORD})
    await set_active(owner_engine, user["id"], False)
    assert (await client.get("/library")).status_code == 303
    response = await client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 400
    assert "deactivated" in response.text


async def test_pages_need_a_login_and_htmx_gets_a_redirect_header(client):
    response = await client.get("/library")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/library"
    htmx = await client.get("/library", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/login?next=/library"
    assert (await client.get("/")).headers["location"] == "/login"


async def test_errors_are_pages_for_people_and_json_for_the_api(client, own_app):
    page = await client.get("/no/such/page")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "There is nothing here" in page.text

    api = await client.get("/api/no-such-thing")
    assert api.status_code == 404
    assert api.json() == {"detail": "Not Found"}

    router = APIRouter()

    @router.get("/test-only/boom")
    async def boom():
        raise RuntimeError("select secret from internals")

    @router.get("/api/test-only/boom")
    async def api_boom():
        raise RuntimeError("select secret from internals")

    own_app.include_router(router)
    from httpx import ASGITransport, AsyncClient

    transport = ASGITransport(app=own_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="https://testserver") as raw:
        crashed = await raw.get("/test-only/boom")
        assert crashed.status_code == 500
        request_id = crashed.headers["x-request-id"]
        assert request_id in crashed.text
        assert "select secret" not in crashed.text and "Traceback" not in crashed.text

        api_crash = await raw.get("/api/test-only/boom")
        assert api_crash.status_code == 500
        assert api_crash.json() == {
            "detail": "Internal server error",
            "request_id": api_crash.headers["x-request-id"],
        }


async def test_base_layout_loads_htmx_from_the_cdn_with_integrity_and_a_local_fallback(client):
    page = await client.get("/login")
    assert 'integrity="sha384-' in page.text
    assert 'crossorigin="anonymous"' in page.text
    assert "/static/js/htmx-fallback.js" in page.text
    local = await client.get("/static/js/htmx.min.js")
    assert local.status_code == 200
    assert "htmx" in local.text[:200]


async def test_the_vendored_htmx_matches_the_integrity_hash():
    import base64
    import hashlib

    from app.config import PROJECT_ROOT
    from app.templating import HTMX_INTEGRITY

    digest = hashlib.sha384((PROJECT_ROOT / "static/js/htmx.min.js").read_bytes()).digest()
    assert "sha384-" + base64.b64encode(digest).decode() == HTMX_INTEGRITY


async def test_every_route_has_a_name_of_its_own(app):
    """Pages link by route name (`path_for`): a name two routes shared would link to whichever came first.
    The shared app is the app as built: a test that adds routes adds them to an app of its own."""
    from collections import Counter

    from app.routing import api_routes

    names = Counter(route.name for _, route in api_routes(app))
    assert [name for name, count in names.items() if count > 1] == []


def test_plural_agrees_with_the_count():
    from app.templating import plural

    assert [plural("file", n) for n in (0, 1, 2)] == ["files", "file", "files"]
