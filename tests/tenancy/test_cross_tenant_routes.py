"""User B calls EVERY route of the app with user A's ids, and gets refusals, never A's data.

The routes come from the router (`app.routing.api_routes` and `plain_routes`), so a new route is covered
the day it is added. Each path parameter is filled, by name, with A's id of that kind (PATH_VALUES); a
parameter the table does not know fails the suite with a message saying where to map it. Query
parameters and body fields are filled the same way (FIELD_VALUES): A's folder names, A's conversation,
A's email, a question A's book answers. Every call is made four ways: with B's bearer token, with B's
cookie session, with B's cookie as an HTMX request (that claims to be on A's conversation page), and
anonymously.

A call passes when it is refused (400, 401, 403, 404, 405, 409, 422) or answers without any of A's
distinctive strings (ids, names, file name, storage key, conversation title, words from A's book). A call
that names A's resource in its path (or A's conversation or email in its body) must be refused — a 2xx
there means B reached it. A 5xx always fails. Afterwards A's file, passages, conversation and deck are
intact.
"""

import json
import random
import re
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from fastapi import params
from fastapi.dependencies.utils import get_flat_params
from pydantic import BaseModel

from app.routing import api_routes, plain_routes
from tests.support.accounts import PASSWORD, bearer_token, new_email
from tests.support.corpus import BOOKS
from tests.support.ingestion import run_worker_until_idle
from tests.support.library import Student, new_student, pdf_bytes

BOOK = BOOKS / "meditations_marcus_aurelius.pdf"  # the smallest corpus book
# Asked by B in A's scope, and by A at the end: in A's library it finds Book I.1, "my grandfather, Verus".
QUESTION = "What did I learn from my grandfather about good manners and restraint on anger?"
TITLE_WORDS = ["nature", "reason", "soul", "virtue", "gods", "universe", "death", "mind", "justice", "body",
              "time", "world"]  # fmt: skip
# Words of A's book that nothing of B's (and no page of the app) contains.
BOOK_WORDS = ("Verus", "Diognetus", "Rusticus")
REFUSED = {400, 401, 403, 404, 405, 409, 422}
MODES = ("bearer", "cookie", "htmx", "anonymous")
ORIGIN = "https://testserver"


@dataclass
class World:
    a: Student
    a_email: str
    a_password: str
    a_name: str
    semester: str
    subject: str
    book: str
    filename: str
    document_id: str
    storage_key: str
    passages: int
    conversation_id: str
    conversation_title: str
    deck_id: str
    card_id: str
    card_front: str
    b: Student
    b_email: str
    b_cookie: tuple[str, str]

    def needles(self) -> dict[str, str]:
        """A's distinctive strings, each with what it is (for the failure message)."""
        found = {
            self.a.id: "A's user id",
            self.document_id: "A's document id",
            self.conversation_id: "A's conversation id",
            self.deck_id: "A's deck id",
            self.card_id: "A's card id",
            self.card_front: "A's flashcard",
            self.a_email: "A's email",
            self.a_name: "A's name",
            self.semester: "A's semester",
            self.subject: "A's subject",
            self.book: "A's book",
            self.filename: "A's file name",
            self.storage_key: "A's storage key",
            self.conversation_title.split("]")[0].strip("["): "A's conversation title",
        }
        found.update({word: "a word of A's book" for word in BOOK_WORDS})
        return found


# --- How each parameter is filled: with A's things wherever a name says what it is. ------------------

# Path parameters: every one must be here. Values are A's (or, for admin-only ids, any id).
PATH_VALUES = {
    "document_id": lambda w: w.document_id,
    "conversation_id": lambda w: w.conversation_id,
    "user_id": lambda w: w.a.id,
    "run_id": lambda w: 1,  # an isolation audit run: admin only, so B must get a 404 whatever the id
    "deck_id": lambda w: w.deck_id,
    "card_id": lambda w: w.card_id,
}
# Path parameters that name something of A's: a 2xx on such a route means B reached it.
A_PATH = {"document_id", "conversation_id", "user_id", "deck_id", "card_id"}


def _b_pdf() -> list[tuple[str, tuple[str, bytes, str]]]:
    """A new small PDF of B's for each upload (the same bytes twice would be a duplicate)."""
    tag = uuid.uuid4().hex[:8]
    return [("file", (f"b-notes-{tag}.pdf", pdf_bytes(f"B's notes {tag}"), "application/pdf"))]


# Query parameters and body fields (form or JSON), by name. A required one that is not here fails the
# suite; an optional one that is not here is left out.
FIELD_VALUES = {
    "semester": lambda w: w.semester,
    "subject": lambda w: w.subject,
    "book": lambda w: w.book,
    "active_semester": lambda w: w.semester,
    "active_subject": lambda w: w.subject,
    "active_books": lambda w: [w.book, w.document_id],
    "books": lambda w: [w.book, w.document_id],
    "q": lambda w: w.book,
    "query": lambda w: QUESTION,
    "conversation_id": lambda w: w.conversation_id,
    "user": lambda w: w.a.id,
    "run": lambda w: 1,
    "page": lambda w: 1,
    "email": lambda w: w.a_email,
    "username": lambda w: w.a_email,
    "password": lambda w: PASSWORD,  # B's own password, never A's
    "name": lambda w: "Mallory",
    "change": lambda w: "deactivate",
    "is_active": lambda w: False,
    "is_superuser": lambda w: True,
    "is_verified": lambda w: True,
    "quota_bytes": lambda w: 0,
    "quota_documents": lambda w: 0,
    "quota_mb": lambda w: 0,
    "document_id": lambda w: w.document_id,  # a study aid of A's book
    "chapter": lambda w: 1,
    "count": lambda w: 3,
    "grade": lambda w: 4,
}
# Fields sent only when the route requires them (sending B's password to PATCH /users/me would only
# reset it to itself; no need).
ONLY_WHEN_REQUIRED = {"password"}
# Optional body fields that name A's things: the call is made with them (and must be refused) and once
# more without them, so the rest of the route is exercised too (e.g. chat within A's scope).
A_FIELDS = {"conversation_id", "email", "username", "document_id"}


class Unmapped(AssertionError):
    pass


@dataclass
class Call:
    method: str
    template: str
    url: str
    kwargs: dict
    names_a: bool  # the request names A's resource: a success is a leak
    sent: str  # what B itself sent: a string of A's that B sent may be echoed back
    uploads: bool = False

    def label(self, mode: str) -> str:
        query = self.kwargs.get("params")
        shown = self.url + ("?" + str(httpx.QueryParams(query)) if query else "")
        body = self.kwargs.get("json", self.kwargs.get("data"))
        return f"[{mode}] {self.method} {shown}" + (f" body={body}" if body else "")


def _model(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _body_fields(route) -> tuple[str | None, dict[str, Any], bool]:
    """('json' | 'form' | None, {name: FieldInfo}, bare): the fields of the route's body."""
    body = route.body_field
    if body is None:
        return None, {}, False
    kind = "form" if isinstance(body.field_info, params.Form) else "json"
    model = _model(body.field_info.annotation)
    if model is not None:
        return kind, {(f.alias or name): f for name, f in model.model_fields.items()}, False
    return kind, {body.alias: body.field_info}, kind == "json"


def _is_file(info) -> bool:
    return isinstance(info, params.File) or "UploadFile" in repr(info.annotation)


def _where(method: str, path: str, what: str, name: str) -> str:
    return (
        f"{method} {path}: {what} {name!r} is not mapped. Add it to "
        f"{'PATH_VALUES' if what == 'path parameter' else 'FIELD_VALUES'} in "
        "tests/tenancy/test_cross_tenant_routes.py with user A's value of that kind, so that user B is tried "
        "with it (and, for a path parameter naming A's things, to A_PATH)."
    )


def plan(method: str, path: str, route, w: World | None) -> list[Call]:
    """The calls B makes on one (method, route): one, or two when an optional field names A's things."""
    value = (lambda f: f(w)) if w is not None else (lambda f: None)
    path_values, query, headers_missing = {}, {}, []
    for param in get_flat_params(route.dependant):
        name, info, required = param.alias, param.field_info, param.field_info.is_required()
        if isinstance(info, params.Path):
            if name not in PATH_VALUES:
                raise Unmapped(_where(method, path, "path parameter", name))
            path_values[name] = value(PATH_VALUES[name])
        elif isinstance(info, params.Query):
            if name in FIELD_VALUES and (required or name not in ONLY_WHEN_REQUIRED):
                query[name] = value(FIELD_VALUES[name])
            elif required:
                raise Unmapped(_where(method, path, "query parameter", name))
        elif required:
            headers_missing.append(name)
    if headers_missing:
        raise Unmapped(_where(method, path, "header or cookie parameter", headers_missing[0]))

    kind, fields, bare = _body_fields(route)
    body: dict[str, Any] = {}
    files = None
    optional_a: set[str] = set()
    for name, info in fields.items():
        required = info.is_required()
        if _is_file(info):
            files = _b_pdf
        elif name in FIELD_VALUES and (required or name not in ONLY_WHEN_REQUIRED):
            body[name] = value(FIELD_VALUES[name])
            if name in A_FIELDS and not required:
                optional_a.add(name)
        elif required:
            raise Unmapped(_where(method, path, "body field", name))

    url = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: str(path_values[m.group(1)]), path)
    names_a_path = bool(A_PATH & set(path_values))
    variants = [(body, names_a_path or bool(A_FIELDS & set(body)))]
    if optional_a:
        variants.append(({k: v for k, v in body.items() if k not in optional_a}, names_a_path))
    calls = []
    for fields_sent, names_a in variants:
        kwargs: dict[str, Any] = {}
        if query:
            kwargs["params"] = query
        if kind == "json":
            kwargs["json"] = next(iter(fields_sent.values()), None) if bare else fields_sent
        elif kind == "form":
            kwargs["data"] = fields_sent
            if files:
                kwargs["files"] = files  # called at each request
        sent = " ".join([url, json.dumps(query, default=str), json.dumps(fields_sent, default=str)])
        calls.append(Call(method, path, url, kwargs, names_a, sent, uploads=files is not None))
    return calls


def every_call(app, w: World | None) -> list[Call]:
    calls = []
    for path, route in api_routes(app):
        for method in sorted(route.methods):
            calls.extend(plan(method, path, route, w))
    for path, route in plain_routes(app):
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            if "{" in path:
                raise Unmapped(f"{method} {path}: a plain route with a path parameter; extend every_call")
            calls.append(Call(method, path, path, {}, False, path))
    # Uploads last: B's own files in folders named like A's would make B's folder deletes succeed.
    return sorted(calls, key=lambda call: call.uploads)


# --- The world: A with an ingested book and a conversation, B with a token and a cookie. ------------


@pytest.fixture(scope="module")
async def clients(app):
    async with AsyncExitStack() as stack:

        async def make(ip: str) -> httpx.AsyncClient:
            # An unhandled error is a 500 to judge (with its route), not an exception in the test.
            transport = httpx.ASGITransport(app=app, client=(ip, 4711), raise_app_exceptions=False)
            client = httpx.AsyncClient(
                transport=transport, base_url=ORIGIN, headers={"Origin": ORIGIN}, timeout=120
            )
            return await stack.enter_async_context(client)

        yield make


@pytest.fixture(scope="module")
async def world(clients, services) -> World:
    tag = uuid.uuid4().hex[:8]
    a_client = await clients("203.0.113.31")
    a_email, a_password, a_name = (
        new_email("aurelia"),
        f"Aurelia keeps her own passphrase {tag}",
        f"Aurelia{tag}",
    )
    registered = await a_client.post(
        "/auth/register", json={"email": a_email, "password": a_password, "name": a_name}
    )
    assert registered.status_code == 201, registered.text
    a = Student(a_client, registered.json(), await bearer_token(a_client, a_email, a_password))
    semester, subject, book, filename = (
        f"Antiquity-{tag}",
        f"Stoics-{tag}",
        f"Meditations-{tag}",
        f"med-{tag}.pdf",
    )
    stored = await a.upload_one((filename, BOOK.read_bytes()), semester=semester, subject=subject, book=book)
    await run_worker_until_idle(services)
    job = (await a.get(f"/api/jobs/{stored['id']}")).json()
    assert job["status"] == "ready" and job["passages"] > 0, job

    # A title no other test uses, made of words the book holds: a random tag would be a question word
    # found nowhere in the scope, and could tip the refusal's absent-term weight past its threshold.
    title = "[" + "-".join(random.sample(TITLE_WORDS, 4)) + f"] {QUESTION}"
    asked = await a_client.post(
        "/api/chat",
        json={"query": title, "active_semester": semester, "active_subject": subject, "active_books": [book]},
        headers=a.headers,
    )
    assert asked.status_code == 200, asked.text
    assert {s["document_id"] for s in asked.json()["sources"]} == {stored["id"]}, asked.json()

    made = await a_client.post(
        "/api/study/flashcards", json={"document_id": stored["id"], "count": 3}, headers=a.headers
    )
    assert made.status_code == 201, made.text
    deck = made.json()

    b_client = await clients("203.0.113.32")
    b = await new_student(b_client, "Mallory")
    b_email = b.user["email"]
    login = await b_client.post("/auth/cookie/login", data={"username": b_email, "password": PASSWORD})
    assert login.status_code == 204, login.text
    (b_cookie,) = login.cookies.items()
    b_client.cookies.clear()
    return World(
        a=a,
        a_email=a_email,
        a_password=a_password,
        a_name=a_name,
        semester=semester,
        subject=subject,
        book=book,
        filename=filename,
        document_id=stored["id"],
        storage_key=stored["key"],
        passages=job["passages"],
        conversation_id=asked.json()["conversation_id"],
        conversation_title=title,
        deck_id=deck["deck_id"],
        card_id=deck["cards"][0]["id"],
        card_front=deck["cards"][0]["front"],
        b=b,
        b_email=b_email,
        b_cookie=b_cookie,
    )


# --- Judging one answer. -----------------------------------------------------------------------------


def _snippet(text: str, needle: str | None = None, width: int = 120) -> str:
    at = text.find(needle) if needle else 0
    start = max(0, at - width // 2)
    return " ".join(text[start : start + width + (len(needle) if needle else 0)].split())


def judge(call: Call, response: httpx.Response, w: World) -> str | None:
    """What is wrong with this answer to B, or None."""
    status = response.status_code
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    body = response.text if "pdf" not in response.headers.get("content-type", "") else repr(response.content)
    seen = headers + "\n" + body
    if status >= 500:
        return f"{status} server error: {_snippet(body)}"
    if status == 429:
        return "429: rate limited, so this call tested nothing"
    location = response.headers.get("location", "")
    if status not in REFUSED:
        if not 200 <= status < 400:
            return f"unexpected status {status}: {_snippet(body)}"
        to_login = 300 <= status < 400 and location.startswith("/login")
        if call.names_a and not to_login:
            return f"{status} for a request naming A's resource (B reached it): {_snippet(location or body)}"
    sent = call.sent.casefold()
    for needle, what in w.needles().items():
        if needle.casefold() not in sent and needle in seen:
            where = body if needle in body else headers
            return f"{status} and the answer holds {what} {needle!r}: …{_snippet(where, needle)}…"
    if re.search(r'"document_id"\s*:\s*"' + re.escape(w.document_id), body):
        return f"{status} and the answer cites A's document: …{_snippet(body, w.document_id)}…"
    return None


# --- The sweep. ----------------------------------------------------------------------------------------


@dataclass
class Sweep:
    calls: int
    routes: int
    problems: list[str]
    uploads: list[httpx.Response]
    answers: list[tuple[str, int]]  # (call, status), for reading what B got


@pytest.fixture(scope="module")
async def sweep(app, world, clients, services) -> Sweep:
    return await run_sweep(app, world, await clients("203.0.113.33"), services)


async def run_sweep(app, w: World, client: httpx.AsyncClient, services) -> Sweep:
    """B calls every route in every mode; what went wrong is collected, to be read all at once."""
    token_headers = {"Authorization": f"Bearer {w.b.token}"}
    cookie_headers = {"Cookie": f"{w.b_cookie[0]}={w.b_cookie[1]}"}
    htmx_headers = {
        **cookie_headers,
        "HX-Request": "true",
        "HX-Current-URL": f"{ORIGIN}/chat/{w.conversation_id}",
        "HX-Target": "library-tree",
    }
    auth = {"bearer": token_headers, "cookie": cookie_headers, "htmx": htmx_headers, "anonymous": {}}

    async def fresh_session(mode: str) -> dict:
        """A new session of B's, for the log-out routes: they must not end the one the sweep uses."""
        if mode == "bearer":
            return {"Authorization": f"Bearer {await bearer_token(client, w.b_email)}"}
        login = await client.post("/auth/cookie/login", data={"username": w.b_email, "password": PASSWORD})
        client.cookies.clear()
        (cookie,) = login.cookies.items()
        return {**auth[mode], "Cookie": f"{cookie[0]}={cookie[1]}"}

    async def still_b(mode: str) -> str | None:
        me = await client.get("/users/me", headers=auth[mode])
        client.cookies.clear()
        if me.status_code != 200 or me.json()["id"] != w.b.id:
            return f"B's {mode} session stopped working ({me.status_code}); later calls would prove nothing"
        if me.json()["is_superuser"] or not me.json()["is_active"]:
            return f"B's account changed: {me.json()}"
        return None

    problems, uploads, answers = [], [], []
    calls = every_call(app, w)
    for call in calls:
        for mode in MODES:
            headers = auth[mode]
            if call.template.endswith("/logout") and mode != "anonymous":
                headers = await fresh_session(mode)
            sent = call.sent + " " + " ".join(v for k, v in headers.items() if k.startswith("HX-"))
            this = replace(call, sent=sent)
            kwargs = dict(call.kwargs)
            if "files" in kwargs:
                kwargs["files"] = kwargs["files"]()
            client.cookies.clear()
            response = await client.request(call.method, call.url, headers=headers, **kwargs)
            client.cookies.clear()
            answers.append((call.label(mode), response.status_code))
            if call.uploads and 200 <= response.status_code < 300:
                uploads.append(response)
            if problem := judge(this, response, w):
                problems.append(f"{call.label(mode)}\n    -> {problem}")
            if mode != "anonymous" and (dead := await still_b(mode)):
                problems.append(f"{call.label(mode)}\n    -> {dead}")
                pytest.fail("\n".join(problems))
    # B's uploads and scans queued jobs; ingest them here rather than in a later module's worker.
    await run_worker_until_idle(services)
    return Sweep(
        calls=len(answers),
        routes=len({(c.method, c.template) for c in calls}),
        problems=problems,
        uploads=uploads,
        answers=answers,
    )


# --- The tests. ------------------------------------------------------------------------------------------


def test_every_route_parameter_is_mapped(app):
    """A route with a path parameter (or a required field) this suite cannot fill fails here, first."""
    unmapped = []
    for path, route in api_routes(app):
        for method in sorted(route.methods):
            try:
                plan(method, path, route, None)
            except Unmapped as exc:
                unmapped.append(str(exc))
    assert not unmapped, "\n".join(unmapped)


async def test_b_gets_nothing_of_as_from_any_route(sweep):
    assert sweep.routes >= 50, sweep.routes  # the router walk found the app's routes
    assert not sweep.problems, f"{len(sweep.problems)} of {sweep.calls} calls:\n" + "\n".join(sweep.problems)


async def test_bs_uploads_land_in_bs_library(sweep, world):
    w = world
    assert len(sweep.uploads) >= 2, "no upload of B's succeeded, so none was checked"
    for response in sweep.uploads:
        if response.headers["content-type"].startswith("application/json"):
            keys = [f["key"] for f in response.json()["files"]]
            assert keys and all(k.startswith(f"users/{w.b.id}/") for k in keys), response.text
    files = (await w.b.get("/api/files")).json()
    assert files and all(f["key"].startswith(f"users/{w.b.id}/") for f in files), files
    assert w.document_id not in {f["id"] for f in files}
    assert [f["id"] for f in (await w.a.get("/api/files")).json()] == [w.document_id]


async def test_as_file_passages_and_conversation_are_intact(sweep, world):
    w = world
    record = await w.a.get(f"/api/files/{w.document_id}")
    assert record.status_code == 200 and record.json()["filename"] == w.filename, record.text
    assert record.json()["status"] == "ready"
    content = await w.a.get(f"/files/{w.document_id}/content")
    assert content.status_code == 200 and content.content == BOOK.read_bytes()
    job = (await w.a.get(f"/api/jobs/{w.document_id}")).json()
    assert job["status"] == "ready" and job["passages"] == w.passages, job

    conversations = (await w.a.get("/api/conversations")).json()
    assert {"id": w.conversation_id, "title": w.conversation_title} in conversations
    messages = await w.a.get(f"/api/conversations/{w.conversation_id}")
    assert messages.status_code == 200 and [m["role"] for m in messages.json()] == ["user", "assistant"]

    # The very question B asked in A's scope finds A's page for A: B's empty answers were isolation.
    reply = await w.a.client.post(
        "/api/chat",
        json={"query": QUESTION, "active_semester": w.semester, "active_subject": w.subject},
        headers=w.a.headers,
    )
    assert reply.status_code == 200, reply.text
    sources = reply.json()["sources"]
    assert sources and {s["document_id"] for s in sources} == {w.document_id}, reply.json()
    assert any("Verus" in s["quote"] for s in sources), sources

    deck = await w.a.get(f"/api/study/decks/{w.deck_id}")
    assert deck.status_code == 200, deck.text
    assert [c["reviews"] for c in deck.json()["cards"]] == [0, 0, 0]  # B graded none of A's cards

    me = (await w.a.get("/users/me")).json()
    assert me["email"] == w.a_email and me["name"] == w.a_name and me["is_active"], me
