# Two commands a user needs: `make run` and `make test`. Everything else is for developers.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint bench bench-classifier bench-diff bench-notify bench-pending clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Start embedded PostgreSQL + Redis (or use DATABASE_URL / REDIS_URL), migrate, load the demo,
## serve the web app and one worker. Ctrl-C stops everything.
run: $(STAMP)
	$(PY) -m notifier.devserver

## The whole suite against real PostgreSQL and Redis (embedded unless the URLs are set).
test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not ui and not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: bench-classifier bench-diff bench-notify bench-pending

bench-classifier: $(STAMP)
	$(PY) bench/bench_classifier.py

bench-diff: $(STAMP)
	$(PY) bench/bench_diff.py

## GET /pending vs a no-op endpoint and acceptance POSTs under granian + wrk (system PG/Redis).
bench-pending: $(STAMP)
	$(PY) bench/bench_pending.py

## Publish → 100,000 emails to the fake SendGrid (50 ms) with two workers, against the system
## PostgreSQL (127.0.0.1:5432, database notifier_bench) and Redis (127.0.0.1:6379/9), plus the
## one-job-per-email baseline over 5,000; writes BENCHMARKS_notify.md.
bench-notify: $(STAMP)
	$(PY) bench/bench_notify.py

clean:
	rm -rf $(VENV) .data .pytest_cache
