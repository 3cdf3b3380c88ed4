# make demo   the whole portal on this machine (SQLite, sandbox Okta org, Celery)
# make test   lint + the test suite, as CI runs it (.ci/test)
# make lint   ruff check + ruff format --check
# make bench  every benchmark at full size on the production stack (docs/performance.md)

PYTHON ?= python3
VENV := .venv
PORT ?= 8000
# Touched after each install: pip runs again only when requirements.txt is newer.
STAMP := $(VENV)/.requirements-installed

.PHONY: demo test lint venv bench bench-quick

demo: venv
	$(VENV)/bin/python manage.py run_demo --port $(PORT)

test: venv
	PY=$(VENV)/bin/python bash .ci/test

lint: venv
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m ruff format --check .

# DATABASE_URL: any database on the PostgreSQL server the benchmarks may use (they
# create and drop their own). Results: var/bench/*.json and *.png.
BENCH_STAMP := $(VENV)/.bench-requirements-installed

bench: venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench all

bench-quick: venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench all --quick

$(BENCH_STAMP): requirements-bench.txt requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $(BENCH_STAMP)

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)
