"""Nothing a graded kernel starts outlives it: a plain child, one in a new session, a double-forked daemon.

Unit tests of :func:`sandbox.end_kernel_processes` per mode (``root`` needs root: CI runs as root), then end to
end: a toy-course submission whose answer cell starts background processes, graded with and without the fork
server; afterwards no process of the kernel's uid and none of its ``sleep`` commands may be alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from flowcourse_instructor.grading import forkserver, sandbox

FIXTURE = Path(__file__).parent / "fixtures" / "toycourse"
ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="root mode: the grader runs as root (CI does)")
FAKE_KERNEL_PID = 5_000_000 + os.getpid() % 100_000  # above any pid_max: its uid is no real kernel's


def _sleepers(seconds: int) -> list[int]:
    """Live ``sleep SECONDS`` processes (each test uses its own duration as a marker)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline == f"sleep\0{seconds}\0".encode():
            proc = sandbox._process(int(entry))
            if proc is not None and proc.state not in ("Z", "X"):
                found.append(int(entry))
    return found


def _of_uid(uid: int) -> list[int]:
    return [p.pid for p in sandbox._processes() if uid in p.uids[:3]]


def _wait_for(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def reap_sleepers():
    """Whatever a test leaves (a failing one), killed afterwards: no ``sleep`` lingers for an hour."""
    durations: list[int] = []
    yield durations.append
    for seconds in durations:
        for pid in _sleepers(seconds):
            sandbox._signal(pid, signal.SIGKILL, lambda proc: True)


# A plain child, a child in a new session, a double-forked daemon in its own session, then the "kernel" itself.
FAMILY = "sleep {s} & setsid sleep {s} & (setsid sh -c 'sleep {s} &' &); exec sleep {s}"


def _start_as(uid: int, script: str) -> subprocess.Popen:
    return subprocess.Popen(["/bin/sh", "-c", script], user=uid, group=uid, extra_groups=[], cwd="/",
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------- root mode

@needs_root
def test_root_mode_ends_every_process_of_the_kernel_uid(reap_sleepers):
    reap_sleepers(3150)
    uid = sandbox.kernel_uid(FAKE_KERNEL_PID)
    kernel = _start_as(uid, FAMILY.format(s=3150))
    assert _wait_for(lambda: len(_sleepers(3150)) == 4), "the processes did not start"
    sessions = {sandbox._process(pid).sid for pid in _sleepers(3150)}
    assert len(sessions) == 3  # the kernel's session, and two processes that left it

    assert sandbox.end_kernel_processes(FAKE_KERNEL_PID, "root") >= 4
    assert _of_uid(uid) == [] and _sleepers(3150) == []  # at once: it waits until /proc shows none
    assert kernel.wait(timeout=5) == -signal.SIGKILL
    assert sandbox.end_kernel_processes(FAKE_KERNEL_PID, "root") == 0  # nothing left: a no-op


@needs_root
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_root_mode_wins_against_processes_forking_as_fast_as_they_can(reap_sleepers):
    reap_sleepers(3151)
    uid = sandbox.kernel_uid(FAKE_KERNEL_PID)
    # bounded by its process limit, as a kernel is (RLIMIT_NPROC): forks again the moment a slot frees up
    bomb = "ulimit -u 60; f() { while :; do sleep 3151 & done 2>/dev/null; }; f & f & f"
    kernel = subprocess.Popen(["bash", "-c", bomb], user=uid, group=uid, extra_groups=[], cwd="/",
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: len(_of_uid(uid)) >= 50), "the bomb did not start"
    assert sandbox.end_kernel_processes(FAKE_KERNEL_PID, "root") >= 50
    assert _of_uid(uid) == []
    kernel.wait(timeout=5)


@needs_root
def test_the_check_sees_survivors_when_the_uid_sweep_is_skipped(monkeypatch, reap_sleepers):
    """The assertions above can fail: without the helper's ``kill(-1)`` the processes are still there."""
    reap_sleepers(3155)
    uid = sandbox.kernel_uid(FAKE_KERNEL_PID)
    kernel = _start_as(uid, FAMILY.format(s=3155))
    assert _wait_for(lambda: len(_sleepers(3155)) == 4)
    monkeypatch.setattr(sandbox, "_kill_all_as", lambda uid: True)  # "killed", but nothing was
    sandbox.end_kernel_processes(FAKE_KERNEL_PID, "root", timeout=0.3)
    assert len(_of_uid(uid)) == 4 and len(_sleepers(3155)) == 4
    monkeypatch.undo()
    assert sandbox.end_kernel_processes(FAKE_KERNEL_PID, "root") == 4
    assert _of_uid(uid) == []
    kernel.wait(timeout=5)


# ------------------------------------------------------------------------------------------- userns mode

def _userns() -> bool:
    return sandbox._userns_works()


@pytest.mark.skipif(not _userns(), reason="no unprivileged user namespaces here")
@pytest.mark.parametrize("how", ["unshare-killed", "cleanup-kills-namespace"])
def test_userns_mode_processes_die_with_the_pid_namespace(how, reap_sleepers):
    reap_sleepers(3154)
    wrapped = sandbox.wrapper_command(sandbox.Policy(mode="userns"), ["true"], cwd="/", connection_file="/x")
    unshare = wrapped[:wrapped.index("--mount-proc") + 1]
    assert "--kill-child" in unshare and "--pid" in unshare  # the options the wrapper really uses
    kernel = subprocess.Popen([*unshare, "/bin/sh", "-c", FAMILY.format(s=3154)], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: len(_sleepers(3154)) == 4), "the processes did not start"
    if how == "unshare-killed":  # what nbclient does to a kernel that does not shut down: the namespace goes too
        kernel.kill()
        kernel.wait(timeout=5)
        assert _wait_for(lambda: _sleepers(3154) == [], 5)
        assert sandbox.end_kernel_processes(kernel.pid, "userns") == 0
    else:
        assert sandbox.end_kernel_processes(kernel.pid, "userns") >= 4
        assert _sleepers(3154) == []
        kernel.wait(timeout=5)


# ------------------------------------------------------------------------------------------- limits mode

def test_limits_mode_ends_the_session_the_group_and_the_marked_and_says_what_it_cannot(reap_sleepers):
    reap_sleepers(3152)
    reap_sleepers(3153)
    script = ('export FLOWCOURSE_KERNEL_PID=$$; ' + FAMILY.format(s=3152).replace("exec sleep", "")
              + "; (env -u FLOWCOURSE_KERNEL_PID setsid sleep 3153 &); exec sleep 3152")
    kernel = subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait_for(lambda: len(_sleepers(3152)) == 4 and len(_sleepers(3153)) == 1)
    assert sandbox.end_kernel_processes(kernel.pid, "limits") >= 4
    assert _sleepers(3152) == []
    # documented gap: out of the session, orphaned and without the mark, nothing ties it to the kernel
    assert len(_sleepers(3153)) == 1
    kernel.wait(timeout=5)


def test_limits_mode_marks_the_kernel_environment_with_its_pid():
    script = ("import json, os, sys\nfrom flowcourse_instructor.grading import sandbox\n"
              "cmd, env = sandbox.apply_policy({'mode': 'limits', 'memory_mb': 4096, 'cpu_seconds': 60,"
              " 'file_mb': 64, 'nproc': 512}, ['k'], {})\nprint(json.dumps([os.getpid(), env]))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    pid, env = json.loads(out.stdout)
    assert env[sandbox._KERNEL_MARK] == str(pid) and env["FLOWCOURSE_SANDBOX"] == "limits"


def test_an_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="sandbox mode"):
        sandbox.end_kernel_processes(FAKE_KERNEL_PID, "none")


# ------------------------------------------------------------------------------------------- the fork server

@pytest.fixture
def small_server(monkeypatch):
    """A server preloading only what a kernel needs (starts in about a second), as in the fork server tests."""
    server = forkserver.ForkServer(preload=("IPython", "ipykernel.kernelapp"))
    monkeypatch.setattr(forkserver, "_server", server)
    monkeypatch.setattr(forkserver, "_enabled", True)
    yield server
    forkserver.enable(False)


SPAWN = """
import json as _json, os as _os, subprocess as _sp
_kids = [_sp.Popen(["sleep", "{s}"]), _sp.Popen(["sleep", "{s}"], start_new_session=True)]
_daemon = _sp.run(["sh", "-c", "(setsid sh -c 'echo $$; exec sleep {s} >/dev/null 2>&1' &)"],
                  capture_output=True, text=True, timeout=30, {env})
print("SPAWNED", _json.dumps({{"uid": _os.getuid(), "pids": [k.pid for k in _kids] + [int(_daemon.stdout)]}}))
"""


def _spawned(nb) -> dict:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith("SPAWNED "):
                    return json.loads(line.split(" ", 1)[1])
    raise AssertionError("the submission did not report its processes")


@pytest.mark.slow
def test_the_fork_server_ends_an_orphan_that_left_the_session_and_dropped_the_mark(small_server, tmp_path,
                                                                                   guarded_run, reap_sleepers):
    """Limits mode, the case the uid-less search cannot see: only the server, its subreaper, catches it."""
    reap_sleepers(3156)
    clean = "env={k: v for k, v in _os.environ.items() if k != 'FLOWCOURSE_KERNEL_PID'}"
    nb, _ = guarded_run(tmp_path, [SPAWN.format(s=3156, env=clean)], timeout=30, notebook_budget=120,
                        sandbox_mode="limits")
    spawned = _spawned(nb)
    assert len(spawned["pids"]) == 3
    assert _sleepers(3156) == []


# ------------------------------------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def released(tmp_path_factory):
    from flowcourse_instructor.grading import pipeline

    root = pipeline.prepare_workspace(FIXTURE, tmp_path_factory.mktemp("cleanup") / "course")
    pipeline.release(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("fork_kernels", [True, False], ids=["fork-server", "no-fork-server"])
def test_a_graded_submission_leaves_no_process_running(released, fork_kernels, reap_sleepers):
    from flowcourse_instructor.grading import pipeline
    from flowcourse_instructor.grading.sampleclass import Student, materialize

    seconds = 3160 + fork_kernels
    reap_sleepers(seconds)
    student = f"spawner-{'fork' if fork_kernels else 'plain'}"
    materialize([Student(student, "00-toy", append={"affine_forward_answer": SPAWN.format(s=seconds,
                                                                                          env="")})], released)
    rows = pipeline.grade(released, students=[student], workers=1, progress=False, fork_kernels=fork_kernels)
    assert rows and not rows[0].error
    nb = nbformat.read(released / "autograded" / student / "00-toy" / "toy.ipynb", 4)
    spawned, mode = _spawned(nb), nb.metadata["flowcourse"]["sandbox"]
    assert len(spawned["pids"]) == 3
    survivors = _sleepers(seconds)
    assert survivors == [], f"{len(survivors)} of the submission's processes outlived grading ({mode} mode)"
    if mode == "root":
        assert spawned["uid"] >= 1_000_000 and _of_uid(spawned["uid"]) == []
    assert rows[0].score == 9.0  # the rest of the submission is graded as usual
