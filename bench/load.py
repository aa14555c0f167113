"""A class of simulated students against `studyrag serve`: per-endpoint figures at growing class sizes.

    make bench-load ARGS="--students 20,50,100,200 --step-seconds 60"
    # or, once `pip install -e '.[bench]'` has put locust into .venv:
    .venv/bin/python bench/load.py [--students 20,50,100,200] [--step-seconds 60] [--spawn-rate 10]
                                   [--web-workers N] [--mode extractive|generated] [--model-word-ms 0]
                                   [--book think_python_2e.pdf]

Starts its own server: `studyrag serve` on a free loopback port with VAR_DIR=var/bench-load (fresh each
run, left in place afterwards, like the other benches), so embedded Postgres and Redis of its own; with
--web-workers N passed on to `serve` when the command has that option. `--mode generated` also starts
bench/fake_model.py (tests/support/fake_openai.py in a process) and points OPENAI_API_KEY / OPENAI_BASE_URL at
it, so answers are generated and streamed; --model-word-ms makes that model write slowly.

Setup: as many student accounts as the largest step, signed up through `POST /auth/register`. Each holds
one book of their own, but ingesting a book per student through the worker would take far too long on 2
cores, so the book (--book, from ../shared/corpus/books) is uploaded and ingested once, for the first
student, through the real pipeline (upload → arq worker → parse → embed); then its document row, its
passages (with their embeddings) and its stored PDF are copied to every other student, as the cluster
superuser (which row-level security does not bind, as bench/audit.py loads its data), with storage keys
under each student's own prefix. Tenant isolation is real: every student has their own documents and
passages. The HNSW index is dropped for the copy and built again after it.

A few warm-up questions follow (each web process loads its question embedder on its first question).
Then one locust run per step (bench/load_students.py: log in through the page form, open the library and
the chat page, search as you type, ask — `POST /api/chat`, or `POST /api/chat/stream` read to the end in
generated mode —, open a cited PDF, make flashcards or a quiz for a chapter, now and then upload a small
PDF; think time 3–10 s), headless, for --step-seconds each (the class arrives at --spawn-rate students a
second, within the step), only to 127.0.0.1. Per step it prints requests, req/s, p50/p95/p99 (ms) and
errors per endpoint, the p95 of the requests made once the whole class had logged in, the distinct
errors, and what the server logged as errors (var/bench-load/serve.log); at the end the number of
students at which chat p95 passes 2 s, and the goal (200 students: 0 errors, page and API p95 < 300 ms,
extractive chat p95 < 800 ms) as met or not met. The per-address rate limits (log-in, sign-up, upload,
chat) are raised for this server, since every simulated student comes from 127.0.0.1; the per-user and
per-account limits stay as configured. The server is stopped at the end, whatever happened. Figures mean
something only on an otherwise idle machine: the server, the worker and locust share it.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BENCH_VAR = ROOT / "var" / "bench-load"
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.load_setup import questions_for, search_terms, set_up, warm_up  # noqa: E402
from tests.support.corpus import BOOKS  # noqa: E402

# Every simulated student comes from 127.0.0.1: per-address limits would count the whole class as one.
RAISED_LIMITS = {
    "RATE_LIMIT_LOGIN_PER_IP": "1000000/minute",
    "RATE_LIMIT_REGISTER_PER_IP": "1000000/hour",
    "RATE_LIMIT_UPLOAD_PER_IP": "1000000/minute",
    "RATE_LIMIT_CHAT_PER_IP": "1000000/minute",
    "RATE_LIMIT_STUDY_PER_IP": "1000000/minute",
}
CHAT_LIMIT_MS = 2000
GOAL_STUDENTS = 200
GOAL_PAGE_MS = 300
GOAL_CHAT_MS = 800
CHAT_ROWS = ("POST /api/chat", "POST /api/chat/stream")
NOT_PAGE_OR_API = (*CHAT_ROWS, "SSE first token")

console = Console(width=130)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", default="20,50,100,200", help="class sizes, one locust run each")
    parser.add_argument("--step-seconds", type=int, default=60, help="length of each step")
    parser.add_argument("--spawn-rate", type=float, default=10, help="students arriving per second")
    parser.add_argument("--web-workers", type=int, default=None, help="passed on to `studyrag serve`")
    parser.add_argument("--mode", choices=("extractive", "generated"), default="extractive")
    parser.add_argument("--model-word-ms", type=float, default=0, help="generated mode: delay per word")
    parser.add_argument("--book", default="think_python_2e.pdf", help="the book every student holds")
    args = parser.parse_args()
    args.steps = sorted({int(n) for n in args.students.split(",") if n.strip()})
    if not args.steps or args.steps[0] < 1:
        parser.error("--students takes class sizes such as 20,50,100")
    return args


# --- the server ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def studyrag_command() -> list[str]:
    script = Path(sys.executable).with_name("studyrag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def serve_has_web_workers() -> bool:
    result = subprocess.run(
        [*studyrag_command(), "serve", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return "--web-workers" in result.stdout


def server_env(model_url: str | None) -> dict[str, str]:
    env = {**os.environ, "ENVIRONMENT": "development", "VAR_DIR": str(BENCH_VAR), "DO_NOT_TRACK": "1"}
    for name in ("DATABASE_URL", "APP_DATABASE_URL", "REDIS_URL", "S3_BUCKET", "OPENAI_API_KEY"):
        env.pop(name, None)
    env.pop("OPENAI_BASE_URL", None)
    env.update(RAISED_LIMITS)
    if model_url:
        env.update(OPENAI_API_KEY="bench-fake-key", OPENAI_BASE_URL=model_url, CHAT_MODEL="fake-model")
    return env


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log_path: Path
    model: subprocess.Popen | None = None

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # `serve` stops web, worker, Redis, Postgres in order
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                console.print("[red]studyrag serve did not stop within 60 s; killing it[/red]")
                self.process.kill()
                self.process.wait()
        if self.model is not None and self.model.poll() is None:
            self.model.terminate()
            try:
                self.model.wait(10)
            except subprocess.TimeoutExpired:
                self.model.kill()
                self.model.wait()


def start_fake_model(word_ms: float) -> tuple[subprocess.Popen, str]:
    model = subprocess.Popen(
        [sys.executable, str(BENCH / "fake_model.py"), "--word-ms", str(word_ms)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base_url = model.stdout.readline().strip()
    if not base_url.startswith("http://127.0.0.1:"):
        model.kill()
        raise RuntimeError("the fake model did not start")
    return model, base_url


def start_server(args: argparse.Namespace, model_url: str | None) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    command = [*studyrag_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if args.web_workers is not None:
        if serve_has_web_workers():
            command += ["--web-workers", str(args.web_workers)]
        else:
            console.print("[yellow]`studyrag serve` has no --web-workers option yet; ignoring it[/yellow]")
    log_path = BENCH_VAR / "serve.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_env(model_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our Ctrl-C reaches us; we stop the server in order
        )
    workers = "" if "--web-workers" in command else " (web processes: serve's default)"
    console.print(f"server: studyrag {' '.join(command[-6 if workers else -8 :])}{workers}")
    console.print(f"server log: {log_path.relative_to(ROOT)}")
    return process, f"http://127.0.0.1:{port}", log_path


def wait_healthy(server: Server, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"studyrag serve exited:\n{tail(server.log_path)}")
        try:
            if httpx.get(server.base_url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"studyrag serve was not healthy within {timeout:.0f} s:\n{tail(server.log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# --- steps ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float | None
    p95: float | None
    p99: float | None
    p95_after_arrival: float | None = None  # once every student of the step has logged in


@dataclass
class Step:
    students: int
    rows: list[Row]
    failures: list[tuple[str, str, int]]
    server_errors: Counter
    locust_exit: int

    def row(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.name == name), None)

    @property
    def chat(self) -> Row | None:
        return next((row for name in CHAT_ROWS if (row := self.row(name)) and row.requests), None)

    @property
    def errors(self) -> int:
        return sum(row.failures for row in self.rows if row.name != "all")


def run_step(server: Server, config_path: Path, students: int, args: argparse.Namespace) -> Step:
    result = BENCH_VAR / f"step-{students:04d}.json"
    log_start = server.log_size()
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(BENCH / "load_students.py"),
        "--headless",
        "--host",
        server.base_url,
        "--users",
        str(students),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{args.step_seconds}s",
        "--stop-timeout",
        "15",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    with (BENCH_VAR / f"step-{students:04d}-locust.log").open("w") as log:
        locust = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "BENCH_LOAD_CONFIG": str(config_path), "BENCH_LOAD_RESULT": str(result)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            exit_code = locust.wait(args.step_seconds + 120)
        except subprocess.TimeoutExpired:
            locust.kill()
            exit_code = locust.wait()
            console.print("[red]locust did not stop by itself; killed[/red]")
    rows, failures = read_figures(result)
    return Step(
        students=students,
        rows=rows,
        failures=failures,
        server_errors=server_errors(server.log_path, log_start),
        locust_exit=exit_code,
    )


def read_figures(path: Path) -> tuple[list[Row], list[tuple[str, str, int]]]:
    """What bench/load_students.py wrote when locust quit: rows per endpoint and the distinct errors."""
    if not path.exists():
        return [], []
    figures = json.loads(path.read_text())
    rows = [Row(**row) for row in figures["rows"]]
    return rows, [(f["name"], f["error"], f["count"]) for f in figures["failures"]]


_NOISE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|\b\d+\b", re.I)


def server_errors(log_path: Path, start: int) -> Counter:
    """Lines the server logged as errors during the step (uvicorn's, the app's, tracebacks' last lines),
    with numbers and ids blanked so that repeats count together."""
    counts: Counter = Counter()
    if not log_path.exists():
        return counts
    with log_path.open("rb") as log:
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()
    for n, line in enumerate(lines):
        is_error = re.search(r"\b(ERROR|CRITICAL)\b|Exception:|Error:|\bdied\b|\bkilled\b", line, re.I)
        ends_traceback = line and not line.startswith(" ") and n > 0 and lines[n - 1].startswith("    ")
        if is_error or ends_traceback:
            counts[_NOISE.sub("N", line.strip())[:220]] += 1
    return counts


# --- report --------------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def print_step(step: Step, mode: str) -> None:
    table = Table(title=f"{step.students} students ({mode})")
    columns = ("endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "p95 after arrival")
    for column in columns:
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    for row in sorted(step.rows, key=lambda r: (r.name == "all", r.name)):
        errors = f"[red]{row.failures}[/red]" if row.failures else "0"
        table.add_row(
            row.name,
            str(row.requests),
            f"{row.rps:.1f}",
            fmt(row.p50),
            fmt(row.p95),
            fmt(row.p99),
            errors,
            fmt(row.p95_after_arrival),
        )
    console.print(table)
    console.print(
        "  (p95 after arrival: requests made once every student of the step had logged in)", style="dim"
    )
    if step.locust_exit not in (0, None):
        console.print(f"[red]locust exited with {step.locust_exit}[/red] (see its log in var/bench-load)")
    for name, error, count in sorted(step.failures, key=lambda f: -f[2])[:12]:
        console.print(f"  [red]{count}×[/red] {name}: {error}", markup=True, highlight=False)
    if step.server_errors:
        console.print(f"  server log: {sum(step.server_errors.values())} error line(s):")
        for line, count in step.server_errors.most_common(10):
            console.print(f"    {count}× {line}", markup=False, highlight=False)


def page_and_api(step: Step) -> list[Row]:
    """Every endpoint but the chat ones, slowest first."""
    rows = [r for r in step.rows if r.name not in (*NOT_PAGE_OR_API, "all") and r.p95 is not None]
    return sorted(rows, key=lambda r: -r.p95)


def worst_page_or_api(step: Step) -> Row | None:
    return next(iter(page_and_api(step)), None)


def print_summary(steps: list[Step], args: argparse.Namespace) -> None:
    table = Table(title="Summary")
    for column in ("students", "req/s", "chat p95 ms", "after arrival", "worst page/API p95 ms", "errors"):
        table.add_column(column, justify="right")
    for step in steps:
        total = step.row("all")
        worst = worst_page_or_api(step)
        table.add_row(
            str(step.students),
            f"{total.rps:.1f}" if total else "—",
            fmt(step.chat.p95) if step.chat else "—",
            fmt(step.chat.p95_after_arrival) if step.chat else "—",
            f"{fmt(worst.p95)} ({worst.name})" if worst else "—",
            str(step.errors),
        )
    console.print(table)

    chat_name = CHAT_ROWS[1] if args.mode == "generated" else CHAT_ROWS[0]
    passed = next(
        (s for s in steps if s.chat and s.chat.p95 is not None and s.chat.p95 > CHAT_LIMIT_MS), None
    )
    if passed:
        console.print(
            f"chat p95 ({chat_name}) passed {CHAT_LIMIT_MS / 1000:.0f} s at [bold]{passed.students}[/bold] "
            f"students ({fmt(passed.chat.p95)} ms)."
        )
    else:
        console.print(
            f"chat p95 ({chat_name}) never passed {CHAT_LIMIT_MS / 1000:.0f} s "
            f"(up to {steps[-1].students} students)."
        )

    console.print(
        f"Goal: {GOAL_STUDENTS} students (think time 3–10 s): 0 errors, "
        f"page and API p95 < {GOAL_PAGE_MS} ms, extractive chat p95 < {GOAL_CHAT_MS} ms."
    )
    at_goal = next((s for s in steps if s.students == GOAL_STUDENTS), None)
    judged = at_goal or steps[-1]
    slow = [r for r in page_and_api(judged) if r.p95 >= GOAL_PAGE_MS]
    checks = [
        ("0 errors", judged.errors == 0, f"{judged.errors} errors"),
        (
            f"page and API p95 < {GOAL_PAGE_MS} ms",
            bool(page_and_api(judged)) and not slow,
            ", ".join(f"{r.name} {fmt(r.p95)} ms" for r in slow) or "every one below",
        ),
    ]
    if args.mode == "extractive":
        chat = judged.chat
        checks.append(
            (
                f"extractive chat p95 < {GOAL_CHAT_MS} ms",
                chat is not None and chat.p95 is not None and chat.p95 < GOAL_CHAT_MS,
                f"{fmt(chat.p95) if chat else '—'} ms",
            )
        )
    else:
        checks.append(("extractive chat p95", None, "not measured in generated mode"))
    where = f"at {judged.students} students" + (
        "" if at_goal else f" (no {GOAL_STUDENTS}-student step was run)"
    )
    for label, ok, detail in checks:
        verdict = "—" if ok is None else ("[green]met[/green]" if ok else "[red]not met[/red]")
        console.print(f"  {label}: {verdict} {where}: {detail}")
    overall = all(ok for _, ok, _ in checks if ok is not None)
    if at_goal and args.mode == "extractive":
        console.print(f"Goal {'[green]met[/green]' if overall else '[red]not met[/red]'}.")
    else:
        console.print(f"Goal not judged (needs an extractive {GOAL_STUDENTS}-student step).")
    console.print(
        "Rate limits raised for this server (every student is 127.0.0.1): "
        + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
        + "; per-user and per-account limits as configured."
    )


# --- main ----------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    if importlib.util.find_spec("locust") is None:
        console.print("locust is not installed: run `make bench-load` (it installs the `bench` extra).")
        return 2
    book_path = BOOKS / args.book
    if not book_path.is_file():
        console.print(f"no such book: {book_path}")
        return 2
    import shutil

    shutil.rmtree(BENCH_VAR, ignore_errors=True)
    BENCH_VAR.mkdir(parents=True)
    console.print(
        f"StudyRAG load: steps {', '.join(map(str, args.steps))} students, {args.step_seconds} s each, "
        f"spawn {args.spawn_rate:g}/s, mode {args.mode}, {os.cpu_count()} CPUs"
    )
    console.print(
        "Rate limits raised for this server: " + ", ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
    )
    model, model_url = (None, None)
    server = None
    steps: list[Step] = []
    try:
        if args.mode == "generated":
            model, model_url = start_fake_model(args.model_word_ms)
            console.print(f"fake model: {model_url} ({args.model_word_ms:g} ms per word)")
        process, base_url, log_path = start_server(args, model_url)
        server = Server(process, base_url, log_path, model)
        started = time.perf_counter()
        wait_healthy(server)
        console.print(f"server healthy at {base_url} after {time.perf_counter() - started:.1f} s")
        running = [
            line for line in log_path.read_text(errors="replace").splitlines() if "is running on" in line
        ]
        if running:
            console.print(f"server says: {running[-1].strip()}", markup=False, highlight=False)

        setup = asyncio.run(set_up(server.base_url, args.steps[-1], book_path))
        console.print(
            f"setup: {len(setup.accounts)} students, each holding {book_path.name} "
            f"({setup.pages} pages, {setup.passages} passages of their own): "
            + "; ".join(f"{label} {seconds:.1f} s" for label, seconds in setup.timings)
        )
        config = {
            "origin": base_url,
            "mode": args.mode,
            "accounts": setup.accounts,
            "questions": questions_for(book_path.name),
            "search_terms": search_terms(book_path),
        }
        config_path = BENCH_VAR / "students.json"
        config_path.write_text(json.dumps(config))
        warm = 2 * (args.web_workers or os.cpu_count() or 1)
        seconds, problems = asyncio.run(
            warm_up(server.base_url, setup.accounts[0], config["questions"], warm)
        )
        console.print(f"warm-up: {warm} questions on new connections, {seconds:.1f} s")
        for problem, count in problems.items():
            console.print(f"  [red]{count}× failed:[/red] {problem}", highlight=False)
        for line, count in server_errors(server.log_path, 0).most_common(10):
            console.print(f"  server log during setup: {count}× {line}", markup=False, highlight=False)

        for students in args.steps:
            console.rule(f"{students} students for {args.step_seconds} s")
            step = run_step(server, config_path, students, args)
            steps.append(step)
            print_step(step, args.mode)
            if not server.alive():
                console.print(f"[red]studyrag serve exited during the step:[/red]\n{tail(server.log_path)}")
                break
    except KeyboardInterrupt:
        console.print("interrupted")
    finally:
        if server is not None:
            console.print("stopping the server …")
            server.stop()
        elif model is not None:
            model.terminate()
            model.wait(10)
    if steps:
        print_summary(steps, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
