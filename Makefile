# The two commands of aidlc. Everything they need is installed here; nothing is fetched at run time.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
LOCK   := requirements.lock
PYTEST_ARGS ?= -n auto

.PHONY: run test lint system-deps lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"

$(VENV)/.installed-run: $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install -q -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install -q -c $(LOCK) -e '.[dev,aws,ray]'
	touch $@ $(VENV)/.installed-run

## make run: install aidlc and walk the whole lifecycle in a temporary workspace
run: $(VENV)/.installed-run
	$(BIN)/aidlc quickstart

## make test: install the dev extras and system packages the tests need, run the whole suite
test: $(VENV)/.installed-dev system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## system packages (PostgreSQL server binaries, Redis) via apt-get when they are missing
system-deps:
	@scripts/system-deps.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src

## regenerate the lock file from a fresh environment (maintainers)
lock:
	rm -rf /tmp/aidlc-lock && $(PYTHON) -m venv /tmp/aidlc-lock
	/tmp/aidlc-lock/bin/pip install -q -e '.[dev,aws,ray]'
	/tmp/aidlc-lock/bin/pip freeze --exclude-editable | grep -v '^aidlc' > $(LOCK)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
