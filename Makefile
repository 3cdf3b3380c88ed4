# make demo   the whole portal on this machine (SQLite, sandbox Okta org, Celery);
#             other ports: make demo PORT=8001 OKTA_PORT=8101 AWS_PORT=8201 (moto)
#             PAGERDUTY_PORT=8301 (the sandbox PagerDuty, https)
# make test   lint + the test suite, as CI runs it (.ci/test)
# make lint   ruff check + ruff format --check + import-linter + mypy
# make bench  every benchmark at full size on the production stack (docs/performance.md)

PYTHON ?= python3
VENV := .venv
PORT ?= 8000
OKTA_PORT ?= 8100
AWS_PORT ?= 8200
PAGERDUTY_PORT ?= 8300
# Touched after each install: pip runs again only when its requirements file is newer.
# The demo needs only the runtime requirements; tests and tools add requirements-dev.txt
# (which includes the runtime file, so installing it also satisfies the runtime stamp).
STAMP := $(VENV)/.requirements-installed
DEV_STAMP := $(VENV)/.requirements-dev-installed
PIP := $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint venv dev-venv bench bench-quick

demo: venv
	$(VENV)/bin/python manage.py run_demo --port $(PORT) --okta-port $(OKTA_PORT) --aws-port $(AWS_PORT) --pagerduty-port $(PAGERDUTY_PORT)

test: dev-venv
	PY=$(VENV)/bin/python bash .ci/test

lint: dev-venv
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/python -m mypy

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

dev-venv: $(DEV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements-demo.txt requirements.txt | $(VENV)/bin/python
	$(PIP) -r requirements-demo.txt
	touch $(STAMP)

# The dev file includes moto too, so it also satisfies the demo's stamp.
$(DEV_STAMP): requirements-dev.txt requirements-demo.txt requirements.txt | $(VENV)/bin/python
	$(PIP) -r requirements-dev.txt
	touch $(STAMP) $(DEV_STAMP)
