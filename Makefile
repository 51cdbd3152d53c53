# flowcourse: the two commands a fresh machine needs are `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: venv student-wheel student-env test lint demo lab book browser bench bench-peers clean

venv: $(STAMP)

# The course, its tests, the book (Sphinx, Playwright) and the peer flow libraries the benchmarks compare
# with; every version is pinned in pyproject.toml, and the constraints file keeps pip from replacing torch.
$(STAMP): pyproject.toml benchmarks/constraints.txt
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c benchmarks/constraints.txt -e '.[dev,book,bench]'
	touch $(STAMP)

# The student toolkit: a wheel of src/flowcourse alone (no key, no checks, no solutions), and the environment a class
# server or a student's laptop gets: JupyterLab, nbgrader's student-side extensions (Assignments, Validate; the
# formgrader and Create Assignment are switched off) and that wheel. `make lab` opens the course in it.
STUDENT     := .venv-student
STUDENT_BIN := $(STUDENT)/bin
STUDENT_PY  ?= $(PY)
TOOLKIT     := $(shell find src/flowcourse -name '*.py') student/pyproject.toml student/README.md
WHEEL       := dist/flowcourse-0.1.0-py3-none-any.whl

student-wheel: $(WHEEL)

$(WHEEL): $(TOOLKIT) $(STAMP)
	rm -rf build/student && mkdir -p build/student dist
	cp student/pyproject.toml student/README.md build/student/
	mkdir -p build/student/src && cp -r src/flowcourse build/student/src/
	find build/student -name __pycache__ -prune -exec rm -rf {} +
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist build/student

student-env: $(STUDENT)/.installed

$(STUDENT)/.installed: $(WHEEL)
	test -x $(STUDENT_BIN)/python || $(STUDENT_PY) -m venv $(STUDENT)
	$(STUDENT_BIN)/python -m pip install --quiet --upgrade pip
	$(STUDENT_BIN)/python -m pip install --quiet jupyterlab==4.6.6 notebook==7.6.5 nbgrader==0.9.6 $(WHEEL)
	$(STUDENT_BIN)/python -m pip install --quiet --force-reinstall --no-deps $(WHEEL)
	$(STUDENT_BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader >/dev/null
	$(STUDENT_BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:create-assignment >/dev/null
	$(STUDENT_BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:course-list >/dev/null
	$(STUDENT_BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader >/dev/null
	$(STUDENT_BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.course_list >/dev/null
	touch $@

lint: venv
	$(BIN)/ruff check src tests benchmarks solutions conftest.py

# The book's browser tests drive Debian's chromium (Playwright cannot download a browser here). As root it is
# installed when missing; otherwise those tests skip, unless FLOWCOURSE_REQUIRE_BROWSER=1 (CI) makes them fail.
browser: venv
	@test -x /usr/bin/chromium || [ "$$(id -u)" != 0 ] || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@test -x /usr/bin/chromium || echo "no /usr/bin/chromium: the browser tests will skip (apt-get install chromium)"

test: venv lint browser student-env
	$(BIN)/python -m pytest

demo: venv
	$(BIN)/flowcourse demo

lab: student-env
	$(STUDENT_BIN)/jupyter lab --notebook-dir=course

# The self-study site in book/_build/html: every lesson executed (cached in book/_build), warnings are errors.
book: venv
	$(BIN)/flowcourse book

# Benchmarks print figures and are never part of the tests; `make bench` rewrites benchmarks/RESULTS.md.
bench: venv
	$(BIN)/python -m benchmarks --out benchmarks/RESULTS.md

bench-peers: venv
	$(BIN)/python -m benchmarks.peers

clean:
	rm -rf $(VENV) $(STUDENT) .kernel-side build dist submitted autograded feedback gradebook.db book/_build book/_pages autograder/work
