"""nbgrader configuration for a flowcourse course root (``nbgrader_config.py`` calls :func:`configure`).

>>> from traitlets.config import Config
>>> c = Config()
>>> configure(c, "/course", environ={})
>>> c.CourseDirectory.source_directory, c.CourseDirectory.release_directory, c.OverwriteCells.add_missing_cells
('solutions', 'course', True)
>>> from flowcourse_instructor.grading.policy import GradingPolicy
>>> GradingPolicy.from_config(c).course_root, GradingPolicy.from_config(c).sandbox_mode
('/course', 'auto')
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from flowcourse_instructor.grading.policy import GradingPolicy

__all__ = ["configure", "SANITIZE", "AUTOGRADE", "FEEDBACK", "GRADING_SIDE"]

# What a lesson folder holds for the grading side only: never released, never collected back.
GRADING_SIDE = ["key.py", "checks.py", "students.py", "test_key.py"]

_PP = "flowcourse_instructor.grading.preprocessors"
SANITIZE = [f"{_PP}.StartRecord", "nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
            "nbgrader.preprocessors.OverwriteKernelspec", f"{_PP}.RestoreTestCells", f"{_PP}.BlankDemoCells",
            f"{_PP}.ScanSubmission", "nbgrader.preprocessors.CheckCellMetadata"]
AUTOGRADE = [f"{_PP}.GuardedExecute", f"{_PP}.Judge", "nbgrader.preprocessors.IgnorePattern",
             "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
             "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
             "nbgrader.preprocessors.CheckCellMetadata"]
FEEDBACK = ["nbgrader.preprocessors.GetGrades", f"{_PP}.HideTestSource",
            "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]


def configure(c: Any, root: str | os.PathLike, *, course_id: str = "flowcourse", cell_timeout: int = 30,
              notebook_budget: int = 600, sandbox: str | None = None,
              environ: MutableMapping[str, str] | None = None, policy: GradingPolicy | None = None) -> None:
    """Configure nbgrader ``c`` for the course whose root is ``root``.

    Sources in ``solutions/``, the release in ``course/``, the gradebook ``gradebook.db`` at the root with
    a 60 s SQLite busy timeout (parallel graders wait instead of failing), our preprocessors in place of
    nbgrader's trusting ones. Each lesson folder's grading-side files (:data:`GRADING_SIDE`) are never
    released. The root's lesson folders are registered as :mod:`flowcourse_lessons` packages (a test course
    brings its own key and checks that way). How to grade (isolation, limits, the trusted snapshot) is one
    value, ``c.GradingPolicy.json`` (:mod:`.policy`): ``policy`` when given (``flowcourse grade`` and the
    grading service pass the one they took before grading), else this root's defaults.
    ``cell_timeout``: with demo cells blanked, no cell of a full solution takes 2 s, so 30 s is ample
    headroom and an infinite loop in a self-check costs a submission 30 s, not minutes.
    """
    env = os.environ if environ is None else environ
    root = Path(root).resolve()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = course_id
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "course"
    c.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}?timeout=60"
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store", *GRADING_SIDE]
    c.Autograde.sanitize_preprocessors = list(SANITIZE)
    c.Autograde.autograde_preprocessors = list(AUTOGRADE)
    c.Autograde.exporter_class = f"{_PP}.TolerantNotebookExporter"
    c.GenerateFeedback.preprocessors = list(FEEDBACK)
    c.OverwriteCells.add_missing_cells = True
    if policy is None:
        policy = GradingPolicy(course_root=str(root), sandbox_mode=sandbox or "auto", cell_timeout=cell_timeout,
                               notebook_budget=notebook_budget)
    c.GradingPolicy.json = policy.to_json()
    c.GuardedExecute.timeout = policy.cell_timeout
    c.GuardedExecute.notebook_budget = policy.notebook_budget
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    if environ is None:
        import flowcourse_lessons

        flowcourse_lessons.register(root)
    bin_dir = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from PATH when it creates a gradebook
    if bin_dir not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH", "")]))
