"""Grade on submit: latency to an idle service, a deadline burst, engine scaling, and the workers a MOOC needs.

``python -m benchmarks.service [--size 200] [--lesson 01-change-of-variables] [--scaling-size 40]``

A scratch course with an nbgrader exchange; every submission is handed in with nbgrader's own
``ExchangeSubmit`` (the student id set explicitly, each student's own cache, as ``nbgrader submit`` in their
home), and ``flowcourse serve`` runs as its own process beside it, as on a hub. A submission is done when
its feedback page is in the exchange's ``feedback/`` folder under nbgrader's ``notebook_hash`` of the
submission's secret (what the student's *Fetch Feedback* looks for); the folder is watched every 20 ms.

1. **Latency to an idle service**: the service started and warm (one throw-away submission graded first),
   then one submission at a time, each once the previous one's feedback is out and the service idle again;
   latency = from ``ExchangeSubmit`` returning to the feedback page existing.
2. **Deadline burst**: the synthetic class of ``benchmarks/grading.py`` (every sample-class student of the
   lesson, then ordinary kinds drawn with a fixed seed) handed in as fast as one process can, with the
   submission limit off; time to drain (first submit → last feedback page), p50 and p95 latency. Each
   submission must be graded exactly once (the service's ledger) and each grade must be the student's
   expectation. The same class, materialized into a fresh course's ``submitted/``, then goes through
   ``flowcourse grade`` (``pipeline.grade(workers=2)``) for comparison.
3. **Scaling**: the engine with 1 and with 2 Dask workers on an even stride of the class (``--scaling-size``),
   graded and recorded as ``pipeline.grade`` does; the engine is started and each worker warmed with one
   throw-away task first (that start is shown apart: a running service pays it once), then notebooks per
   minute and their ratio.
4. **On paper**: the workers a 10,000-student deadline burst needs, from the mean task time on a lone worker,
   and the one serial part, the service's own CPU per submission (recording and feedback), which workers
   do not divide.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from benchmarks.grading import _stride, synthetic_class
from benchmarks.timing import load, print_table
from flowcourse_instructor.grading import pipeline
from flowcourse_instructor.grading.sampleclass import Student, load_sample_class, materialize

ROOT = Path(__file__).resolve().parents[1]
COURSE = "flowcourse"  # the course id of the course's nbgrader_config.py (configure's default)
FINAL = ("released", "refused")
STUCK_SECONDS = 15.0  # graded, no feedback, nothing else in the queue for this long: the release failed
WORKERS = 2  # the service's Dask workers (c.GradingService.workers), and flowcourse grade's
MOOC, MOOC_WINDOWS = 10_000, ((15 * 60, "15 min"), (60 * 60, "1 hour"))


# ------------------------------------------------------------------------------------------- pure pieces

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values``, linear between the closest ranks (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def workers_needed(submissions: int, seconds_per_notebook: float, window_seconds: float) -> int:
    """Worker processes that grade ``submissions`` notebooks of ``seconds_per_notebook`` each within the window."""
    return max(1, math.ceil(submissions * seconds_per_notebook / window_seconds))


def feedback_names(folder: str | os.PathLike, notebooks: Sequence[str]) -> list[str]:
    """The exchange's feedback file names of the inbound submission ``folder``, one per lesson notebook handed in.

    nbgrader's ``release_feedback`` names a page ``notebook_hash(secret, notebook_id) + ".html"`` with the secret
    that ``submit`` wrote into the submission (a notebook handed in under another name gets no page).
    """
    from nbgrader.utils import notebook_hash

    folder = Path(folder)
    secret = (folder / "submission_secret.txt").read_text()
    return [f"{notebook_hash(secret=secret, notebook_id=name)}.html" for name in notebooks
            if (folder / f"{name}.ipynb").is_file()]


# ------------------------------------------------------------------------------------------- the course

def course_with_exchange(work: Path, lesson: str) -> tuple[Path, Path]:
    """A fresh course (released) with an exchange beside it and the lesson released into its ``outbound/``."""
    root = pipeline.prepare_workspace(ROOT, work / "course")
    pipeline.release(root)
    exchange = work / "exchange"
    for sub in ("inbound", "outbound", "feedback"):
        (exchange / COURSE / sub).mkdir(parents=True, exist_ok=True)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc = get_config()  # noqa: F821\nc.Exchange.root = {str(exchange)!r}\n"
                f"c.GradingService.workers = {WORKERS}\nc.GradingService.limit = 0\n")
    result = pipeline._api(root).release_assignment(lesson)  # nbgrader release_assignment: into outbound/
    if not result["success"]:
        raise SystemExit(f"release_assignment {lesson} failed: {result.get('error')}")
    return root, exchange


def stage_homes(root: Path, students: list[Student], homes: Path) -> None:
    """Each student's hand-in written into ``homes/<id>/<lesson>/``, as in their own home before ``nbgrader submit``."""
    view = homes.parent / "materialized"  # a course root that materialize can write into without touching the real one
    view.mkdir(parents=True, exist_ok=True)
    for name in ("course", "solutions"):
        if not (view / name).exists():
            (view / name).symlink_to(root / name)
    materialize(students, view)
    for s in students:
        shutil.copytree(view / "submitted" / s.id / s.lesson, homes / s.id / s.lesson)


def hand_in(exchange: Path, lesson: str, student: str, home: Path) -> tuple[str, float, float]:
    """nbgrader's own ExchangeSubmit for ``student``; returns (inbound folder name, time started, time returned)."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeSubmit
    from traitlets.config import Config

    config = Config()
    config.Exchange.root = str(exchange)
    config.CourseDirectory.course_id = COURSE
    config.CourseDirectory.assignment_id = lesson
    config.CourseDirectory.student_id = student
    config.CourseDirectory.root = str(home)
    config.Exchange.assignment_dir = str(home)
    config.Exchange.path_includes_course = False
    config.Exchange.cache = str(home / ".nbgrader_cache")  # each student's own, as in their own home
    started = time.time()
    submit = ExchangeSubmit(coursedir=CourseDirectory(config=config), authenticator=Authenticator(config=config),
                            config=config)
    submit.log.setLevel("ERROR")  # the renamed and unreadable students make it warn
    submit.start()
    return submit.assignment_filename, started, time.time()


class FeedbackWatch(threading.Thread):
    """Notes when each file first appears in the exchange's ``feedback/`` folder (polled every ``every`` s)."""

    def __init__(self, folder: Path, every: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.folder, self.every, self.seen = folder, every, {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = time.time()
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if entry.name not in self.seen and not entry.name.endswith("-tmp.html"):
                        self.seen[entry.name] = now
            self._stop_event.wait(self.every)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def ledger(root: Path, ids: Sequence[str] | None = None) -> dict[str, dict]:
    path = root / "grading-service.sqlite"
    if not path.exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        db.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in db.execute("SELECT * FROM submissions")}
    return rows if ids is None else {k: v for k, v in rows.items() if k in set(ids)}


class Service:
    """``flowcourse serve`` in its own process (its own session), as on a hub; stopped with Ctrl-C."""

    def __init__(self, root: Path, log: Path) -> None:
        self.log = open(log, "w")  # noqa: SIM115 - open for the life of the process
        self.process = subprocess.Popen([sys.executable, "-m", "flowcourse_instructor.cli", "--root", str(root),
                                         "serve"], stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def cpu_seconds(self) -> float:
        """User + system CPU of the service process itself (its Dask workers and kernels are other processes)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGINT)  # KeyboardInterrupt: run() closes the engine
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # our own session: the service and its workers
                self.process.wait()
        self.log.close()


class Submissions:
    """The hand-ins of one run: submit times, their feedback pages, and when each was done."""

    def __init__(self, root: Path, exchange: Path, lesson: str, homes: Path, watch: FeedbackWatch) -> None:
        self.root, self.exchange, self.lesson, self.homes, self.watch = root, exchange, lesson, homes, watch
        self.notebooks = [p.stem for p in sorted((root / "solutions" / lesson).glob("*.ipynb"))]
        self.submitted: dict[str, tuple[str, float, float]] = {}  # folder name -> (student, started, returned)
        self.pages: dict[str, list[str]] = {}
        self.cpu_at_last_done = 0.0

    def hand_in(self, student: str) -> str:
        name, started, returned = hand_in(self.exchange, self.lesson, student, self.homes / student)
        self.submitted[name] = (student, started, returned)
        self.pages[name] = feedback_names(self.exchange / COURSE / "inbound" / name, self.notebooks)
        return name

    def done_at(self, name: str, row: dict | None) -> float | None:
        """When ``name``'s feedback was out: its last page's appearance, or (no page expected) its ledger release."""
        pages = self.pages[name]
        if pages and all(p in self.watch.seen for p in pages):
            return max(self.watch.seen[p] for p in pages)
        if row and row["state"] in FINAL and not pages:
            return row["released_at"] or row["graded_at"] or row["seen"]
        return None

    def wait(self, names: Sequence[str], timeout: float, service: Service) -> dict[str, float]:
        """Wait until each of ``names`` is done (or ``timeout``); returns name → done time.

        Stops early when every one not done has stayed ``graded`` for :data:`STUCK_SECONDS`: the service
        graded it but gave up releasing its feedback (its log says why), and nothing else is coming.
        """
        deadline = time.monotonic() + timeout
        done: dict[str, float] = {}
        stuck_since = None
        while time.monotonic() < deadline and service.alive():
            rows = ledger(self.root, [n for n in names if n not in done])
            before = len(done)
            for name in names:
                if name not in done and (at := self.done_at(name, rows.get(name))) is not None:
                    done[name] = at
            if len(done) > before:
                self.cpu_at_last_done = service.cpu_seconds()  # not the idle time after (the service spins)
            if len(done) == len(names):
                break
            if all(rows.get(n, {}).get("state") == "graded" for n in names if n not in done):
                stuck_since = stuck_since or time.monotonic()
                if time.monotonic() - stuck_since > STUCK_SECONDS:
                    break
            else:
                stuck_since = None
            time.sleep(0.05)
        return done


# ------------------------------------------------------------------------------------------- the parts

def _rows_of(root: Path, lesson: str, students: list[Student], notes: dict[str, str]) -> list[pipeline.Row]:
    """The graded rows of the service's course, as ``pipeline.grade`` builds them from autograded/ and the gradebook."""
    from nbgrader.api import Gradebook

    rows = []
    with warnings.catch_warnings(), Gradebook(pipeline.load_config(root).CourseDirectory.db_url) as gb:
        for s in students:
            for nb in sorted((root / "solutions" / lesson).glob("*.ipynb")):
                warnings.simplefilter("ignore")  # SQLAlchemy's autoflush notes when _row zeroes a missing notebook
                rows.append(pipeline._row(root, gb, lesson, s.id, nb.stem, notes.get(s.id, "")))
    return rows


def _wrong(root: Path, students: list[Student], rows: list[pipeline.Row]) -> list[str]:
    isolated = any(r.mode in ("root", "userns") for r in rows)
    return [s.id for s in students if pipeline.verify(root, s, rows, isolated)]


def engine_throughput(root: Path, lesson: str, ids: Sequence[str],
                      workers: int) -> tuple[float, float, list[float], float]:
    """Grade ``ids`` (in ``submitted/``) on a fresh engine of ``workers`` local Dask workers, recording each grade.

    The path of ``pipeline.grade``; returns (seconds to start the engine and warm each worker with one throw-away
    task, seconds to grade and record ``ids`` after that, each task's own seconds on its worker, seconds to close).
    """
    from distributed import wait

    from flowcourse_instructor.grading.engine import GradingEngine, read_submission, record
    from flowcourse_instructor.grading.policy import GradingPolicy

    db_url = pipeline.load_config(root).CourseDirectory.db_url
    submissions = [read_submission(root / "submitted" / sid / lesson, lesson, sid) for sid in ids]
    start = time.perf_counter()
    with GradingEngine(GradingPolicy.for_course(root), workers=workers) as engine:
        warm = dataclasses.replace(submissions[0], id="warm-up")
        wait([engine.submit(dataclasses.replace(warm, id=f"warm-up-{k}")) for k in range(workers)])
        started = time.perf_counter()
        seconds = []
        for submission, graded in engine.grade(submissions):
            record(root, graded, submission, db_url)
            seconds.append(graded.seconds)
        finished = time.perf_counter()
    return started - start, finished - started, seconds, time.perf_counter() - finished


def _s(x: float) -> str:
    return "-" if x != x else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def run(lesson: str, size: int, scaling_size: int, repeats: int) -> int:
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="flowcourse-bench-service-") as tmp:
        work = Path(tmp)
        root, exchange = course_with_exchange(work / "served", lesson)
        students = synthetic_class(root, lesson, size)
        kinds = [s for s in load_sample_class(ROOT, root)
                 if s.lesson == lesson and (s.id == "full" or s.id.startswith("l"))]  # right, or a classic mistake
        probes = [dataclasses.replace(kinds[i % len(kinds)], id=f"probe{i}") for i in range(repeats + WORKERS)]
        homes = work / "served" / "homes"
        stage_homes(root, students + probes, homes)
        print(f"{len(students)} submissions of {lesson}; {os.cpu_count()} cores, load average {load()}", flush=True)

        # ---------------------------------------------------------------- 1. latency to an idle service
        watch = FeedbackWatch(exchange / COURSE / "feedback")
        watch.start()
        subs = Submissions(root, exchange, lesson, homes, watch)
        service = Service(root, work / "service.log")
        try:
            start = time.monotonic()
            # throw-away submissions, one per worker at once: the service up, every worker's fork server warm
            warm = [subs.hand_in(p.id) for p in probes[:WORKERS]]
            if len(subs.wait(warm, 300, service)) < len(warm):
                raise RuntimeError("the warm-up submissions got no feedback in 300 s")
            print(f"service up and warm in {time.monotonic() - start:.1f} s (started, {WORKERS} submissions graded)",
                  flush=True)
            time.sleep(1.0)
            cpu, wall = service.cpu_seconds(), time.monotonic()
            time.sleep(3.0)  # nothing to do: what does the idle service cost?
            idle_cpu = (service.cpu_seconds() - cpu) / (time.monotonic() - wall)
            latencies, parts = [], []
            for probe in probes[WORKERS:]:
                time.sleep(1.0)  # the service idle again
                name = subs.hand_in(probe.id)
                done = subs.wait([name], 120, service)
                if name not in done:
                    raise RuntimeError(f"{probe.id}: no feedback in 120 s")
                _, _, returned = subs.submitted[name]
                row = ledger(root, [name])[name]
                latencies.append(done[name] - returned)
                parts.append((row["seen"] - returned, row["graded_at"] - row["seen"], done[name] - row["graded_at"]))
            print("latencies: " + ", ".join(f"{x:.2f}" for x in latencies) + " s", flush=True)

            # ---------------------------------------------------------------- 2. deadline burst
            cpu_before = service.cpu_seconds()
            names = [subs.hand_in(s.id) for s in students]
            first = min(subs.submitted[n][1] for n in names)
            last_submit = max(subs.submitted[n][2] for n in names)
            print(f"burst: {len(names)} handed in within {last_submit - first:.1f} s; load average {load()}",
                  flush=True)
            done = subs.wait(names, 900, service)
            service_cpu = subs.cpu_at_last_done - cpu_before
        finally:
            service.stop()
            watch.stop()
            logged = (work / "service.log").read_text(errors="replace").splitlines()
        trouble = [line for line in logged if "ERROR" in line or "failed" in line or "Traceback" in line]
        if trouble:
            print(f"the service logged {len(trouble)} error lines, first: " + " | ".join(trouble[:3])[:600], flush=True)
        rows = ledger(root, names)
        unreleased = [subs.submitted[n][0] for n in names if n not in done]
        if unreleased:
            failures.append(f"{len(unreleased)} burst submissions got no feedback: {', '.join(unreleased[:5])} "
                            "(graded, but the service could not release feedback: see its log line above)")
        drain = max(done.values(), default=float("nan")) - first
        burst_latency = [done[n] - subs.submitted[n][2] for n in names if n in done]
        once = sum(1 for n in names if rows.get(n, {}).get("gradings") == 1)
        states = collections.Counter(r["state"] for r in rows.values())
        no_page = sum(1 for n in names if not subs.pages[n])
        release_s = [r["released_at"] - r["graded_at"] for r in rows.values() if r["released_at"] and r["graded_at"]]
        scan_s = [r["seen"] - subs.submitted[n][2] for n, r in rows.items()]
        by_student = {subs.submitted[n][0]: r for n, r in rows.items()}
        notes = {sid: r["note"] or "" for sid, r in by_student.items()}
        served_rows = _rows_of(root, lesson, students, notes)
        wrong_served = _wrong(root, students, served_rows)
        totals = {s.id: sum(r.score for r in served_rows if r.student == s.id) for s in students}
        ledger_differs = [sid for sid, r in by_student.items() if not abs((r["score"] or 0) - totals[sid]) <= 1e-6]
        print(f"burst drained in {drain:.1f} s; load average {load()}", flush=True)

        # ---------------------------------------------------------------- flowcourse grade on the same class
        plain = pipeline.prepare_workspace(ROOT, work / "graded")
        pipeline.release(plain)
        materialize(students, plain)
        start = time.perf_counter()
        graded_rows = pipeline.grade(plain, workers=WORKERS, lessons_only=[lesson], progress=False)
        grade_s = time.perf_counter() - start
        wrong_graded = _wrong(plain, students, graded_rows)
        print(f"flowcourse grade --workers {WORKERS}: {grade_s:.1f} s; load average {load()}", flush=True)

        # ---------------------------------------------------------------- 3. scaling
        subset = [s.id for s in _stride(students, scaling_size)]
        scaling, startup, task_s, close = {}, {}, {}, {}
        for w in (1, 2):
            startup[w], scaling[w], task_s[w], close[w] = engine_throughput(plain, lesson, subset, w)
            print(f"engine, {w} worker(s): {len(subset)} in {scaling[w]:.1f} s (after a {startup[w]:.1f} s start; "
                  f"closed in {close[w]:.1f} s); load average {load()}", flush=True)

    # -------------------------------------------------------------------- the tables
    n = len(students)
    p50, p95 = percentile(burst_latency, 50), percentile(burst_latency, 95)
    med = statistics.median(latencies)
    print_table(
        f"Grade on submit — {lesson}, flowcourse serve (2 Dask workers), {os.cpu_count()} cores",
        ["figure", "measured", "goal"],
        [[f"latency to an idle service, median of {len(latencies)} (s)", _s(med), "<= 5 s"],
         [f"latency to an idle service, max of {len(latencies)} (s)", _s(max(latencies)), "<= 5 s"],
         [f"burst of {n}: time to drain (s)", _s(drain), "<= 240 s"],
         [f"burst of {n}: p50 latency (s)", _s(p50), "-"],
         [f"burst of {n}: p95 latency (s)", _s(p95), "-"],
         [f"flowcourse grade --workers {WORKERS}, same {n} (s)", _s(grade_s), "-"],
         ["burst drain / flowcourse grade", f"{drain / grade_s:.2f}", "<= 1.00"]],
        note=(f"idle latency = submit -> seen {_s(statistics.median(p[0] for p in parts))} s + seen -> graded "
              f"{_s(statistics.median(p[1] for p in parts))} s + graded -> feedback page "
              f"{_s(statistics.median(p[2] for p in parts))} s (medians)\n"
              f"burst: submit -> seen median {_s(percentile(scan_s, 50))} s; graded -> feedback released median "
              f"{_s(percentile(release_s, 50))} s; service process CPU {service_cpu:.0f} s "
              f"({service_cpu / n:.2f} s per submission, serial)\n"
              f"graded exactly once (ledger gradings == 1): {once}/{n}; states: "
              + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
              + (f"; {no_page} with no page expected (no lesson notebook handed in: their ledger release counts)"
                 if no_page else "") + "\n"
              f"grades as each student's expectation: service {n - len(wrong_served)}/{n}"
              + (f" (not: {', '.join(wrong_served[:5])})" if wrong_served else "")
              + f"; flowcourse grade {n - len(wrong_graded)}/{n}"
              + (f" (not: {', '.join(wrong_graded[:5])})" if wrong_graded else "")
              + f"; the ledger's score is the gradebook's for {n - len(ledger_differs)}/{n}\n"
              f"idle service process CPU: {idle_cpu:.0%} of a core (nothing to grade)"))
    rates = {w: len(subset) / t * 60 for w, t in scaling.items()}
    print_table(
        f"Engine scaling — {len(subset)} of the class (an even stride), graded and recorded as pipeline.grade does",
        ["Dask workers", "start + warm-up (s)", "seconds", "notebooks per minute", "median task (s)", "close (s)"],
        [[str(w), _s(startup[w]), _s(scaling[w]), _s(rates[w]), _s(statistics.median(task_s[w])), _s(close[w])]
         for w in (1, 2)],
        note=f"2 workers / 1 worker: {rates[2] / rates[1]:.2f}x (ideal 2.00x on 2 cores; the start is not in the "
             "seconds: a running service pays it once)")
    per_nb = sum(task_s[1]) / len(subset)
    service_per = service_cpu / n
    lines = []
    for window, label in MOOC_WINDOWS:
        w = workers_needed(MOOC, per_nb, window)
        lines.append([f"{MOOC:,} in {label}", f"ceil({MOOC:,} x {per_nb:.2f} s / {window} s)", str(w),
                      f"{MOOC * service_per / window:.2f}"])
    print_table(
        "On paper — a deadline burst of 10,000 students",
        ["burst", "workers = ceil(N x t / T)", "workers", "service load"],
        lines,
        note=(f"t = {per_nb:.2f} s: the mean task time on a lone worker ({len(subset)} notebooks of the class, its "
              "crashes and 30 s loops included)\n"
              f"service load = N x {service_per:.2f} s / T: the service records and releases serially "
              "(its CPU per submission in the burst); above 1.00 it, not the workers, sets the pace"))

    if wrong_served or wrong_graded:
        failures.append("grades differ from the expectations")
    if ledger_differs:
        failures.append(f"ledger scores differ from the gradebook: {', '.join(ledger_differs[:5])}")
    if once != n:
        failures.append(f"{n - once} submissions not graded exactly once")
    for f in failures:
        print(f"FAILED: {f}")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lesson", default="01-change-of-variables")
    parser.add_argument("--size", type=int, default=200, help="submissions in the deadline burst")
    parser.add_argument("--scaling-size", type=int, default=40, help="submissions graded with 1 and 2 workers")
    parser.add_argument("--repeats", type=int, default=5, help="submissions to the idle service, one at a time")
    args = parser.parse_args(argv)
    return run(args.lesson, args.size, min(args.scaling_size, args.size), args.repeats)


if __name__ == "__main__":
    sys.exit(main())
