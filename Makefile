# Quick start: `make run` (the portal, SQLite + django-q2 ORM broker) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint bench system-deps venv

$(VENV)/.installed-run: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run requirements-dev.txt agent/requirements.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed-dev

run: $(VENV)/.installed-run
	PORT=$(PORT) scripts/run.sh

system-deps:
	scripts/install-system-deps.sh

test: system-deps $(VENV)/.installed-dev
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	DEBUG=true $(VENV)/bin/mypy  # the apps, as [tool.mypy] in pyproject.toml says

bench: system-deps $(VENV)/.installed-dev
	$(PY) bench/run.py $(BENCH_ARGS)
