"""Grade on submit: a service that grades each submission as it reaches nbgrader's exchange, and releases its feedback.

``flowcourse serve`` (a JupyterHub-managed service of the class, or alone beside any nbgrader exchange) watches
the exchange's ``inbound/`` folder. Each new submission is written in a ledger, checked against the lesson's
submission limit, graded on the engine (:mod:`.engine`: Dask workers, the sandbox, the judge), recorded in the
gradebook by this process alone, and its feedback released to the exchange with nbgrader's own
``release_feedback`` — the student's *Fetch Feedback* in JupyterLab shows it, nobody else acts.

Per lesson, in the course's ``nbgrader_config.py`` (:class:`GradingService` traits)::

    c.GradingService.feedback = "full"          # full | score (the score only) | after_due (full, once due)
    c.GradingService.limit = 3                  # submissions graded per student and lesson within the window
    c.GradingService.window_minutes = 60
    c.GradingService.lessons = {"05-planar-radial": {"feedback": "after_due", "limit": 5}}

Due dates and late penalties are nbgrader's: the assignment's ``duedate`` in the gradebook and
``c.AssignLatePenalties.plugin_class`` (nbgrader's late-submission plugin) apply when a grade is recorded.

The ledger (``grading-service.sqlite`` in the course root) makes restarts safe: a submission is inserted once
(its exchange folder name is the key), moves ``new → queued → graded → released`` (or ``refused``), and on
start every ``queued`` one is queued again — none is lost, and a graded one is never graded again. The limit
counts the submissions this service accepted in the window, by the time it *saw* them: the exchange's own
timestamps are written by the student's process and could be forged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Dict, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from flowcourse_instructor.grading.engine import (
    Graded,
    GradingEngine,
    Submission,
    read_submission,
    record,
    replace_folder,
)
from flowcourse_instructor.grading.policy import GradingPolicy
from flowcourse_instructor.grading.sampleclass import lessons

__all__ = ["GradingService", "LessonRules", "Ledger", "serve", "PID_FILE"]

log = logging.getLogger("flowcourse.service")
FEEDBACK_MODES = ("full", "score", "after_due")


@dataclass(frozen=True)
class LessonRules:
    feedback: str = "full"
    limit: int = 3
    window_minutes: int = 60


class Ledger:
    """Every submission the service has seen, with its state (SQLite; one writer: the service)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.db = sqlite3.connect(str(path), timeout=60, isolation_level=None)
        self.db.execute("""CREATE TABLE IF NOT EXISTS submissions (
            id TEXT PRIMARY KEY, student TEXT, lesson TEXT, timestamp TEXT, seen REAL, state TEXT,
            score REAL, max_score REAL, graded_at REAL, released_at REAL, note TEXT DEFAULT '',
            gradings INTEGER DEFAULT 0)""")

    def add(self, id: str, student: str, lesson: str, timestamp: str, seen: float) -> bool:
        cursor = self.db.execute("INSERT OR IGNORE INTO submissions (id, student, lesson, timestamp, seen, state) "
                                 "VALUES (?, ?, ?, ?, ?, 'new')", (id, student, lesson, timestamp, seen))
        return cursor.rowcount == 1

    def set(self, id: str, **values: Any) -> None:
        names = ", ".join(f"{k} = ?" for k in values)
        self.db.execute(f"UPDATE submissions SET {names} WHERE id = ?", (*values.values(), id))

    def rows(self, where: str = "1", *args: Any) -> list[dict[str, Any]]:
        cursor = self.db.execute(f"SELECT * FROM submissions WHERE {where} ORDER BY seen, timestamp, id", args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def accepted_since(self, student: str, lesson: str, since: float) -> list[float]:
        return [r[0] for r in self.db.execute(
            "SELECT seen FROM submissions WHERE student = ? AND lesson = ? AND seen >= ? AND state IN "
            "('queued', 'graded', 'released') ORDER BY seen", (student, lesson, since))]

    def close(self) -> None:
        self.db.close()


class GradingService(LoggingConfigurable):
    """The grade-on-submit loop (see the module docstring); configured from the course's ``nbgrader_config.py``."""

    feedback = Unicode("full", help="full | score | after_due: what a student gets back, and when").tag(config=True)
    limit = Integer(3, help="submissions graded per student and lesson within the window (0: no limit)").tag(
        config=True)
    window_minutes = Integer(60).tag(config=True)
    lessons = Dict(help="per-lesson overrides: {lesson: {feedback, limit, window_minutes}}").tag(config=True)
    poll_seconds = Float(1.0, help="how often the exchange's inbound folder is looked at").tag(config=True)
    workers = Integer(2, help="local Dask worker processes (ignored with a scheduler)").tag(config=True)
    scheduler = Unicode("", help="a Dask scheduler address: grade on that cluster").tag(config=True)
    report_seconds = Float(10.0, help="refresh a lesson's report page (reports/) at most this often").tag(config=True)

    def __init__(self, root: str | os.PathLike, *, policy: GradingPolicy | None = None, **kw: Any) -> None:
        from flowcourse_instructor.grading.pipeline import _api, load_config

        config = load_config(root)
        super().__init__(config=config, **kw)
        self.root = Path(root).resolve()
        self.api = _api(self.root)
        self.course_id = self.api.coursedir.course_id
        exchange = getattr(config.Exchange, "root", "") if "Exchange" in config else ""
        self.exchange = Path(exchange or "/srv/nbgrader/exchange") / self.course_id
        self.db_url = self.api.coursedir.db_url
        self.course_config = config
        self.ledger = Ledger(self.root / "grading-service.sqlite")
        self.policy = policy or GradingPolicy.for_course(self.root)
        self.engine: GradingEngine | None = None
        self.in_flight: dict[Any, tuple[str, Submission]] = {}
        self._known: set[str] = set()
        self._stale_reports: set[str] = set()
        self._reported_at = 0.0

    # ------------------------------------------------------------------------------------ rules
    def rules(self, lesson: str) -> LessonRules:
        own = dict(self.lessons.get(lesson, {}))
        rules = LessonRules(feedback=own.get("feedback", self.feedback), limit=int(own.get("limit", self.limit)),
                            window_minutes=int(own.get("window_minutes", self.window_minutes)))
        if rules.feedback not in FEEDBACK_MODES:
            raise ValueError(f"GradingService feedback for {lesson} must be one of {FEEDBACK_MODES}")
        return rules

    def _due(self, lesson: str) -> dt.datetime | None:
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url) as gb:
            return gb.find_assignment(lesson).duedate

    # ------------------------------------------------------------------------------------ the loop
    def start(self) -> None:
        self.engine = GradingEngine(self.policy, workers=self.workers, scheduler=self.scheduler or None)
        for row in self.ledger.rows("state = 'queued'"):  # queued before a restart: not graded yet, queue again
            self.ledger.set(row["id"], state="new")
        self._known = {row["id"] for row in self.ledger.rows()}

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.ledger.close()

    def scan(self) -> int:
        """Add every submission in the exchange's inbound folder to the ledger; returns how many were new."""
        inbound = self.exchange / "inbound"
        known = set(lessons(self.root))
        added = 0
        for folder in sorted(inbound.glob("*+*+*")) if inbound.is_dir() else []:
            if folder.name in self._known:
                continue
            student, lesson, timestamp = folder.name.rsplit("+", 3)[:3]
            if lesson not in known or not folder.is_dir():
                continue
            secret = folder / "submission_secret.txt"
            if not secret.is_file() or not secret.stat().st_size:
                continue  # nbgrader's submit is still copying: it writes the secret last
            added += self.ledger.add(folder.name, student, lesson, timestamp, time.time())
            self._known.add(folder.name)
        return added

    def dispatch(self) -> int:
        """Queue new submissions (oldest first; one at a time per student and lesson), refusing those over the limit."""
        busy = {(s.student, s.lesson) for _, s in self.in_flight.values()}
        queued = 0
        for row in self.ledger.rows("state = 'new'"):
            pair = (row["student"], row["lesson"])
            if pair in busy:
                continue
            rules = self.rules(row["lesson"])
            if rules.limit:
                window = rules.window_minutes * 60
                accepted = self.ledger.accepted_since(row["student"], row["lesson"], row["seen"] - window)
                if len(accepted) >= rules.limit:
                    self._refuse(row, rules, accepted[0] + window)
                    continue
            folder = self.exchange / "inbound" / row["id"]
            submission = read_submission(folder, row["lesson"], row["student"], id=row["id"])
            self.ledger.set(row["id"], state="queued")
            held = rules.feedback == "after_due"
            self.in_flight[self.engine.submit(submission, feedback=not held)] = (row["id"], submission)
            busy.add(pair)
            queued += 1
        return queued

    def collect(self, wait: float = 0.0) -> int:
        """Record every finished task (gradebook, feedback); returns how many were recorded."""
        from distributed import wait as dask_wait

        if not self.in_flight:
            return 0
        with contextlib.suppress(Exception):
            dask_wait(list(self.in_flight), timeout=wait, return_when="FIRST_COMPLETED")
        done = [f for f in self.in_flight if f.done()]
        for future in done:
            id, submission = self.in_flight.pop(future)
            try:
                graded = future.result()
            except Exception as exc:  # noqa: BLE001 - workers kept dying on it: a grade with the reason
                graded = Graded(submission.lesson, submission.student, id,
                                error=f"the grading task failed: {type(exc).__name__}: {exc}")
            self._record(id, submission, graded)
        return len(done)

    def release_due(self) -> int:
        """Release held feedback (``after_due``) of lessons whose due date has passed."""
        released = 0
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        dues: dict[str, dt.datetime | None] = {}  # one gradebook read per lesson, not per held submission
        for row in self.ledger.rows("state = 'graded'"):
            if row["lesson"] not in dues:
                dues[row["lesson"]] = self._due(row["lesson"])
            due = dues[row["lesson"]]
            if due is not None and due <= now:
                self._release(row["id"], row["student"], row["lesson"], "full")
                released += 1
        return released

    def step(self, wait: float = 0.0) -> int:
        """One turn of the loop: notice, queue, record, release. Returns how many things happened."""
        done = self.scan() + self.dispatch() + self.collect(wait) + self.release_due()
        if self._stale_reports and (not self.in_flight or time.monotonic() - self._reported_at > self.report_seconds):
            self._refresh_reports()
        return done

    def run(self, *, until_idle: bool = False, timeout: float | None = None) -> None:
        """Serve until stopped (or, with ``until_idle``, until nothing is new, queued or in flight)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.start()
        try:
            while deadline is None or time.monotonic() < deadline:
                if not self.step(wait=self.poll_seconds) and not self.in_flight:
                    time.sleep(self.poll_seconds)  # idle: look at the exchange again in a moment
                if until_idle and not self.in_flight and not self.ledger.rows("state = 'new'"):
                    return
        finally:
            self.stop()

    # ------------------------------------------------------------------------------------ steps
    def _record(self, id: str, submission: Submission, graded: Graded) -> None:
        from nbgrader.api import Gradebook

        record(self.root, graded, submission, self.db_url, self.course_config)
        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(submission.lesson, submission.student)
            score, max_score = float(sub.score), float(sub.max_score)
        row = self.ledger.rows("id = ?", id)[0]
        self.ledger.set(id, state="graded", score=score, max_score=max_score, graded_at=time.time(),
                        gradings=row["gradings"] + 1, note=graded.error[:500])
        log.info("graded %s: %.2f / %.2f", id, score, max_score)
        self._stale_reports.add(submission.lesson)
        rules = self.rules(submission.lesson)
        due = self._due(submission.lesson)
        if rules.feedback != "after_due" or (due is not None and due <= dt.datetime.now(dt.UTC).replace(tzinfo=None)):
            self._release(id, submission.student, submission.lesson, rules.feedback, graded.feedback)

    def _release(self, id: str, student: str, lesson: str, mode: str, pages: dict[str, bytes] | None = None) -> None:
        """Feedback for the student's latest graded submission into ``feedback/`` (the pages the worker made, else
        nbgrader's ``generate_feedback`` here), then nbgrader's ``release_feedback`` to the exchange."""
        if pages:
            replace_folder(self.root / "feedback" / student / lesson, pages)
        else:
            result = self.api.generate_feedback(lesson, student, force=True)
            if not result["success"]:  # e.g. no notebook of the lesson's name was handed in: say so, once
                notebooks = sorted((self.root / "solutions" / lesson).glob("*.ipynb"))
                expected = ", ".join(f"{p.stem}.ipynb" for p in notebooks)
                self._notice(id, lesson, f"{lesson}: no feedback", f"This submission holds no notebook named "
                             f"{expected}; rename your notebook to that name and submit again.")
                self.ledger.set(id, state="released", released_at=time.time(), note=str(result.get("error"))[:500])
                log.warning("no feedback for %s (told the student): %s", id, str(result.get("error"))[-300:])
                return
        if mode == "score":
            self._score_only(student, lesson)
        result = self.api.release_feedback(lesson, student)
        if result["success"]:
            self.ledger.set(id, state="released", released_at=time.time())
        else:
            log.error("releasing feedback for %s failed: %s", id, result.get("error"))

    def _score_only(self, student: str, lesson: str) -> None:
        from nbgrader.api import Gradebook

        with Gradebook(self.db_url) as gb:
            for nb in gb.find_submission(lesson, student).notebooks:
                page = self.root / "feedback" / student / lesson / f"{nb.name}.html"
                if page.exists():
                    page.write_text(_page(f"{lesson}: your score", f"<p>Your notebook <b>{html.escape(nb.name)}</b> "
                                          f"scored <b>{nb.score:g} / {nb.max_score:g}</b>.</p><p>Detailed feedback "
                                          "for this lesson comes after its due date.</p>"))

    def _refuse(self, row: dict[str, Any], rules: LessonRules, next_allowed: float) -> None:
        when = dt.datetime.fromtimestamp(next_allowed, dt.UTC)
        wait = max(0, int(next_allowed - time.time()))
        note = (f"not graded: {rules.limit} submissions of {row['lesson']} were already graded in the last "
                f"{rules.window_minutes} minutes. Your next submission can be graded from "
                f"{when:%H:%M} UTC (in {wait // 60} min {wait % 60} s); until then your latest graded one counts.")
        self.ledger.set(row["id"], state="refused", note=note)
        self._notice(row["id"], row["lesson"], f"{row['lesson']}: submission not graded", note)
        log.info("refused %s", row["id"])

    def _notice(self, id: str, lesson: str, title: str, text: str) -> None:
        """A page in place of feedback for one submission, under the name its Fetch Feedback looks for (nbgrader's
        hash of the submission's secret and each of its notebooks' names)."""
        from nbgrader.utils import notebook_hash

        folder = self.exchange / "inbound" / id
        secret_file = folder / "submission_secret.txt"
        if not secret_file.exists():
            return
        out = self.exchange / "feedback"
        out.mkdir(exist_ok=True)
        for nb in folder.glob("*.ipynb"):
            checksum = notebook_hash(secret=secret_file.read_text(), notebook_id=nb.stem)
            tmp = out / f"{checksum}-tmp.html"
            tmp.write_text(_page(title, f"<p>{html.escape(text)}</p>"))
            tmp.chmod(0o644)
            tmp.replace(out / f"{checksum}.html")

    def _refresh_reports(self) -> None:
        """Rewrite the report page of each lesson graded since the last refresh (``flowcourse report``)."""
        from flowcourse_instructor.report import write_report

        for lesson in sorted(self._stale_reports):
            try:
                write_report(self.root, lesson)
            except Exception as exc:  # noqa: BLE001 - a report is a view; it must never stop grading
                log.error("report for %s failed: %s", lesson, exc)
        self._stale_reports.clear()
        self._reported_at = time.monotonic()


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
            f"<title>{html.escape(title)}</title></head><body style='font-family:sans-serif;max-width:40em;"
            f"margin:2em auto;padding:0 1em'><h1>{html.escape(title)}</h1>{body}</body></html>")


PID_FILE = "grading-service.pid"


def serve(root: str | os.PathLike, *, until_idle: bool = False, timeout: float | None = None) -> None:
    """``flowcourse serve``: run the grading service of the course at ``root`` (``SIGTERM`` stops it cleanly).

    Writes its pid to ``grading-service.pid`` in the course root while it runs (``make class-stop`` reads it).
    """
    import signal
    import sys

    service = GradingService(root)
    pid_file = service.root / PID_FILE
    pid_file.write_text(str(os.getpid()))
    # JupyterHub stops a managed service with SIGTERM: end the loop so the Dask workers are closed with it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("grading service for %s, exchange %s", service.root, service.exchange)
    try:
        service.run(until_idle=until_idle, timeout=timeout)
    finally:
        with contextlib.suppress(OSError):
            if pid_file.read_text() == str(os.getpid()):
                pid_file.unlink()
