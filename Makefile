# The two commands of aidlc. Everything they need is installed here; nothing is fetched at run time.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
LOCK   := requirements.lock
TOOLS  := .venv-tools
TOOLS_LOCK := requirements-tools.lock
PYTEST_ARGS ?= -n auto

.PHONY: run test lint mutation mutation-quick system-deps lock lock-tools secrets-baseline clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"

$(VENV)/.installed-run: $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install -q -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml $(LOCK)
	$(PIP) install -q -c $(LOCK) -e '.[dev,aws,ray]'
	touch $@ $(VENV)/.installed-run

# Checkov, pip-audit, detect-secrets and cyclonedx-py run as commands from a venv of their own:
# Checkov pins versions older than aidlc's locked dependencies.
$(TOOLS)/.installed: $(TOOLS_LOCK)
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --upgrade "pip>=24"
	$(TOOLS)/bin/python -m pip install -q -r $(TOOLS_LOCK)
	touch $@

## make run: install aidlc and walk the whole lifecycle in a temporary workspace
run: $(VENV)/.installed-run
	$(BIN)/aidlc quickstart

## make test: install the dev extras and system packages the tests need, run the whole suite
test: $(VENV)/.installed-dev $(TOOLS)/.installed system-deps
	AIDLC_TOOLS_BIN=$(abspath $(TOOLS))/bin $(BIN)/python -m pytest $(PYTEST_ARGS)

## make mutation: mutation testing of the security-critical modules (about an hour); writes
## docs/quality.md. Not part of make test.
mutation: $(VENV)/.installed-dev system-deps
	$(BIN)/python scripts/mutation.py --report docs/quality.md

## make mutation-quick: the same for the modules a change touches against main (BASE=...);
## fails on any survivor not explained in tests/mutation/
BASE ?= main
mutation-quick: $(VENV)/.installed-dev system-deps
	$(BIN)/python scripts/mutation.py --quick --base $(BASE)

## system packages (PostgreSQL server binaries, Redis) via apt-get when they are missing
system-deps:
	@scripts/system-deps.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src

## regenerate the lock file from a fresh environment (maintainers)
lock:
	rm -rf /tmp/aidlc-lock && $(PYTHON) -m venv /tmp/aidlc-lock
	/tmp/aidlc-lock/bin/pip install -q -e '.[dev,aws,ray]'
	/tmp/aidlc-lock/bin/pip freeze --exclude-editable | grep -v '^aidlc' > $(LOCK)

lock-tools:
	rm -rf /tmp/aidlc-lock-tools && $(PYTHON) -m venv /tmp/aidlc-lock-tools
	/tmp/aidlc-lock-tools/bin/pip install -q checkov pip-audit detect-secrets cyclonedx-bom
	{ grep '^#' $(TOOLS_LOCK); /tmp/aidlc-lock-tools/bin/pip freeze; } > $(TOOLS_LOCK).new
	mv $(TOOLS_LOCK).new $(TOOLS_LOCK)

## after reviewing new findings: refresh .secrets.baseline, keeping the audit marks already made
secrets-baseline: $(TOOLS)/.installed
	git ls-files -z | grep -zv '^\.secrets\.baseline$$' \
		| xargs -0 $(TOOLS)/bin/detect-secrets scan --baseline .secrets.baseline

clean:
	rm -rf $(VENV) $(TOOLS) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
