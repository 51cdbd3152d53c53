"""Kernel isolation: what a sandboxed process can see and do, in every mode this machine supports.

The wrapper runs a small Python program instead of a kernel; each assertion is made from inside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowcourse_instructor.grading import sandbox
from flowcourse_instructor.grading.kernelside import kernel_environment, kernel_side

AVAILABLE = ["limits"]
if sandbox._root_works():
    AVAILABLE.append("root")
if sandbox._userns_works():
    AVAILABLE.append("userns")

PROBE = r"""
import json, os, resource, sys
course = sys.argv[1]
out = {"uid": os.getuid(), "cwd": os.getcwd(), "sandbox": os.environ.get("FLOWCOURSE_SANDBOX")}
out["course_listing"] = sorted(os.listdir(course)) if os.path.isdir(course) else None
out["secret_readable"] = os.path.exists(os.path.join(course, "solutions", "secret.txt"))
out["gradebook_readable"] = os.path.exists(os.path.join(course, "gradebook.db"))
try:
    import flowcourse_lessons.lesson_01.key
    out["key_importable"] = True
except ImportError:
    out["key_importable"] = False
try:  # the kernel half of grading: the toolkit, the check runner, the lessons' checks (no key behind them)
    import flowcourse.base, flowcourse_instructor.grading.kernel, flowcourse_lessons.lesson_01.checks
    out["checks_importable"] = True
except ImportError:
    out["checks_importable"] = False
import flowcourse_instructor.grading.sandbox as usable  # the non-reference package stays importable
try:
    probe = os.path.join(os.path.dirname(usable.__file__), "sandbox-probe.txt")
    open(probe, "w").close()
    os.remove(probe)
    out["package_writable"] = True
except OSError:
    out["package_writable"] = False
out["as_limit"] = resource.getrlimit(resource.RLIMIT_AS)[0]
out["tmp"] = sorted(os.listdir("/tmp"))
out["connection"] = open(sys.argv[2]).read()
print(json.dumps(out))
"""


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    (root / "solutions").mkdir(parents=True)
    (root / "solutions" / "secret.txt").write_text("answers")
    (root / "gradebook.db").write_text("grades")
    (root / "autograded" / "alice" / "01").mkdir(parents=True)
    conn = tmp_path / "kernel.json"
    conn.write_text('{"key": "abc"}')
    return root, conn


def _probe(mode: str, root: Path, conn: Path, **limits: int) -> dict:
    policy = sandbox.default_policy(mode, root, **limits)
    cwd = root / "autograded" / "alice" / "01"
    side = kernel_side(root)  # what grading kernels run: the student environment and the staged kernel side
    cmd = sandbox.wrapper_command(policy, [side.python, "-c", PROBE, str(root), str(conn)], cwd=str(cwd),
                                  python=side.python,
                                  connection_file=str(conn))
    cmd = [str(sandbox_conn(mode, conn)) if a == str(conn) else a for a in cmd]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=kernel_environment(os.environ, side))
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def sandbox_conn(mode: str, conn: Path) -> str:
    """Inside root/userns the wrapper moves the connection file to /tmp and rewrites the argument."""
    return str(conn)


def test_detect_mode_picks_an_available_mode():
    assert sandbox.detect_mode() in AVAILABLE
    assert sandbox.detect_mode("limits") == "limits"
    with pytest.raises(ValueError, match="sandbox mode"):
        sandbox.detect_mode("chroot")


@pytest.mark.parametrize("mode", [m for m in AVAILABLE if m != "limits"])
def test_isolated_kernels_cannot_see_the_key_or_the_course(mode, course):
    root, conn = course
    seen = _probe(mode, root, conn)
    assert seen["sandbox"] == mode
    assert seen["cwd"] == str(root / "autograded" / "alice" / "01")
    assert seen["course_listing"] == ["autograded"] or seen["course_listing"] is None or \
        "solutions" not in seen["course_listing"]
    assert not seen["secret_readable"] and not seen["gradebook_readable"]
    assert not seen["key_importable"] and not seen["package_writable"]
    assert seen["checks_importable"]
    extra = set(seen["tmp"]) - {"home", "kernel-connection.json"}  # only the way down to a kept folder
    kept = [Path(seen["cwd"]), Path(sys.prefix).resolve()]  # the notebook's folder, the venv (may be in /tmp)
    ways_down = {p.relative_to("/").parts[1] for p in kept if p.relative_to("/").parts[0] == "tmp"}
    assert extra <= ways_down, seen["tmp"]
    assert json.loads(seen["connection"]) == {"key": "abc"}
    if mode == "root":
        assert seen["uid"] >= 1_000_000  # a fresh unprivileged uid per kernel


def test_limits_mode_only_limits(course):
    root, conn = course
    seen = _probe("limits", root, conn, memory_mb=3000)
    assert seen["sandbox"] == "limits" and seen["as_limit"] == 3000 * 2**20
    assert seen["secret_readable"]  # the documented weakness of this mode: the report says so
    # even here the kernel has no key to import: it runs the student environment and the staged kernel side
    assert seen["checks_importable"] and not seen["key_importable"]


@pytest.mark.parametrize("mode", sorted({"limits", AVAILABLE[-1]}))
def test_address_space_limit_stops_a_memory_bomb(mode, course, tmp_path):
    """6 GiB of untouched memory is granted without the limit and refused with it."""
    root, conn = course
    bomb = "import mmap\ntry:\n    mmap.mmap(-1, 6 * 2**30); print('granted')\nexcept OSError as e:\n" \
           "    print('refused' if e.errno == 12 else e)\n"
    free = subprocess.run([sys.executable, "-c", bomb], capture_output=True, text=True, timeout=120)
    assert free.stdout.strip() == "granted"
    policy = sandbox.default_policy(mode, root, memory_mb=4096)
    side = kernel_side(root)
    cmd = sandbox.wrapper_command(policy, [side.python, "-c", bomb], cwd=str(root), connection_file=str(conn),
                                  python=side.python)
    limited = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=kernel_environment(os.environ, side))
    assert limited.stdout.strip() == "refused", limited.stderr[-1000:]


def test_cpu_limit_ends_a_busy_loop(course):
    root, conn = course
    policy = sandbox.default_policy("limits", root, cpu_seconds=1)
    cmd = sandbox.wrapper_command(policy, [sys.executable, "-c", "while True: pass"], cwd=str(root),
                                  connection_file=str(conn))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode in (-24, -9, 128 + 24), result.returncode  # SIGXCPU, or SIGKILL at the hard limit


def test_a_sandbox_that_cannot_start_refuses_to_run_the_kernel(tmp_path):
    spec = {**sandbox.Policy(mode="root").__dict__, "cwd": str(tmp_path), "connection_file": "/nonexistent.json"}
    result = subprocess.run([sys.executable, "-m", "flowcourse_instructor.grading.sandbox", json.dumps(spec), "--",
                             "true"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 70 and "could not start the kernel" in result.stderr


def test_policy_hides_the_course_and_the_keys_and_keeps_the_kernel_side(tmp_path):
    import flowcourse_lessons
    from flowcourse_instructor.grading.kernelside import kernel_side

    policy = sandbox.default_policy("root", tmp_path)
    side = kernel_side(tmp_path)
    assert str(tmp_path.resolve()) in policy.hide
    assert str(flowcourse_lessons.COURSE_ROOT) in policy.hide  # solutions/*/key.py lie under it
    assert side.prefix in policy.keep and str(Path(side.path).parent) in policy.keep
    staged = Path(side.path).parent
    assert {p.parent.name for p in staged.rglob("checks.py")} >= {f.name for f in flowcourse_lessons.lessons().values()}
    assert not list(staged.rglob("key.py")) and not list(staged.rglob("students.py"))
