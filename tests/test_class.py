"""A term in miniature on a real JupyterHub (``make class-demo``; classroom/, flowcourse_instructor.classroom).

A hub on 127.0.0.1 with three local student accounts and an instructor account, lesson 01 released to nbgrader's
exchange. Playwright drives Debian's chromium: each student logs in, opens Nbgrader → Assignment List, fetches
lesson 01, opens it, puts their answers into the answer cells (alice: the solution; bob: the classic sign mistake
of the log-det; carol: nothing), runs the notebook (the self-checks show), saves and submits. Nobody else acts:
the hub's grading service (``flowcourse serve``) grades each submission as it arrives, in the student
environment and the sandbox, and releases its feedback. Each student presses Fetch Feedback in the Assignment
List and reads it in the browser: their own score, and bob the named mistake. Alice hands in three more times
within the hour: the fourth is refused, and its feedback page says when the next will be graded. Then, as each
student's Unix account, nothing of another student, the gradebook or the key is readable. Screenshots and the
table go to ``build/class-demo/``.

Needs root (accounts), ``make class-env class-proxy class-hub`` and ``/usr/bin/chromium``; otherwise it skips,
unless ``FLOWCOURSE_REQUIRE_BROWSER=1`` (CI), where it fails. Everything is torn down even on failure: the hub,
the proxy, every process of the class's accounts, the accounts and the class root.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from flowcourse_instructor.classroom import REPO, ClassError, Classroom, _exists, _port_free, readable_by

pytestmark = pytest.mark.slow

LESSON = "01-change-of-variables"
NOTEBOOK = f"{LESSON}.ipynb"
MISTAKE_ID = "l01-sign-of-logdet"  # the classic mistake, as the lesson's sample students state it
OUT = REPO / "build" / "class-demo"
CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("FLOWCOURSE_REQUIRE_BROWSER") == "1"
ENV = Path(os.environ.get("CLASS_ENV", "/opt/flowcourse/student-env"))
PROXY = Path(os.environ.get("CLASS_PROXY", "/opt/flowcourse/proxy")) / "node_modules/.bin/configurable-http-proxy"
STEP = 120_000  # ms: the longest any single browser step may take
# nbgrader's feedback page asks a CDN for MathJax; the route below aborts it (the class is offline), so the
# feedback's formulas show as TeX source. Any other request leaving 127.0.0.1 fails the test.
KNOWN_OUTSIDE = ("https://cdnjs.cloudflare.com/ajax/libs/mathjax/",)


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (FLOWCOURSE_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _free_port() -> int:
    for port in range(18100, 19000, 10):
        if all(_port_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise RuntimeError("no free port triple in 18100-19000 on 127.0.0.1")


def assert_isolated(user: str, private: list[Path], public: list[Path]) -> None:
    """As the account ``user``: every path of ``private`` is unreadable (and unlistable), every path of
    ``public`` readable (so the check itself works: a broken helper cannot pass it)."""
    leaked = readable_by(user, private)
    assert not leaked, f"{user} can read what is not theirs: {leaked}"
    missing = sorted(set(map(str, public)) - set(readable_by(user, public)))
    assert not missing, f"{user} cannot read their own / the released files: {missing}"


# -------------------------------------------------------------------------------------------------- the class
@pytest.fixture(scope="module")
def room():
    if os.geteuid() != 0:
        _unavailable("the class demo needs root (it creates local Unix accounts)")
    if not (ENV / "bin" / "jupyterhub-singleuser").is_file() or not PROXY.is_file():
        _unavailable(f"no student environment at {ENV} or proxy at {PROXY}: run `make class-env class-proxy`")
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is missing: run `make browser`")
    try:
        import jupyterhub  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as e:
        _unavailable(f"{e.name} is not installed in the instructor venv: run `make class-hub`")
    root = Path(tempfile.mkdtemp(prefix="flowcourse-class-", dir="/tmp"))
    classroom = Classroom(root=root, env=ENV, proxy=PROXY, port=_free_port(), prefix="fct",
                          password="demo-" + os.urandom(6).hex())
    try:
        _remove_stale(classroom.accounts)  # an earlier run killed before its teardown (the fct- names are ours)
        classroom.start([LESSON])
        yield classroom
    finally:
        classroom.clean()
        left = classroom.leftovers()
        assert not left, f"processes left behind: {left}"
        assert not any(_exists(a) for a in classroom.accounts), "accounts left behind"


def _remove_stale(accounts: list[str]) -> None:
    from flowcourse_instructor.classroom import _pids_of, _terminate

    stale = [a for a in accounts if _exists(a)]
    if stale:
        _terminate(_pids_of({pwd.getpwnam(a).pw_uid for a in stale}), wait=5)
        for account in stale:
            subprocess.run(["userdel", "--remove", "--force", account], capture_output=True)


@pytest.fixture(scope="module")
def browser(room):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        try:
            yield chromium
        finally:
            chromium.close()


# ------------------------------------------------------------------------------------------------ the answers
def _answers(room: Classroom) -> dict[str, tuple[dict[str, str], dict[str, float], str]]:
    """Per student: (answer cell id → source typed, expected points per test cell, the mistake's name)."""
    import importlib

    from flowcourse_instructor.grading.sampleclass import (
        Student,
        _apply,
        _solution_notebook,
        expected_points,
        resolve_names,
    )

    course = room.course
    release = nbformat.read(course / "course" / LESSON / NOTEBOOK, 4)
    solution = nbformat.read(course / "solutions" / LESSON / NOTEBOOK, 4)
    samples = [s for s in importlib.import_module("flowcourse_lessons.lesson_01.students").STUDENTS
               if s.get("patches") and s.get("expect_message") and s.get("base", "solution") == "solution"]
    sample = next((s for s in samples if s["id"] == MISTAKE_ID), samples[0])  # the lesson's first, if renamed
    mistake = sample["expect_message"] if isinstance(sample["expect_message"], str) else sample["expect_message"][0]
    out = {}
    for name, student in zip(room.students, [
            Student(id="full", lesson=LESSON), Student(**{**sample, "id": "mistake"}),
            Student(id="blank", lesson=LESSON, base="release")], strict=True):
        student = resolve_names(course, student)
        base = release if student.base == "release" else _solution_notebook(release, solution)
        nb = _apply(student, copy.deepcopy(base))
        typed = {} if student.base == "release" else {
            c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}
        out[name] = (typed, expected_points(course, student), mistake if student.patches else "")
    return out


# ---------------------------------------------------------------------------------------------- the browser
class Student:
    """One student's browser: logs in, works in JupyterLab's Assignment List and the lesson notebook."""

    def __init__(self, room: Classroom, browser, name: str):
        self.room, self.name, self.account = room, name, f"{room.prefix}-{name}"
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.set_default_timeout(STEP)
        self.outside: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()

    def _route(self, route):
        if route.request.url.startswith(self.room.url + "/") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def shot(self, what: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(OUT / f"{self.name}-{what}.png"))

    def login(self) -> None:
        """Submit the login form; the hub then spawns the server (waited for in :meth:`lab`)."""
        self.page.goto(f"{self.room.url}/hub/login")
        self.page.fill("input[name=username]", self.account)
        self.page.fill("input[name=password]", self.room.password)
        self.page.click("input[type=submit], button[type=submit]")

    def lab(self) -> None:
        self.page.wait_for_url(f"**/user/{self.account}/lab**", timeout=STEP)
        self.page.wait_for_function("window.jupyterapp && window.jupyterapp.started", timeout=STEP)
        self.page.evaluate("window.jupyterapp.started")

    def assignments(self) -> None:
        """Nbgrader → Assignment List (the only item: no formgrader, no Create Assignment for a student)."""
        self.page.click(".lm-MenuBar-itemLabel:text-is('Nbgrader')")
        items = [t.strip() for t in self.page.locator(".lm-Menu-itemLabel").all_inner_texts() if t.strip()]
        assert items == ["Assignment List"], f"a student's Nbgrader menu offers {items}"
        self.page.click(".lm-Menu-itemLabel:text-is('Assignment List')")
        self.page.wait_for_selector("#released_assignments_list, #fetched_assignments_list")

    def refresh(self) -> None:
        self.page.click("#refresh_assignments_list")
        self.page.wait_for_selector("#submitted_assignments_list_loading", state="hidden")

    def fetch(self) -> None:
        self.page.click(f"#released_assignments_list .list_item:has-text('{LESSON}') button:text-is('Fetch')")
        self.page.wait_for_selector(f"#fetched_assignments_list .list_item:has-text('{LESSON}')")

    def open_lesson(self) -> None:
        """Open the lesson from the Assignment List (expand the assignment, click its notebook)."""
        self.page.click(f"#fetched_assignments_list a.assignment-notebooks-link:has-text('{LESSON}')")
        self.page.click(f"#fetched_assignments_list .nested_list_item a:text-is('{LESSON}')")
        self.page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                       return w && w.context && w.context.path.endsWith('.ipynb') && w.context.isReady; }""")
        self.page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.ready; }")

    def notebook_sources(self) -> list[str]:
        return self.page.evaluate(
            "() => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells)"
            ".map(c => c.sharedModel.getSource())")

    def type_answers(self, answers: dict[str, str]) -> None:
        """Type each answer into its answer cell (found by its nbgrader grade id) with the keyboard: the cell is
        put in edit mode, its text selected (Ctrl+A) and replaced by the typed text; the notebook must then hold
        exactly that text."""
        index = self.page.evaluate(
            """() => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells)
                     .map(c => (c.getMetadata('nbgrader') || {}).grade_id || null)""")
        for cell_id, source in answers.items():
            i = index.index(cell_id)
            self.page.evaluate(
                """async (i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                     nb.mode = 'command'; nb.activeCellIndex = i; await nb.scrollToItem(i, 'center');
                     nb.mode = 'edit'; nb.activeCell.editor.focus(); }""", i)
            self.page.wait_for_function(
                "(i) => { const nb = window.jupyterapp.shell.currentWidget.content;"
                " return nb.activeCellIndex === i && nb.activeCell.editor.hasFocus(); }", arg=i)
            self.page.keyboard.press("Control+a")
            self.page.keyboard.insert_text(source)
            typed = self.page.evaluate(
                "(i) => window.jupyterapp.shell.currentWidget.content.model.cells.get(i).sharedModel.getSource()", i)
            assert typed == source, f"{self.name}: cell {cell_id} holds {typed!r} after typing {source!r}"
        self.page.keyboard.press("Escape")

    def run_all(self) -> list[str]:
        """Run all cells (as Run → Run All Cells does) and save; return the self-check lines shown."""
        self.page.evaluate(
            """async () => { const app = window.jupyterapp;
                 await Promise.race([app.commands.execute('notebook:run-all-cells'),
                   new Promise((_, no) => setTimeout(() => no(new Error('run all: over 240 s')), 240000))]);
                 await app.commands.execute('docmanager:save'); }""")
        self.page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        return self.page.evaluate(
            """() => { const lines = [];
                 for (const cell of window.jupyterapp.shell.currentWidget.content.model.cells) {
                   if (cell.type !== 'code') continue;
                   for (let i = 0; i < cell.outputs.length; i++) {
                     const text = (cell.outputs.get(i).data || {})['text/plain'];
                     if (typeof text === 'string' && /^[✓✗] /.test(text)) lines.push(text); } }
                 return lines; }""")

    def submit(self) -> None:
        self.page.evaluate("() => window.jupyterapp.shell.activateById(window.jupyterapp.shell.widgets('main')"
                           ".find(w => w.title.label === 'Assignments')?.id)")
        self.page.click(f"#fetched_assignments_list .list_item:has-text('{LESSON}') button:text-is('Submit')")
        self.page.wait_for_selector(f"#submitted_assignments_list .list_item:has-text('{LESSON}')")

    def submit_again(self) -> None:
        items = "#submitted_assignments_list .list_item"
        before = self.page.locator(items).count()
        self.submit()
        self.page.wait_for_function(f"() => document.querySelectorAll({items!r}).length > {before}")

    def fetch_feedback(self, timeout: float = 240) -> None:
        """Press Fetch Feedback until the grading service has released it (nobody else acts)."""
        link = self.page.locator("#submitted_assignments_list a:has-text('view feedback')").first
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            self.page.click(f"#submitted_assignments_list .list_item:has-text('{LESSON}') "
                            "button:text-is('Fetch Feedback')")
            with contextlib.suppress(Exception):
                link.wait_for(timeout=5000)
                return
            assert time.monotonic() < deadline, f"{self.name}: no feedback released within {timeout:.0f} s"

    def feedback_pages(self) -> list[str]:
        """The text of every feedback page fetched into ~/LESSON/feedback (one per graded submission)."""
        return self.page.evaluate(
            """async () => { const fb = window.jupyterapp.serviceManager.contents, out = [];
                 const dir = await fb.get('LESSON/feedback', {content: true}).catch(() => null);
                 for (const stamp of (dir ? dir.content : [])) {
                   for (const f of (await fb.get(stamp.path, {content: true})).content) {
                     if (f.name.endsWith('.html')) out.push((await fb.get(f.path, {content: true})).content); } }
                 return out; }""".replace("LESSON", LESSON))

    def feedback(self) -> str:
        """Fetch the feedback in the Assignment List, open it in the browser; return the page's text."""
        self.fetch_feedback()
        link = self.page.locator("#submitted_assignments_list a:has-text('view feedback')").first
        link.click()  # the file browser goes to the feedback folder
        html = self.page.evaluate(
            """async () => { const app = window.jupyterapp, fb = app.serviceManager.contents;
                 const start = Date.now();
                 while (Date.now() - start < 60000) {
                   const dir = await fb.get('LESSON/feedback', {content: true}).catch(() => null);
                   for (const stamp of (dir ? dir.content : [])) {
                     const files = (await fb.get(stamp.path, {content: true})).content;
                     const page = files.find(f => f.name.endsWith('.html'));
                     if (page) return page.path; }
                   await new Promise(r => setTimeout(r, 500)); }
                 return null; }""".replace("LESSON", LESSON))
        assert html, f"{self.name}: no feedback page in ~/{LESSON}/feedback after Fetch Feedback"
        self.page.goto(f"{self.room.url}/user/{self.account}/files/{html}")
        self.page.wait_for_selector("text=Score")
        return self.page.inner_text("body")

    def close(self) -> None:
        self.context.close()


# ------------------------------------------------------------------------------------------------------ tests
def test_class_term_in_the_browser(room, browser):
    started = time.monotonic()
    answers = _answers(room)
    students: dict[str, Student] = {}
    table = []
    try:
        for name in room.students:
            students[name] = Student(room, browser, name)
        for s in students.values():  # log all in first: the hub spawns the three servers side by side
            s.login()
        self_checks = {}
        for name, s in students.items():
            s.lab()
            s.assignments()
            s.fetch()
            s.open_lesson()
            sources = "\n".join(s.notebook_sources())
            for secret in ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION", "flowcourse_instructor", "flowcourse_lessons"):
                assert secret not in sources, f"{name}'s lesson shows {secret!r}"
            s.type_answers(answers[name][0])
            self_checks[name] = s.run_all()
            s.shot("lesson")
            s.submit()
            s.shot("submitted")
        assert self_checks["alice"] and all(line.startswith("✓") for line in self_checks["alice"]), self_checks["alice"]
        assert any(line.startswith("✗") for line in self_checks["bob"]), "bob's self-checks all passed"

        # nobody acts: the hub's grading service grades each submission as it arrives and releases its feedback
        texts = {name: s.feedback() for name, s in students.items()}
        from nbgrader.api import Gradebook

        from flowcourse_instructor.grading.preprocessors import grading_record

        with Gradebook(f"sqlite:///{room.course / 'gradebook.db'}") as gb:
            scores = {name: gb.find_submission(LESSON, f"{room.prefix}-{name}").score for name in room.students}
        auto_max = sum(answers["alice"][1].values())  # every test cell at full points; the rest is written answers
        for account in room.student_accounts:
            record = grading_record(nbformat.read(room.course / "autograded" / account / LESSON / NOTEBOOK, 4))
            assert record["kernel_env"] == "student", record  # grading kernels: no key installed
            assert record["sandbox"] in ("root", "userns"), record  # ... and sandboxed

        for name, s in students.items():
            text = texts[name]
            s.shot("feedback")
            shown = re.search(r"Score: ([\d.]+) / ([\d.]+)", text)
            expected = sum(answers[name][1].values())
            mistake = answers[name][2]
            table.append((name, scores[name], auto_max, expected, shown and float(shown.group(1)), mistake,
                          bool(mistake) and mistake in text))
            assert shown, f"{name}'s feedback page shows no score"
            assert abs(float(shown.group(1)) - scores[name]) < 1e-6, (name, shown.group(0), scores[name])
            assert abs(scores[name] - expected) < 5e-4, f"{name}: {scores[name]}, expected {expected}"
            if mistake:
                assert mistake in text, f"{name}'s feedback does not name {mistake!r}"
                s.page.get_by_text(mistake).first.scroll_into_view_if_needed()
                s.shot("feedback-mistake")
            for other in room.student_accounts:
                if other != s.account:
                    assert other not in text, f"{name}'s feedback mentions {other}"
        # alice hands in three more times within the hour: the fourth is refused, with the time to wait
        alice = students["alice"]
        alice.page.goto(f"{room.url}/user/{alice.account}/lab")  # back from her feedback page
        alice.lab()
        alice.assignments()
        for _ in range(3):
            alice.submit_again()
        alice.shot("submitted-four-times")
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            alice.fetch_feedback()
            pages = alice.feedback_pages()
            if len(pages) >= 4:
                break
            time.sleep(2)
        refused = [p for p in pages if "not graded" in p]
        assert len(pages) == 4 and len(refused) == 1, [p[:200] for p in pages]
        assert re.search(r"next submission can be graded from \d\d:\d\d UTC \(in \d+ min", refused[0]), refused[0]
        for s in students.values():
            outside = [u for u in s.outside if not u.startswith(KNOWN_OUTSIDE)]
            assert not outside, f"{s.name}'s browser tried to leave 127.0.0.1: {outside[:3]}"
    finally:
        for s in students.values():
            s.close()
        _print_table(table, time.monotonic() - started)

    assert [r[1] for r in table] == sorted((r[1] for r in table), reverse=True)
    assert table[0][1] == table[0][2] and table[2][1] == 0

    # isolation, as each student's Unix account
    exchange = room.exchange / "flowcourse"
    for me in room.student_accounts:
        others = [a for a in room.student_accounts if a != me]
        private = [room.course / "gradebook.db", room.course / "solutions" / LESSON / "key.py",
                   room.course / "solutions" / LESSON / "checks.py", room.course / "solutions" / LESSON / NOTEBOOK,
                   exchange / "inbound", exchange / "feedback"]
        for other in others:
            home = room.home(other)
            private += [home, home / LESSON / NOTEBOOK, home / ".local" / "share" / "jupyter" / "nbgrader_cache",
                        room.course / "submitted" / other / LESSON / NOTEBOOK,
                        room.course / "feedback" / other / LESSON / f"{LESSON}.html"]
        public = [room.home(me) / LESSON / NOTEBOOK, exchange / "outbound" / LESSON / NOTEBOOK]
        assert_isolated(me, private, public)
        entry = pwd.getpwnam(me)
        imports = subprocess.run([str(room.env / "bin" / "python"), "-c", "import flowcourse_instructor"],
                                 user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], cwd=entry.pw_dir,
                                 env={"HOME": entry.pw_dir, "PATH": "/usr/bin:/bin"}, capture_output=True)
        assert imports.returncode != 0, f"{me} can import the grader (and with it the key) in the student env"
    repo_key = REPO / "solutions" / LESSON / "key.py"
    if readable_by(room.student_accounts[0], [repo_key]):
        print(f"WARNING: this checkout's answer key {repo_key} is readable by every account on this machine; "
              "keep the repository out of students' reach (chmod 700 its folder) on a class server")


def _print_table(table, seconds: float) -> None:
    lines = [f"{'student':<8} {'auto score':>12} {'expected':>9} {'shown':>6}  {'mistake named':<22} feedback seen"]
    for name, score, max_score, expected, shown, mistake, named in table:
        named_col = (mistake + (" ✓" if named else " ✗")) if mistake else "-"
        seen = shown is not None
        lines.append(f"{name:<8} {score:>5g} / {max_score:<4g} {expected:>9g} {shown if seen else '-':>6}  "
                     f"{named_col:<22} {'yes' if seen else 'no'}")
    lines.append("(written answers are left to a human grader: the feedback page's total is out of the auto score "
                 "plus their points)")
    lines.append(f"class demo: {seconds:.0f} s in the browser and grader; screenshots in {OUT}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))


# --------------------------------------------------------------------------------- the check can fail (proof)
@pytest.fixture
def two_accounts():
    if os.geteuid() != 0:
        _unavailable("the isolation check needs root (it creates two local Unix accounts)")
    names = [f"fciso{os.getpid() % 10000}{x}" for x in "ab"]
    created = []
    try:
        for name in names:
            subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", name], check=True,
                           capture_output=True)
            created.append(name)
            Path(pwd.getpwnam(name).pw_dir).chmod(0o700)
        yield names
    finally:
        for name in created:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        assert not any(_exists(n) for n in names), "throwaway accounts left behind"


def test_isolation_check_fails_on_a_world_readable_home(two_accounts):
    a, b = two_accounts
    home = Path(pwd.getpwnam(a).pw_dir)
    work = home / "work.ipynb"
    work.write_text("{}")
    shutil.chown(work, a, a)
    work.chmod(0o644)  # as a notebook a student writes: readable inside a private home
    assert_isolated(b, [home, work], [])  # the home is mode 700: b reads nothing
    assert_isolated(a, [], [home, work])  # ... while a reads their own
    home.chmod(0o755)  # the variant: one home made world-readable
    with pytest.raises(AssertionError, match="can read what is not theirs"):
        assert_isolated(b, [home, work], [])


def test_class_refuses_a_taken_port(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        room = Classroom(root=tmp_path / "class", env=ENV, proxy=PROXY, port=port)
        if os.geteuid() != 0:
            with pytest.raises(ClassError, match="run as root"):
                room.preflight()
            return
        if not (ENV / "bin" / "jupyterhub-singleuser").is_file() or not PROXY.is_file():
            pytest.skip("no class environment: make class-env class-proxy")
        with pytest.raises(ClassError, match=f"port {port}.* is taken"):
            room.preflight()
