"""Grade on submit, on the fixture course, through nbgrader's own exchange (submit and fetch_feedback as students).

A burst is graded exactly once per submission and every student fetches their own feedback; the limit refuses
the fourth submission within the hour and says when the next is allowed; the service killed in the middle of a
burst and started again grades every submission once and loses none; a Dask worker killed mid-task does not lose
its submission.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowcourse_instructor.grading import pipeline
from flowcourse_instructor.grading.sampleclass import Student, materialize

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"
LESSON = "00-toy"
COURSE = "toy"
pytestmark = pytest.mark.slow


def _course(tmp: Path, settings: str = "") -> Path:
    root = pipeline.prepare_workspace(FIXTURE, tmp / "course")
    pipeline.release(root)
    exchange = tmp / "exchange"
    for sub in ("inbound", "outbound", "feedback"):
        (exchange / COURSE / sub).mkdir(parents=True, exist_ok=True)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc = get_config()  # noqa: F821\nc.Exchange.root = {str(exchange)!r}\n"
                "c.GradingService.poll_seconds = 0.2\nc.GradingService.workers = 2\n" + settings)
    result = pipeline._api(root).release_assignment(LESSON)  # nbgrader release_assignment: into outbound/
    assert result["success"], result
    return root


def _exchange_config(root: Path, student: str, home: Path):
    from traitlets.config import Config

    config = Config()
    config.Exchange.root = str(root.parent / "exchange")
    config.CourseDirectory.course_id = COURSE
    config.CourseDirectory.assignment_id = LESSON
    config.CourseDirectory.student_id = student
    config.CourseDirectory.root = str(home)
    config.Exchange.assignment_dir = str(home)
    config.Exchange.path_includes_course = False
    config.Exchange.cache = str(home / ".nbgrader_cache")  # each student's own, as in their own home
    return config


def submit(root: Path, student: str, patches: dict[str, str] | None = None, filename: str | None = None) -> Path:
    """The student's notebook (the solution, or with ``patches``) handed in with nbgrader's own ExchangeSubmit."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeSubmit

    home = root.parent / "homes" / student
    scratch = root.parent / "scratch" / student
    written = materialize([Student(id=student, lesson=LESSON, patches=patches or {}, filename=filename)],
                          _root_view(root, scratch))
    (home / LESSON).mkdir(parents=True, exist_ok=True)
    for path in written[0].parent.iterdir():
        (home / LESSON / path.name).write_bytes(path.read_bytes())
    config = _exchange_config(root, student, home)
    before = set((root.parent / "exchange" / COURSE / "inbound").iterdir())
    ExchangeSubmit(coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config),
                   config=config).start()
    time.sleep(0.01)  # distinct timestamps
    (new,) = set((root.parent / "exchange" / COURSE / "inbound").iterdir()) - before
    return new


def _root_view(root: Path, scratch: Path) -> Path:
    """A course root that materialize can write a submission into without touching the real one."""
    scratch.mkdir(parents=True, exist_ok=True)
    for name in ("course", "solutions"):
        if not (scratch / name).exists():
            (scratch / name).symlink_to(root / name)
    return scratch


def fetch_feedback(root: Path, student: str) -> list[Path]:
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeFetchFeedback

    home = root.parent / "homes" / student
    config = _exchange_config(root, student, home)
    ExchangeFetchFeedback(coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config),
                          config=config).start()
    return sorted((home / LESSON / "feedback").rglob("*.html"))


def ledger(root: Path) -> list[dict]:
    with sqlite3.connect(root / "grading-service.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM submissions ORDER BY seen, id")]


def serve(root: Path, timeout: float = 300) -> None:
    from flowcourse_instructor.grading.service import GradingService

    GradingService(root).run(until_idle=True, timeout=timeout)


@pytest.fixture(scope="module")
def burst(tmp_path_factory):
    root = _course(tmp_path_factory.mktemp("burst"))
    wrong = {"gauss_answer": "def gauss_log_prob(z):\n    return -0.5 * z.pow(2).sum(1) - 0.5 * math.log(2 * math.pi)"}
    ids = [submit(root, f"s{i}", wrong if i % 2 else None).name for i in range(6)]
    ids.append(submit(root, "crash", {"gauss_answer": "import os\nos._exit(3)"}).name)  # kills its kernel
    ids.append(submit(root, "renamed", filename="toy (1).ipynb").name)  # nbgrader cannot grade it at all
    start = time.monotonic()
    serve(root)
    return root, ids, time.monotonic() - start


def test_a_burst_is_graded_exactly_once_per_submission(burst):
    root, ids, _ = burst
    rows = {r["id"]: r for r in ledger(root)}
    assert sorted(rows) == sorted(ids)
    assert all(r["state"] == "released" and r["gradings"] == 1 for r in rows.values()), rows
    scores = {r["student"]: r["score"] for r in rows.values()}
    assert scores["s0"] == scores["s2"] == scores["s4"] > scores["s1"] == scores["s3"] == scores["s5"]
    assert scores["crash"] < scores["s1"]  # the cells after the crash could not run: a grade, not a lost submission


def test_a_renamed_notebook_gets_zero_and_a_page_saying_what_to_do(burst):
    root, _, _ = burst
    assert {r["student"]: r["score"] for r in ledger(root)}["renamed"] == 0
    (page,) = fetch_feedback(root, "renamed")
    assert "no notebook named toy.ipynb" in page.read_text()


def test_a_submission_that_kills_its_kernel_ends_with_a_score_and_a_message(burst):
    root, _, _ = burst
    (page,) = fetch_feedback(root, "crash")
    assert "kernel died" in page.read_text()


def test_each_student_fetches_their_own_feedback_naming_the_mistake(burst):
    root, _, _ = burst
    right = fetch_feedback(root, "s0")
    wrong = fetch_feedback(root, "s1")
    assert len(right) == 1 and len(wrong) == 1
    assert "one normaliser instead of d" in wrong[0].read_text()
    assert "one normaliser instead of d" not in right[0].read_text()


def test_the_gradebook_holds_the_service_grades(burst):
    from nbgrader.api import Gradebook

    root, _, _ = burst
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        graded = {s.student.id: s.score for s in gb.find_assignment(LESSON).submissions}
    assert {r["student"]: r["score"] for r in ledger(root)} == graded


def test_the_class_report_is_refreshed_by_the_service(burst):
    root, _, _ = burst
    page = (root / "reports" / f"{LESSON}.html").read_text()
    assert "one normaliser instead of d" in page  # the ranked mistakes: three students made it


def test_the_fourth_submission_within_the_hour_is_refused_with_the_time_to_wait(tmp_path):
    root = _course(tmp_path, "c.GradingService.limit = 3\nc.GradingService.window_minutes = 60\n")
    ids = [submit(root, "eager").name for _ in range(4)]
    serve(root)
    states = {r["id"]: r for r in ledger(root)}
    assert [states[i]["state"] for i in ids] == ["released"] * 3 + ["refused"]
    note = states[ids[3]]["note"]
    assert "3 submissions" in note and "next submission can be graded from" in note and "min" in note
    pages = fetch_feedback(root, "eager")
    assert len(pages) == 4
    assert sum("not graded" in p.read_text() for p in pages) == 1


def _kernel_processes() -> set[int]:
    """Processes running as a grading kernel's fresh uid (root mode: 1,000,000 + the kernel's pid)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = int((entry / "status").read_text().split("\nUid:")[1].split()[0])
            except (OSError, IndexError, ValueError):
                continue
            if uid >= 1_000_000:
                found.add(int(entry.name))
    return found


def test_a_killed_service_restarts_and_grades_every_submission_once(tmp_path):
    before = _kernel_processes()
    root = _course(tmp_path)
    ids = [submit(root, f"k{i}").name for i in range(6)]
    command = [sys.executable, "-m", "flowcourse_instructor.cli", "--root", str(root), "serve", "--until-idle"]
    service = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if (root / "grading-service.sqlite").exists() and any(r["state"] == "released" for r in ledger(root)):
            break
        time.sleep(0.2)
    os.killpg(service.pid, signal.SIGKILL)  # the service and its Dask workers, mid-burst
    service.wait()
    deadline = time.monotonic() + 20  # its kernels die with their parents (none is left waiting, owned by nobody)
    while _kernel_processes() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _kernel_processes() - before
    done_before = sum(r["state"] == "released" for r in ledger(root))
    assert 0 < done_before < len(ids), "the kill must land in the middle of the burst"
    subprocess.run([*command], check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = ledger(root)
    assert sorted(r["id"] for r in rows) == sorted(ids)
    assert all(r["state"] == "released" and r["gradings"] == 1 for r in rows), rows


def test_a_worker_killed_mid_task_does_not_lose_its_submission(tmp_path):
    from flowcourse_instructor.grading.engine import GradingEngine, read_submission
    from flowcourse_instructor.grading.policy import GradingPolicy

    root = _course(tmp_path)
    slow = {"gauss_answer": "import time\ntime.sleep(8)\ndef gauss_log_prob(z):\n"
                            "    return -0.5 * z.pow(2).sum(1) - z.shape[1] * 0.5 * math.log(2 * math.pi)"}
    folder = submit(root, "patient", slow)
    submission = read_submission(folder, LESSON, "patient", id=folder.name)
    with GradingEngine(GradingPolicy.for_course(root), workers=2) as engine:
        future = engine.submit(submission)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = [w for w, tasks in engine.client.processing().items() if tasks]
            if busy:
                break
            time.sleep(0.1)
        time.sleep(2)  # the kernel is running the notebook
        (pid,) = engine.client.run(os.getpid, workers=busy).values()
        os.kill(pid, signal.SIGKILL)
        graded = future.result(timeout=240)
        alive = set(engine.client.run(os.getpid).values())
    assert pid not in alive  # the worker did die (its nanny started a new one)
    assert graded.ok, graded.error
    assert any(name.endswith(".ipynb") for name in graded.files)


def test_score_only_feedback_and_feedback_held_until_the_due_date(tmp_path):
    import datetime as dt

    from nbgrader.api import Gradebook

    wrong = {"gauss_answer": "def gauss_log_prob(z):\n    return -0.5 * z.pow(2).sum(1) - 0.5 * math.log(2 * math.pi)"}
    root = _course(tmp_path, "c.GradingService.feedback = 'score'\n")
    submit(root, "terse", wrong)
    serve(root)
    (page,) = fetch_feedback(root, "terse")
    text = page.read_text()
    assert "scored" in text and "one normaliser instead of d" not in text

    with open(root / "nbgrader_config.py", "a") as f:
        f.write("c.GradingService.lessons = {'00-toy': {'feedback': 'after_due'}}\n")
    db = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(db) as gb:
        gb.update_or_create_assignment(LESSON, duedate=dt.datetime.now(dt.UTC).replace(tzinfo=None)
                                       + dt.timedelta(days=1))
    submit(root, "patient", wrong)
    serve(root)
    assert [r["state"] for r in ledger(root) if r["student"] == "patient"] == ["graded"]
    assert fetch_feedback(root, "patient") == []  # held: the lesson is not due yet
    with Gradebook(db) as gb:
        gb.update_or_create_assignment(LESSON, duedate=dt.datetime.now(dt.UTC).replace(tzinfo=None)
                                       - dt.timedelta(minutes=1))
    serve(root)
    assert [r["state"] for r in ledger(root) if r["student"] == "patient"] == ["released"]
    (page,) = fetch_feedback(root, "patient")
    assert "one normaliser instead of d" in page.read_text()
