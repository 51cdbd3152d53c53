"""The grading engine: every submission is a task on Dask distributed; one process writes the gradebook.

One grading path for everything: ``flowcourse grade`` and the grading service (:mod:`.service`) both hand
submissions to a :class:`GradingEngine`. By default it starts a local cluster of worker *processes* on this
machine; given a scheduler address it grades on any Dask cluster (``dask-jobqueue`` on a university's SLURM,
``dask-kubernetes`` on Kubernetes: ``classroom/DEPLOY.md``), with the same code.

A task carries what it grades and how, and nothing else:

- :class:`Submission`: the lesson, the student, the handed-in files (bytes) and an id;
- the :class:`~.policy.GradingPolicy` (isolation mode, limits, the trusted snapshot of tests and specs);
- the lesson's gradebook definitions (:func:`~.policy.lesson_gradebook`, tens of kB).

On the worker, :func:`grade_submission` lays these out as a scratch nbgrader course and runs nbgrader's own
``autograde`` in it — the sandbox, the student-environment kernels and the judge exactly as before (a Dask
worker is not a sandbox; every kernel still is). It returns a :class:`Graded`: the autograded files. Only the
process that owns the engine writes the course: :func:`record` copies the files into ``autograded/`` and
runs nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties`` against the course gradebook (one writer, late
penalties from the course's due date and nbgrader's late-submission plugin).

A worker that dies mid-task (killed, out of memory) loses nothing: the scheduler runs the task again on
another worker (Dask's ``allowed-failures``), and :func:`record` is idempotent per submission.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from flowcourse_instructor.grading.policy import GradingPolicy, lesson_gradebook

__all__ = ["Submission", "Graded", "GradingEngine", "grade_submission", "record", "read_submission",
           "replace_folder"]


@dataclass(frozen=True)
class Submission:
    """What one task grades: a student's hand-in of one lesson (file paths relative to the lesson folder)."""

    lesson: str
    student: str
    files: dict[str, bytes]
    id: str = ""

    @property
    def key(self) -> str:
        return self.id or f"{self.student}/{self.lesson}"


@dataclass
class Graded:
    """What a task brings back: the autograded folder's files, or why nbgrader could not grade."""

    lesson: str
    student: str
    id: str
    files: dict[str, bytes] = field(default_factory=dict)
    feedback: dict[str, bytes] = field(default_factory=dict)
    ok: bool = False
    error: str = ""
    seconds: float = 0.0
    worker: str = ""


def read_submission(folder: str | os.PathLike, lesson: str, student: str, id: str = "") -> Submission:
    """The files of a submission folder (``submitted/<student>/<lesson>/`` or an exchange inbound folder)."""
    folder = Path(folder)
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
             if p.is_file() and ".ipynb_checkpoints" not in p.parts}
    return Submission(lesson=lesson, student=student, files=files, id=id)


# ------------------------------------------------------------------------------------------- on a worker

def _configured_api(scratch: Path, policy: GradingPolicy) -> Any:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from flowcourse_instructor.grading.config import configure

    config = Config()
    configure(config, scratch, policy=policy, environ=dict(os.environ))
    # nbgrader copies the lesson's released files from its source folder: the course's own
    config.CourseDirectory.source_directory = str(Path(policy.course_root) / "solutions")
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def grade_submission(submission: Submission, policy: GradingPolicy, lesson_db: bytes,
                     feedback: bool = False) -> Graded:
    """Grade one submission with nbgrader's ``autograde`` in a scratch course (runs on a Dask worker).

    With ``feedback``, the feedback pages too (nbgrader ``generate_feedback`` on the scratch gradebook, which
    holds the same grades the course gradebook will): the service then only copies them. Never raises for a
    student's reason: nbgrader's failure comes back as ``ok=False`` with its message.
    """
    import flowcourse_lessons

    start = time.monotonic()
    flowcourse_lessons.register(policy.course_root)
    out = Graded(submission.lesson, submission.student, submission.key, worker=_worker_name())
    scratch = Path(tempfile.mkdtemp(prefix="flowcourse-task-"))
    try:
        (scratch / "gradebook.db").write_bytes(lesson_db)
        folder = scratch / "submitted" / submission.student / submission.lesson
        for name, data in submission.files.items():
            path = (folder / name).resolve()
            if not path.is_relative_to(folder.resolve()):
                continue  # a file name that climbs out of the submission is not the student's to write
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        folder.mkdir(parents=True, exist_ok=True)
        api = _configured_api(scratch, policy)
        with contextlib.redirect_stderr(io.StringIO()):
            result = api.autograde(submission.lesson, submission.student, force=True, create=True)
        out.ok, out.error = bool(result["success"]), str(result.get("error") or "")
        graded = scratch / "autograded" / submission.student / submission.lesson
        if graded.is_dir():
            out.files = {str(p.relative_to(graded)): p.read_bytes() for p in sorted(graded.rglob("*")) if p.is_file()}
        if feedback and out.ok:
            with contextlib.redirect_stderr(io.StringIO()):
                api.generate_feedback(submission.lesson, submission.student, force=True)
            pages = scratch / "feedback" / submission.student / submission.lesson
            if pages.is_dir():
                out.feedback = {str(p.relative_to(pages)): p.read_bytes() for p in sorted(pages.rglob("*"))
                                if p.is_file()}
    except Exception as exc:  # noqa: BLE001 - the engine's own failure is reported with the submission
        out.ok, out.error = False, f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out.seconds = time.monotonic() - start
    return out


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


class GradingWorkerSetup(WorkerPlugin):
    """A Dask worker plugin: one torch thread for the judge, and a warm fork server for the worker's kernels."""

    name = "flowcourse-grading"

    def __init__(self, course_root: str, fork_kernels: bool) -> None:
        self.course_root, self.fork_kernels = course_root, fork_kernels

    def setup(self, worker: Any = None) -> None:
        import torch

        from flowcourse_instructor.grading import forkserver

        torch.set_num_threads(1)  # the judge's work is tiny; the cores belong to the kernels
        forkserver.enable(self.fork_kernels, self.course_root)

    def teardown(self, worker: Any = None) -> None:
        from flowcourse_instructor.grading import forkserver

        forkserver.enable(False)


# ------------------------------------------------------------------------------------------- the owner's side

def record(root: str | os.PathLike, graded: Graded, submission: Submission, db_url: str,
           config: Any = None) -> None:
    """Write one graded submission into the course (the only writer): files, then nbgrader's own grade savers.

    ``submitted/`` gets the handed-in files (as ``nbgrader collect`` would), ``autograded/`` the task's files,
    and the gradebook the submission with its timestamp, each notebook's scores and comments and its late
    penalty. Running it twice for one submission gives the same gradebook. ``config``: the course's nbgrader
    configuration, when the caller has it loaded already.
    """
    import nbformat
    from nbconvert.exporters.exporter import ResourcesDict
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    from traitlets.config import Config

    from flowcourse_instructor.grading.pipeline import load_config

    root = Path(root)
    lesson, student = graded.lesson, graded.student
    submitted = root / "submitted" / student / lesson
    if not _same_files(submitted, submission.files):
        replace_folder(submitted, submission.files)
    replace_folder(root / "autograded" / student / lesson, graded.files)
    config = config if config is not None else load_config(root)
    timestamp = CourseDirectory(config=config).get_existing_timestamp(str(submitted))
    with Gradebook(db_url) as gb, warnings.catch_warnings():
        # nbgrader's update_or_create_submission trips SQLAlchemy's autoflush warning on every call: noise
        warnings.filterwarnings("ignore", message=".*not in session.*")
        gb.update_or_create_student(student)
        if timestamp:
            gb.update_or_create_submission(lesson, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(lesson, student)
    plugin_config = Config(config)  # the course's late-submission plugin (c.AssignLatePenalties.plugin_class)
    for name in sorted(n for n in graded.files if n.endswith(".ipynb") and "/" not in n):
        nb = nbformat.reads(graded.files[name].decode("utf-8"), as_version=4)
        resources = ResourcesDict(nbgrader=ResourcesDict(notebook=name[:-6], assignment=lesson, student=student,
                                                         db_url=db_url))
        for preprocessor in (SaveAutoGrades(config=plugin_config), AssignLatePenalties(config=plugin_config)):
            nb, resources = preprocessor.preprocess(nb, resources)


def _same_files(folder: Path, files: dict[str, bytes]) -> bool:
    if not folder.is_dir():
        return False
    present = {str(p.relative_to(folder)): p for p in folder.rglob("*") if p.is_file()}
    return set(present) == set(files) and all(present[k].read_bytes() == v for k, v in files.items())


def replace_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Make ``folder`` hold exactly ``files``, swapped in at once (a reader never sees half a submission)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    for name, data in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    staging.chmod(0o755)
    old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


class GradingEngine:
    """Grading tasks on Dask distributed: a local cluster of ``workers`` processes, or the cluster at ``scheduler``.

    >>> # with GradingEngine(policy, workers=2) as engine:
    >>> #     for submission, graded in engine.grade(submissions): record(root, graded, submission, db_url)
    """

    def __init__(self, policy: GradingPolicy, *, workers: int = 2, scheduler: str | None = None) -> None:
        from distributed import Client, LocalCluster

        self.policy = policy
        self._lesson_dbs: dict[str, Any] = {}
        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout=60)
        else:
            # worker processes, one task each: a Dask worker is not a sandbox, but it keeps a crash contained
            self.cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
                                        memory_limit=0)
            self.client = Client(self.cluster)
        self.client.register_plugin(GradingWorkerSetup(policy.course_root, policy.fork_kernels))

    def __enter__(self) -> GradingEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()

    def _lesson_db(self, lesson: str) -> bytes:
        # sent with each task (tens of kB), not scattered once: data kept on a worker dies with that worker
        if lesson not in self._lesson_dbs:
            self._lesson_dbs[lesson] = lesson_gradebook(Path(self.policy.course_root) / "gradebook.db", lesson)
        return self._lesson_dbs[lesson]

    def submit(self, submission: Submission, *, feedback: bool = False) -> Any:
        """Queue one submission (``feedback``: with its feedback pages); returns its Dask future (a :class:`Graded`)."""
        return self.client.submit(grade_submission, submission, self.policy, self._lesson_db(submission.lesson),
                                  feedback, pure=False, key=f"grade-{submission.key}-{time.monotonic_ns()}")

    def grade(self, submissions: Iterable[Submission]) -> Iterator[tuple[Submission, Graded]]:
        """Grade ``submissions``; yields each with its result as it finishes (any order)."""
        from distributed import as_completed

        futures = {}
        for submission in submissions:
            futures[self.submit(submission)] = submission
        for future in as_completed(futures):
            yield futures[future], _result(future, futures[future])


def _result(future: Any, submission: Submission) -> Graded:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a task the cluster gave up on (workers kept dying) still ends graded
        return Graded(submission.lesson, submission.student, submission.key, ok=False,
                      error=f"the grading task failed: {type(exc).__name__}: {str(exc)[:300]}")
