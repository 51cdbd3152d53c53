# flowcourse: the two commands a fresh machine needs are `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: venv test lint demo lab clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check src tests

test: venv lint
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/flowcourse demo

lab: venv
	$(BIN)/jupyter lab --notebook-dir=course

clean:
	rm -rf $(VENV) submitted autograded feedback gradebook.db
