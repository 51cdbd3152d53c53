# flowcourse: the two commands a fresh machine needs are `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: venv test lint demo lab book browser bench bench-peers clean

venv: $(STAMP)

# The course, its tests, the book (Sphinx, Playwright) and the peer flow libraries the benchmarks compare
# with; every version is pinned in pyproject.toml, and the constraints file keeps pip from replacing torch.
$(STAMP): pyproject.toml benchmarks/constraints.txt
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c benchmarks/constraints.txt -e '.[dev,book,bench]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check src tests benchmarks solutions conftest.py

# The book's browser tests drive Debian's chromium (Playwright cannot download a browser here). As root it is
# installed when missing; otherwise those tests skip, unless FLOWCOURSE_REQUIRE_BROWSER=1 (CI) makes them fail.
browser: venv
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@test -x /usr/bin/chromium || echo "no /usr/bin/chromium: the browser tests will skip (apt-get install chromium)"

test: venv lint browser
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/flowcourse demo

lab: venv
	$(BIN)/jupyter lab --notebook-dir=course

# The self-study site in book/_build/html: every lesson executed (cached in book/_build), warnings are errors.
book: venv
	$(BIN)/flowcourse book

# Benchmarks print figures and are never part of the tests; `make bench` rewrites benchmarks/RESULTS.md.
bench: venv
	$(BIN)/python -m benchmarks --out benchmarks/RESULTS.md

bench-peers: venv
	$(BIN)/python -m benchmarks.peers

clean:
	rm -rf $(VENV) submitted autograded feedback gradebook.db book/_build book/_pages autograder/work
