# make demo   the whole portal on this machine (SQLite, sandbox Okta org, Celery);
#             other ports: make demo PORT=8001 OKTA_PORT=8101 AWS_PORT=8201 (moto)
# make test   lint + the test suite, as CI runs it (.ci/test)
# make lint   ruff check + ruff format --check

PYTHON ?= python3
VENV := .venv
PORT ?= 8000
OKTA_PORT ?= 8100
AWS_PORT ?= 8200
# Touched after each install: pip runs again only when requirements.txt is newer.
STAMP := $(VENV)/.requirements-installed

.PHONY: demo test lint venv

demo: venv
	$(VENV)/bin/python manage.py run_demo --port $(PORT) --okta-port $(OKTA_PORT) --aws-port $(AWS_PORT)

test: venv
	PY=$(VENV)/bin/python bash .ci/test

lint: venv
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m ruff format --check .

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)
