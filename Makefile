# The two set-up commands of the README. Both create .venv with the project and its dev tools
# when it is missing (Python 3.11+ as `python3`), so either works first on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv

$(BIN)/customs-hub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/customs-hub

demo: venv
	$(BIN)/customs-hub demo

# The whole suite, in four processes: on two cores they overlap one test's waits (on a hub, a
# disk sync, a subprocess) with another's work. `-m "not slow"` skips the slow ones.
PYTEST_WORKERS ?= 4

test: venv
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
