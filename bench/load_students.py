"""The simulated students of bench/load.py (a locustfile; bench/load.py runs it, one locust run a step).

Each student takes one of the accounts bench/load.py prepared (config: the JSON file named by
BENCH_LOAD_CONFIG), logs in through the page form (cookie), and then, 3–10 s apart, does what a student
does: opens the library or the chat page, searches the library as they type, asks questions about their
book (extractive `POST /api/chat`, or `POST /api/chat/stream` read to the end when a model is set up),
opens the PDF of a cited source, makes flashcards or a quiz for a chapter, and now and then uploads a
small PDF and watches its status, and once in a while logs out and, after a pause, in again. Every
fourth student asks through the API with a bearer token, as a script would; the others use the cookie,
as chat.js does. Every cookie-authenticated post carries the Origin header, as a browser sends it.
"""

import itertools
import json
import os
import random
import re
import time
import uuid
from collections import Counter
from urllib.parse import quote

from locust import HttpUser, between, events, task
from locust.stats import StatsError, calculate_response_time_percentile

with open(os.environ["BENCH_LOAD_CONFIG"], encoding="utf-8") as _config:
    CONFIG = json.load(_config)
ORIGIN: str = CONFIG["origin"]
STREAMING: bool = CONFIG["mode"] == "generated"
TIMEOUT = (5, 60)  # connect, read: a hung request ends as an error instead of holding the step open
_SEATS = itertools.count()
_ENVIRONMENT = None
_AT_ARRIVAL: dict[str, Counter] = {}
_LOGGED_IN = 0
_IDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}", re.I)


@events.init.add_listener
def _remember(environment, **_) -> None:
    global _ENVIRONMENT
    _ENVIRONMENT = environment


def _logged_in() -> None:
    """Once every student of the step has logged in, keep the response times so far: what comes after
    them is the class at work, not arriving (arriving is mostly log-ins, which hash passwords)."""
    global _LOGGED_IN
    _LOGGED_IN += 1
    if _ENVIRONMENT.runner.target_user_count != _LOGGED_IN:
        return
    stats = _ENVIRONMENT.stats
    for name, entry in [(e.name, e) for e in stats.entries.values()] + [("all", stats.total)]:
        _AT_ARRIVAL[name] = Counter(entry.response_times)


@events.quit.add_listener
def _write_figures(**_) -> None:
    """The final figures (after every student stopped), as JSON in BENCH_LOAD_RESULT for bench/load.py."""
    stats = _ENVIRONMENT.stats

    def row(entry, name: str) -> dict:
        counted = entry.num_requests > 0
        # Nothing "after" if the class never finished arriving (a log-in that never came back).
        after = Counter(entry.response_times) - _AT_ARRIVAL.get(name, Counter()) if _AT_ARRIVAL else Counter()
        return {
            "name": name,
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "rps": entry.total_rps,
            **{
                key: entry.get_response_time_percentile(q) if counted else None
                for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
            },
            "p95_after_arrival": (
                calculate_response_time_percentile(after, after.total(), 0.95) if after.total() else None
            ),
        }

    figures = {
        "rows": [row(entry, entry.name) for entry in stats.entries.values()] + [row(stats.total, "all")],
        "failures": [
            {"name": e.name, "error": StatsError.parse_error(e.error), "count": e.occurrences}
            for e in stats.errors.values()
        ],
    }
    with open(os.environ["BENCH_LOAD_RESULT"], "w", encoding="utf-8") as out:
        json.dump(figures, out)


def failure_text(response) -> str:
    """Status and the start of the body, with ids blanked so equal errors count together."""
    if response.status_code == 0 or response.status_code is None:
        return f"no response: {type(response.error).__name__}: {response.error}"[:300]
    try:
        body = response.text
    except Exception as exc:  # a stream cut off half way
        body = f"(body unreadable: {exc})"
    body = " ".join(_IDS.sub("…", body).split())
    return f"HTTP {response.status_code}: {body[:200]}"


class Student(HttpUser):
    wait_time = between(3, 10)

    def on_start(self) -> None:
        seat = next(_SEATS)
        self.account = CONFIG["accounts"][seat % len(CONFIG["accounts"])]
        self.uses_bearer = seat % 4 == 3
        self.conversation_id: str | None = None
        self.asked_in_conversation = 0
        self.last_sources: list[dict] = []
        self.bearer: dict[str, str] = {}
        self.log_in()
        _logged_in()

    # --- requests --------------------------------------------------------------------------------

    def get(self, url: str, *, name: str, headers: dict | None = None, expect=(200,), check=None):
        with self.client.get(
            url, name=name, headers=headers, timeout=TIMEOUT, catch_response=True, allow_redirects=False
        ) as response:
            return self._judge(response, expect, check)

    def post(self, url: str, *, name: str, headers: dict | None = None, expect=(200,), check=None, **kw):
        headers = {"Origin": ORIGIN, **(headers or {})}
        kw.setdefault("allow_redirects", False)
        with self.client.post(
            url, name=name, headers=headers, timeout=TIMEOUT, catch_response=True, **kw
        ) as response:
            return self._judge(response, expect, check)

    @staticmethod
    def _judge(response, expect, check):
        if response.status_code not in expect:
            response.failure(failure_text(response))
            return None
        problem = check(response) if check else None
        if problem:
            response.failure(problem)
            return None
        response.success()
        return response

    def api_headers(self) -> dict[str, str]:
        """A bearer token for API-client students; the others rely on the cookie (and the Origin)."""
        return self.bearer

    # --- what a student does ---------------------------------------------------------------------

    def log_in(self) -> None:
        self.get("/login", name="GET /login")
        form = {"email": self.account["email"], "password": self.account["password"], "next": "/library"}
        self.post(
            "/login",
            name="POST /login",
            data=form,
            expect=(303,),
            check=lambda r: None if r.headers.get("location") == "/library" else "log-in did not land",
        )
        self.open_library()
        if self.uses_bearer:
            response = self.post(
                "/auth/jwt/login",
                name="POST /auth/jwt/login",
                data={"username": self.account["email"], "password": self.account["password"]},
            )
            if response is not None:
                self.bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}

    @task(1)
    def log_out(self) -> None:
        """Log out, and after a pause come back and log in again. Spread over the step as a class does:
        logging every student out as the step ended (until 2026-12-03) measured 200 log-outs sent at
        one instant (POST /logout p95 530 ms at 200 students, 85 ms at 20) — a burst, not a class."""
        self.post("/logout", name="POST /logout", expect=(303,), allow_redirects=False)
        self.conversation_id, self.asked_in_conversation, self.last_sources = None, 0, []
        self.wait()
        self.log_in()

    @task(8)
    def open_library(self) -> None:
        self.get("/library", name="GET /library", check=_page_of("library-tree"))

    @task(4)
    def open_chat(self) -> None:
        self.get("/chat", name="GET /chat", check=_page_of("<form"))

    @task(8)
    def search(self) -> None:
        """Search as you type: the page asks again at each pause in typing (debounced 250 ms)."""
        word = random.choice(CONFIG["search_terms"])
        cut = random.randint(2, max(2, len(word) - 1))
        headers = {"HX-Request": "true", "HX-Target": "library-tree", "HX-Current-URL": ORIGIN + "/library"}
        for typed in (word[:cut], word):
            self.get(f"/library?q={quote(typed)}", name="GET /library?q= (search)", headers=headers)
            time.sleep(0.3)

    @task(20)
    def ask(self) -> None:
        if self.conversation_id is None or self.asked_in_conversation >= 4 or random.random() < 0.3:
            self.conversation_id, self.asked_in_conversation = None, 0
        question = random.choice(CONFIG["questions"])
        book = self.account["book"]
        whole_library = random.random() < 0.4
        body = {
            "query": question,
            "active_semester": None if whole_library else book["semester"],
            "active_subject": None if whole_library else book["subject"],
            "active_books": [] if whole_library else [book["book"]],
            "conversation_id": self.conversation_id,
        }
        answer = self.ask_streamed(body) if STREAMING else self.ask_json(body)
        if answer is not None:
            self.conversation_id = answer["conversation_id"]
            self.asked_in_conversation += 1
            self.last_sources = answer["sources"]

    def ask_json(self, body: dict) -> dict | None:
        response = self.post(
            "/api/chat",
            name="POST /api/chat",
            json=body,
            headers=self.api_headers(),
            check=lambda r: None if "conversation_id" in r.json() else "no conversation in the answer",
        )
        return response.json() if response is not None else None

    def ask_streamed(self, body: dict) -> dict | None:
        """The whole stream, as chat.js reads it; its time is the time to the `done` event. The time
        to the first `token` is reported apart, as `SSE first token`."""
        started = time.perf_counter()
        with self.client.post(
            "/api/chat/stream",
            name="POST /api/chat/stream",
            json=body,
            headers={"Origin": ORIGIN, **self.api_headers()},
            timeout=TIMEOUT,
            stream=True,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(failure_text(response))
                return None
            event, final, first, failed, size = None, None, None, None, 0
            try:
                for line in response.iter_lines(decode_unicode=True):
                    size += len(line) + 1
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        if event == "token" and first is None:
                            first = time.perf_counter()
                        elif event == "done":
                            final = json.loads(line[6:])
                        elif event == "failed":
                            failed = line[6:]
            except Exception as exc:
                failed = f"stream broke off: {type(exc).__name__}"
            response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            response.request_meta["response_length"] = size
            if failed or final is None:
                response.failure(f"stream ended without an answer: {failed or 'no done event'}"[:300])
                return None
            response.success()
        if first is not None:
            self.environment.events.request.fire(
                request_type="SSE",
                name="SSE first token",
                response_time=(first - started) * 1000,
                response_length=0,
                exception=None,
                context={},
            )
        return final

    @task(8)
    def open_source(self) -> None:
        """Click a cited source: the PDF opens (at `#page=N`, which the browser keeps to itself)."""
        if not self.last_sources:
            return
        source = random.choice(self.last_sources)
        self.get(
            f"/files/{source['document_id']}/content",
            name="GET /files/{id}/content",
            check=lambda r: None if r.content.startswith(b"%PDF-") else "not a PDF",
        )

    @task(2)
    def study(self) -> None:
        """Flashcards (a new deck) or a quiz for a chapter of the student's book, as the library's links
        make them; the student's file and its chapters are looked up once."""
        if not hasattr(self, "chapters"):
            found = self.get("/api/files", name="GET /api/files", headers=self.api_headers())
            files = found.json() if found is not None else []
            if not files:
                return
            self.document_id = files[0]["id"]
            listed = self.get(
                f"/api/files/{self.document_id}/chapters",
                name="GET /api/files/{id}/chapters",
                headers=self.api_headers(),
            )
            self.chapters = [c["number"] for c in listed.json()["chapters"]] if listed is not None else []
        body = {"document_id": self.document_id, "chapter": random.choice(self.chapters or [None])}
        if random.random() < 0.5:
            self.post(
                "/api/study/flashcards",
                name="POST /api/study/flashcards",
                headers=self.api_headers(),
                json={**body, "count": 20},
                expect=(201, 409),  # 409: a chapter with nothing to make cards of, said plainly
            )
        else:
            self.post(
                "/api/study/quiz",
                name="POST /api/study/quiz",
                headers=self.api_headers(),
                json={**body, "count": 10},
                expect=(200, 409),
            )

    @task(1)
    def upload(self) -> None:
        """A page of notes into the student's own library (as upload.js posts each file), then the page
        polls the file's status every second while it is ingested."""
        token = uuid.uuid4().hex[:12]
        response = self.post(
            "/api/upload",
            name="POST /api/upload",
            headers=self.api_headers(),
            data={"semester": "Bench", "subject": "Notes", "book": "Lecture notes"},
            files=[("file", (f"notes-{token}.pdf", _notes_pdf(token), "application/pdf"))],
            expect=(201,),
        )
        if response is None:
            return
        (stored,) = response.json()["files"]
        headers = {"HX-Request": "true", "HX-Current-URL": ORIGIN + "/library"}
        for _ in range(10):
            time.sleep(1)
            status = self.get(
                f"/library/files/{stored['id']}/status",
                name="GET /library/files/{id}/status",
                headers=headers,
            )
            if status is None or "every 1s" not in status.text:
                break


def _page_of(marker: str):
    return lambda response: None if marker in response.text else f"the page lacks {marker!r}"


def _notes_pdf(token: str) -> bytes:
    """A one-page PDF with a text layer (Helvetica), distinct per token so its SHA-256 is new."""
    text = f"Lecture notes {token}: a function takes arguments; a list is mutable; a loop repeats."
    stream = f"BT /F1 11 Tf 40 800 Td ({text}) Tj ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R"
        " /Resources << /Font << /F1 3 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
