"""The grading policy is one explicit value: it survives the trip to a worker, and nothing else carries it."""

from __future__ import annotations

import re
from pathlib import Path

from flowcourse_instructor.grading import pipeline
from flowcourse_instructor.grading.policy import GradingPolicy, lesson_gradebook
from flowcourse_instructor.grading.preprocessors import trusted_sources

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"
GRADING = Path(__file__).resolve().parents[1] / "src" / "flowcourse_instructor" / "grading"


def test_the_policy_snapshots_the_gradebook_tests_and_the_specs(tmp_path):
    root = pipeline.prepare_workspace(FIXTURE, tmp_path / "course")
    pipeline.release(root)
    policy = GradingPolicy.for_course(root, sandbox_mode="limits")
    assert policy.sandbox_mode == "limits" and policy.course_root == str(root.resolve())
    db = f"sqlite:///{root / 'gradebook.db'}"
    from_gradebook = trusted_sources(db, "00-toy", "toy")
    assert from_gradebook and policy.trusted_sources("00-toy", "toy") == from_gradebook
    assert any("check(" in source for source in from_gradebook.values())
    assert set(policy.fingerprints) == {"00-toy"}
    assert GradingPolicy.from_json(policy.to_json()) == policy

    # a gradebook rewritten after the snapshot (a kernel without a sandbox could) changes nothing the grader runs
    from nbgrader.api import Gradebook

    with Gradebook(db) as gb:
        cell = gb.find_notebook("toy", "00-toy").source_cells[0]
        name = cell.name
        for c in gb.find_notebook("toy", "00-toy").source_cells:
            if c.name in from_gradebook:
                c.source, name = "pass  # rewritten", c.name
                break
        gb.db.commit()
    assert trusted_sources(db, "00-toy", "toy")[name] == "pass  # rewritten"
    assert trusted_sources(db, "00-toy", "toy", policy)[name] == from_gradebook[name]


def test_a_lesson_gradebook_holds_the_lesson_and_no_student(tmp_path):
    import sqlite3

    root = pipeline.prepare_workspace(FIXTURE, tmp_path / "course")
    pipeline.release(root)
    (tmp_path / "lesson.db").write_bytes(lesson_gradebook(root / "gradebook.db", "00-toy"))
    with sqlite3.connect(tmp_path / "lesson.db") as db:
        assert db.execute("SELECT name FROM assignment").fetchall() == [("00-toy",)]
        assert db.execute("SELECT count(*) FROM student").fetchone() == (0,)
        with sqlite3.connect(root / "gradebook.db") as course:
            for table in ("grade_cells", "source_cell", "solution_cells"):
                assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == \
                    course.execute(f"SELECT count(*) FROM {table}").fetchone()


def test_no_grading_module_reads_its_settings_from_the_environment_or_a_module_cache():
    reads = re.compile(r"""(environ(\.get)?\(|environ\[|getenv\()\s*["']FLOWCOURSE_""")
    caches = re.compile(r"^_(PRELOADED|TRUSTED|MODE|FINGERPRINTS)\b", re.MULTILINE)
    found = []
    for path in sorted(GRADING.rglob("*.py")):
        text = path.read_text()
        found += [f"{path.name}: {m.group(0)}" for m in reads.finditer(text)]
        found += [f"{path.name}: {m.group(0)}" for m in caches.finditer(text)]
    assert found == []


def test_the_scan_above_can_fail(tmp_path):
    reads = re.compile(r"""(environ(\.get)?\(|environ\[|getenv\()\s*["']FLOWCOURSE_""")
    assert reads.search('root = os.environ.get("FLOWCOURSE_COURSE_ROOT")')
    assert reads.search("os.environ['FLOWCOURSE_SANDBOX_MODE']")
