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

# ------------------------------------------------------------------------------------------------------------
# A class on JupyterHub (classroom/DEPLOY.md): `make class` starts a hub on 127.0.0.1 with local student accounts,
# nbgrader's exchange and lesson 01 released; `make class-stop` stops it (no process left); `make class-clean`
# also removes its accounts and folders; `make class-demo` is tests/test_class.py (a term in miniature, in chromium).
# Students run an environment built from Debian's /usr/bin/python3.11 in a world-readable place: the default
# python3.11 lives under /root (mode 700), which no student account can run.
CLASS_PY    ?= /usr/bin/python3.11
CLASS_OPT   ?= /opt/flowcourse
CLASS_ENV   ?= $(CLASS_OPT)/student-env
CLASS_PROXY ?= $(CLASS_OPT)/proxy
CLASS_ROOT  ?= /srv/flowcourse-class
CLASS_PORT  ?= 8000
CLASS_LESSONS ?= 01-change-of-variables
HUB_STAMP   := $(VENV)/.class-installed
CHP         := $(CLASS_PROXY)/node_modules/.bin/configurable-http-proxy
CLASS_CLI   := $(BIN)/python -m flowcourse_instructor.classroom --root $(CLASS_ROOT) --env $(CLASS_ENV) --proxy $(CHP)

.PHONY: class class-stop class-clean class-demo class-env class-hub class-proxy class-preflight

class-preflight:
	@[ "$$(id -u)" = 0 ] || { echo "make class: run as root (it creates local Unix accounts for the students and the hub spawns their servers as them): sudo make class"; exit 1; }
	@command -v npm >/dev/null || { echo "make class: npm is missing (the hub's proxy, configurable-http-proxy, is a node package): apt-get install nodejs npm"; exit 1; }
	@test -x $(CLASS_PY) || { echo "make class: $(CLASS_PY) is missing (Debian's python3.11, which every account can run): apt-get install python3.11-venv"; exit 1; }

# the hub runs from the instructor venv (the `class` extra: jupyterhub)
class-hub: $(HUB_STAMP)

$(HUB_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -c benchmarks/constraints.txt -e '.[class]'
	touch $@

# the students' environment: the student wheel, JupyterLab, nbgrader's student extensions, jupyterhub-singleuser
class-env: $(CLASS_ENV)/.installed

$(CLASS_ENV)/.installed: $(WHEEL)
	@test -x $(CLASS_PY) || { echo "need $(CLASS_PY) (Debian's python3.11): apt-get install python3.11-venv"; exit 1; }
	mkdir -p $(CLASS_OPT) && chmod 755 $(CLASS_OPT)
	test -x $(CLASS_ENV)/bin/python || $(CLASS_PY) -m venv $(CLASS_ENV)
	$(CLASS_ENV)/bin/python -m pip install --quiet --upgrade pip
	$(CLASS_ENV)/bin/python -m pip install --quiet jupyterlab==4.6.6 notebook==7.6.5 nbgrader==0.9.6 jupyterhub==6.1.1 $(WHEEL)
	$(CLASS_ENV)/bin/python -m pip install --quiet --force-reinstall --no-deps $(WHEEL)
	$(CLASS_ENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader >/dev/null
	$(CLASS_ENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:create-assignment >/dev/null
	$(CLASS_ENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:course-list >/dev/null
	$(CLASS_ENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader >/dev/null
	$(CLASS_ENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.course_list >/dev/null
	$(CLASS_ENV)/bin/jupyter labextension lock --level=sys_prefix @jupyter/nbgrader:formgrader @jupyter/nbgrader:create-assignment @jupyter/nbgrader:course-list >/dev/null
	chmod -R a+rX,go-w $(CLASS_ENV)
	touch $@

class-proxy: $(CHP)

$(CHP):
	@command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm"; exit 1; }
	mkdir -p $(CLASS_PROXY)
	npm install --silent --no-audit --no-fund --prefix $(CLASS_PROXY) configurable-http-proxy@5.3.0
	chmod -R a+rX,go-w $(CLASS_PROXY)

class: class-preflight class-hub class-env class-proxy
	$(CLASS_CLI) start --port $(CLASS_PORT) --lessons $(CLASS_LESSONS)

class-stop: venv
	$(CLASS_CLI) stop

class-clean: venv
	$(CLASS_CLI) clean

# the term in miniature: tests/test_class.py (also collected by `make test`, marked slow)
class-demo: class-preflight class-hub class-env class-proxy browser student-env
	FLOWCOURSE_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -p no:cacheprovider -s tests/test_class.py tests/test_classroom_files.py

# `make test` also runs tests/test_class.py: as root (CI) it first builds what the class needs; otherwise that
# test skips (or fails under FLOWCOURSE_REQUIRE_BROWSER=1) and says what to run.
.PHONY: class-deps
test: class-deps

class-deps:
	@if [ "$$(id -u)" = 0 ] && command -v npm >/dev/null && [ -x $(CLASS_PY) ]; then \
		$(MAKE) --no-print-directory class-hub class-env class-proxy; \
	else echo "class demo: needs root, npm and $(CLASS_PY); tests/test_class.py will not run the hub"; fi
