# Two commands on a fresh machine: `make run` (service on SQLite) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# airbyte-source-twilio (tests/integration/test_sandbox_airbyte.py) gets a venv of its own: airbyte-cdk
# would downgrade packages of ours. Rebuilt from scratch when its pins change (about 30 s).
AIRBYTE_VENV := .venv-airbyte

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime

$(AIRBYTE_VENV)/.done: scripts/airbyte-requirements.txt
	rm -rf $(AIRBYTE_VENV)
	$(PYTHON) -m venv $(AIRBYTE_VENV)
	$(AIRBYTE_VENV)/bin/pip install -q -r scripts/airbyte-requirements.txt
	touch $@

run: $(VENV)/.runtime
	EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS=$${EVENTSTREAMS_ALLOW_PRIVATE_DESTINATIONS:-true} $(BIN)/eventstreams serve

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: $(VENV)/.dev $(AIRBYTE_VENV)/.done
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-chromium.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q --durations=25

bench: $(VENV)/.dev
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(AIRBYTE_VENV) data .pytest_cache .mypy_cache .ruff_cache
