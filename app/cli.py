"""`studyrag`: serve, worker, migrate, create-admin."""

import asyncio
import getpass
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from app.config import Settings, get_settings
from app.embedded import EmbeddedServices, ServiceUrls

if TYPE_CHECKING:  # each command imports what it needs when it runs
    from app.chat.evaluate import Report
    from app.models import IsolationAuditRun

cli = typer.Typer(help="StudyRAG: ask your own textbooks.", no_args_is_help=True, add_completion=False)
console = Console(stderr=True)


def _start_services() -> tuple[EmbeddedServices, ServiceUrls]:
    """The services for a command; an embedded database is migrated first (nobody else will)."""
    from app.migrate import upgrade_to_head

    settings = get_settings()
    services = EmbeddedServices(settings)
    urls = asyncio.run(services.start())
    if not settings.database_url:
        asyncio.run(upgrade_to_head(urls.database_url))
    return services, urls


@cli.command()
def migrate() -> None:
    """Apply database migrations (as the owner role), and fit the embedding column to EMBEDDING_DIM."""
    from app.migrate import upgrade_to_head

    services, urls = _start_services()
    try:
        asyncio.run(upgrade_to_head(urls.database_url))  # a no-op when _start_services just did it
        console.print("[green]Database is at the latest migration.[/green]")
    finally:
        services.stop()


def _fresh_metrics_dir(settings: Settings) -> dict[str, str]:
    """The directory where every process of this run writes its metrics (prometheus-client's
    multiprocess mode), emptied first: samples of an earlier run are not this run's. An operator's own
    PROMETHEUS_MULTIPROC_DIR is used as it is."""
    if path := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return {"PROMETHEUS_MULTIPROC_DIR": path}
    directory = settings.var_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}


def _web_command(settings: Settings, *, host: str, port: int, web_workers: int) -> list[str]:
    """uvicorn with `web_workers` processes (its supervisor restarts one that dies). Forwarded
    headers are believed only from FORWARDED_ALLOW_IPS."""
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", host, "--port", str(port)]
    command += ["--workers", str(web_workers)]
    # Idle keep-alive longer than a student's pause between clicks (and a load balancer's idle timeout),
    # so a request never races the server closing its connection.
    command += ["--timeout-keep-alive", "75"]
    # uvicorn restarts a web process that does not answer its ping in time; 5 s (its default) is
    # shorter than a busy process on a loaded machine can take, and killing it drops its requests.
    command += ["--timeout-worker-healthcheck", "30"]
    command += ["--no-access-log"]  # the app logs one line per request itself (app/logs.py)
    if settings.forwarded_allow_ips:
        command += ["--proxy-headers", "--forwarded-allow-ips", settings.forwarded_allow_ips]
    else:
        command += ["--no-proxy-headers"]
    return command


@cli.command()
def web(
    host: str = typer.Option(None, help="Address to listen on (default: HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default: PORT or 8000)."),
    web_workers: int = typer.Option(
        None, "--web-workers", min=1, help="Web processes (default: WEB_WORKERS or the number of CPUs)."
    ),
) -> None:
    """Run only the web app, on the services the environment names (production: Dockerfile, fly.toml)."""
    settings = get_settings()
    command = _web_command(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        web_workers=web_workers or settings.web_workers or os.cpu_count() or 1,
    )
    os.environ.update(_fresh_metrics_dir(settings))
    os.execv(command[0], command)


@cli.command()
def serve(
    host: str = typer.Option(None, help="Address to listen on (default: HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to listen on (default: PORT or 8000)."),
    web_workers: int = typer.Option(
        None, "--web-workers", min=1, help="Web processes (default: WEB_WORKERS or the number of CPUs)."
    ),
) -> None:
    """Run the web app and a worker, with embedded Postgres and Redis where no URL is set.

    Every process is supervised: one that dies is logged and started again, the others keep serving."""
    from app.logs import configure_logging
    from app.migrate import upgrade_to_head
    from app.supervise import Supervised, stop_all

    settings = get_settings()
    configure_logging(settings.log_format_used, settings.log_level)
    host = host or settings.host
    port = port or settings.port
    web_workers = web_workers or settings.web_workers or os.cpu_count() or 1
    services, urls = _start_services()
    children: list[Supervised] = []
    try:
        if settings.database_url:
            asyncio.run(upgrade_to_head(urls.database_url))
        env = {**os.environ, **urls.as_env(), **_fresh_metrics_dir(settings)}
        web = _web_command(settings, host=host, port=port, web_workers=web_workers)
        worker = [sys.executable, "-m", "app.cli", "worker"]
        children = [Supervised("web app", web, env), Supervised("ingestion worker", worker, env)]
        for child in children:
            child.start()
        console.print(
            f"[bold]StudyRAG[/bold] is running on http://{host}:{port} "
            f"({web_workers} web process{'es' if web_workers > 1 else ''}) — Ctrl-C stops it."
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        # Ctrl-C stops it even when started from a shell that ignores SIGINT for background jobs (the
        # ignore is inherited, and Python then raises no KeyboardInterrupt).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        while True:
            for child in children:
                child.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("Stopping…")
    finally:
        stop_all(children)
        services.stop()
        console.print("Stopped.")


@cli.command()
def worker() -> None:
    """Run an ingestion worker."""
    from arq.connections import RedisSettings
    from arq.worker import run_worker

    from app.logs import configure_logging
    from app.worker import WorkerSettings

    settings = get_settings()
    configure_logging(settings.log_format_used, settings.log_level)  # arq's lines and ours, one format
    if (niceness := settings.worker_nice) > 0:
        os.nice(niceness)  # the parsing children inherit it
    services, urls = _start_services()
    try:
        run_worker(
            WorkerSettings,
            redis_settings=RedisSettings.from_dsn(urls.redis_url),
            ctx={"app_database_url": urls.app_database_url},
        )
    finally:
        services.stop()


@cli.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="PDF files to add.", exists=True, dir_okay=False),
    user: str = typer.Option(..., "--user", help="Email of the library's owner."),
    semester: str = typer.Option(..., help="Semester, e.g. Y3S2."),
    subject: str = typer.Option(..., help="Subject, e.g. NLP."),
    book: str = typer.Option(..., help="Book, e.g. NLTK_Book."),
) -> None:
    """Upload local PDFs into a user's library and ingest them, with a progress bar per file."""
    from app.ingestion.bulk import bulk_ingest
    from app.library.names import InvalidName
    from app.library.service import Folder

    try:
        folder = Folder.parse(semester, subject, book)
    except InvalidName as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    services, urls = _start_services()
    try:
        problems = asyncio.run(
            bulk_ingest(urls, get_settings(), paths=paths, email=user, folder=folder, console=console)
        )
    finally:
        services.stop()
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]{len(paths)} file(s) ready in {folder}.[/green]")


@cli.command("eval")
def evaluate(
    qa_file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="JSON lines: question, book, pages, answer, and optionally scope_books, scope, near_book.",
    ),
    user: str = typer.Option(..., "--user", help="Email of the library to ask."),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Passages retrieved per question."),
    retrieval: str = typer.Option(
        None, help="vector, hybrid or text (default: CHAT_RETRIEVAL): measure what each ranking adds."
    ),
) -> None:
    """Page hit@1, hit@k and MRR of retrieval on a question set, refusals, scope, and a table per book."""
    from app.chat.evaluate import evaluate as run_evaluation
    from app.chat.evaluate import read_question_set

    settings = get_settings()
    retrieval = retrieval or settings.chat_retrieval
    if retrieval not in ("vector", "hybrid", "text"):
        console.print("[red]--retrieval is vector, hybrid or text.[/red]")
        raise typer.Exit(2)
    services, urls = _start_services()
    try:
        lines = read_question_set(qa_file)
        methods = {"hybrid": ("vector", "text"), "vector": ("vector",), "text": ("text",)}[retrieval]
        report = asyncio.run(run_evaluation(urls, settings, lines=lines, email=user, k=k, methods=methods))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        services.stop()
    mode = f"model {settings.chat_model}" if settings.openai_api_key else "no model (extractive)"
    _print_evaluation(report, title=f"{qa_file.name} — {user} — k={k} — {retrieval} — {mode}")


def _print_evaluation(report: "Report", *, title: str) -> None:
    from rich.table import Table

    def share(part: int, whole: int) -> str:
        return f"{part / whole:.1%} ({part}/{whole})" if whole else "—"

    out = Console()
    if not out.is_terminal:  # piped into a file: wide enough for the book names
        out = Console(width=120)
    k, answerable, off_library = report.k, len(report.answerable), len(report.off_library)
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("answerable questions", str(answerable))
    table.add_row("page hit@1", share(report.hits_at(1), answerable))
    table.add_row(f"page hit@{k}", share(report.hits_at(k), answerable))
    table.add_row("MRR", "—" if report.mrr is None else f"{report.mrr:.3f}")
    table.add_row("answerable but refused", str(report.wrongly_refused))
    table.add_row("off-library questions", str(off_library))
    table.add_row(
        "refusal precision (refusals that were right)", share(report.rightly_refused, report.refusals)
    )
    table.add_row("refusal recall (off-library refused)", share(report.rightly_refused, off_library))
    if hard := report.hard_negatives:
        table.add_row("  of them hard negatives refused", share(sum(o.refused for o in hard), len(hard)))
    if report.scoped:
        table.add_row("scope: cites only the named book", share(report.scope_correct, len(report.scoped)))
    out.print(table)

    books = Table(title="per book (answerable questions)")
    for column in ("book", "questions", "hit@1", f"hit@{k}", "MRR"):
        books.add_column(column, justify="left" if column == "book" else "right")
    for row in report.per_book():
        books.add_row(
            row.book,
            str(row.questions),
            share(row.hits_at_1, row.questions),
            share(row.hits, row.questions),
            f"{row.mrr:.3f}",
        )
    out.print(books)
    for outcome in report.outcomes:
        if outcome.answerable and outcome.rank is None:
            console.print(f"[dim]miss:[/dim] {outcome.question}")
        if outcome.answerable and outcome.refused:
            console.print(f"[dim]refused but answerable:[/dim] {outcome.question}")
        if not outcome.answerable and not outcome.refused:
            console.print(f"[dim]answered but off-library:[/dim] {outcome.question}")
        if outcome.scope_books and outcome.cited and not outcome.cites_only_scope:
            console.print(f"[dim]outside its scope:[/dim] {outcome.question}")


@cli.command()
def audit(
    clean_orphans: bool = typer.Option(
        False,
        "--clean-orphans",
        help="Delete the stored objects no user or document claims, and remove documents whose file is "
        "gone; then audit again.",
    ),
) -> None:
    """Tenant-isolation audit: every check, its result and offending items; exit 0 when all pass."""
    from app.admin.isolation_runs import clean_storage, run_and_record, storage_orphans
    from app.db import make_engine
    from app.library.storage import make_storage

    settings = get_settings()
    storage = make_storage(settings)

    async def audit_and_clean() -> "IsolationAuditRun":
        engine = make_engine(urls.app_database_url)
        try:
            run = await run_and_record(engine, storage, app_role=settings.app_db_role, admin=None, via="cli")
            if clean_orphans and (listed := storage_orphans(run)):
                done = await clean_storage(engine, storage, listed=listed, admin=None, via="cli")
                console.print(
                    f"Deleted {len(done.deleted_objects)} orphan object(s) and removed "
                    f"{len(done.forgotten_documents)} document(s) whose file was missing."
                )
                run = await run_and_record(
                    engine, storage, app_role=settings.app_db_role, admin=None, via="cli"
                )
            return run
        finally:
            await engine.dispose()

    services, urls = _start_services()
    try:
        run = asyncio.run(audit_and_clean())
    finally:
        services.stop()
    _print_audit(run)
    if not run.passed:
        raise typer.Exit(1)


def _print_audit(run: "IsolationAuditRun") -> None:
    from rich.table import Table

    from app.admin.isolation_runs import results_of

    table = Table(title=f"Tenant isolation audit — run {run.id}, {run.duration_ms} ms")
    table.add_column("check")
    table.add_column("result")
    table.add_column("offending items")
    for result in results_of(run):
        verdict = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        shown = result.offenders[:20] + (
            [f"… and {len(result.offenders) - 20} more"] if len(result.offenders) > 20 else []
        )
        table.add_row(result.name, verdict, "\n".join(shown))
    Console().print(table)


@cli.command("create-admin")
def create_admin(
    email: str,
    name: str = typer.Option("", help="Display name for a new account."),
) -> None:
    """Make EMAIL an admin; creates the account (asking for a password) if it does not exist."""
    from app.auth.superuser import make_admin

    services, urls = _start_services()
    try:
        created = asyncio.run(make_admin(urls, email=email, name=name, ask_password=_ask_password))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        services.stop()
    console.print(f"[green]{email} is {'a new' if created else 'now an'} admin.[/green]")


def _ask_password() -> str:
    password = os.environ.get("STUDYRAG_ADMIN_PASSWORD")
    if password:
        return password
    password = getpass.getpass("Password for the new admin: ")
    if getpass.getpass("Repeat it: ") != password:
        raise ValueError("The passwords do not match.")
    return password


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
