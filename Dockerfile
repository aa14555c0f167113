# StudyRAG web and worker image. Production sets DATABASE_URL, REDIS_URL, JWT_SECRET (and S3_BUCKET):
# nothing embedded starts then. Built and run on Fly (see fly.toml); not built on the dev machines,
# which have no Docker engine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DO_NOT_TRACK=1 \
    ENVIRONMENT=production

# Tesseract reads scanned PDF pages (app/ingestion/parse_pdf.py).
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 studyrag
WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY packaging ./packaging
RUN mkdir app && touch app/__init__.py && pip install -e . ./packaging/en_core_web_sm && rm -rf app

COPY alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-deps -e . && mkdir -p var && chown studyrag:studyrag var

USER studyrag
EXPOSE 8000
# One web process per CPU (WEB_WORKERS overrides); forwarded headers only from FORWARDED_ALLOW_IPS.
CMD ["studyrag", "web", "--host", "0.0.0.0", "--port", "8000"]
