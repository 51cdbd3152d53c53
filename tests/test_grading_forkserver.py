"""The fork server: grading kernels forked from a warm process behave like kernels the sandbox wrapper execs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from jupyter_client.connect import write_connection_file

from flowcourse_instructor.grading import forkserver, sandbox

MARKER = "colorsys"  # a stdlib module nothing else imports: present in a kernel only if the server preloaded it


def _wrapped(mode: str) -> list[str]:
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", "/tmp/k.json"]
    return sandbox.wrapper_command(sandbox.Policy(mode=mode), kernel, cwd="/tmp", connection_file="/tmp/k.json")


def test_only_the_wrapper_around_ipykernel_in_root_or_limits_mode_is_forked():
    for mode in ("root", "limits"):
        policy, kernel = forkserver._forkable(_wrapped(mode))
        assert policy["mode"] == mode and kernel[1:3] == ["-m", "ipykernel_launcher"]
    assert forkserver._forkable(_wrapped("userns")) is None  # needs `unshare --pid`: an exec
    assert forkserver._forkable([sys.executable, "-m", "ipykernel_launcher", "-f", "k.json"]) is None
    other = _wrapped("limits")
    other[other.index("--") + 3] = "some_other_kernel"
    assert forkserver._forkable(other) is None


def test_the_server_refuses_to_start_when_its_preload_pulls_in_the_answer_key():
    code = ("from flowcourse_instructor.grading.forkserver import _preload, PRELOAD\n"
            "_preload(PRELOAD)\nprint('default preload is clean')\n"
            "_preload(('flowcourse_lessons.lesson_01.key',))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "default preload is clean" in done.stdout
    assert done.returncode != 0 and "refusing to serve" in done.stderr


def _client_after(*messages):
    """A ``ForkedKernel`` whose server already sent ``messages``, all in one piece."""
    import socket

    ours, servers = socket.socketpair()
    servers.sendall(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    return forkserver.ForkedKernel(ours, start_timeout=2), servers


def test_the_client_reads_a_kernel_that_failed_at_once_from_messages_that_arrive_together():
    kernel, servers = _client_after({"pid": 4321}, {"error": "FileNotFoundError: x"}, {"exit": 70})
    assert kernel.pid == 4321 and kernel.wait(timeout=2) == 70 and kernel.error == "FileNotFoundError: x"
    kernel, servers = _client_after({"pid": 4321})
    assert kernel.poll() is None
    servers.close()  # the server died: so did its kernels
    assert kernel.wait(timeout=2) < 0
    with pytest.raises(RuntimeError, match="did not start a kernel"):
        _client_after({"exit": 70})


@pytest.fixture
def small_server(monkeypatch):
    """A server preloading only IPython and the marker (starts in about a second)."""
    server = forkserver.ForkServer(preload=("IPython", "ipykernel.kernelapp", MARKER))
    monkeypatch.setattr(forkserver, "_server", server)
    monkeypatch.setattr(forkserver, "_enabled", True)
    yield server
    forkserver.enable(False)


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


@pytest.mark.slow
def test_a_forked_kernel_is_sandboxed_preloaded_interruptible_and_its_death_is_seen(small_server, tmp_path,
                                                                                   guarded_run):
    nb, events = guarded_run(tmp_path, [
        f"import os, sys, resource\nprint('{MARKER}' in sys.modules, os.getppid(), os.environ['FLOWCOURSE_SANDBOX'],"
        " resource.getrlimit(resource.RLIMIT_CPU)[0], os.getcwd())",
        "while True:\n    pass",
        "print('after the loop')",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "print('never')",
    ], timeout=3, notebook_budget=60, sandbox_mode="limits")
    preloaded, parent, mode, cpu_limit, cwd = _stdout(nb.cells[0]).split()
    assert preloaded == "True" and int(parent) == small_server.process.pid  # forked, not a fresh interpreter
    assert mode == "limits" and int(cpu_limit) == 60 and cwd == str(tmp_path)
    assert nb.cells[1].outputs[-1].ename in ("CellTimeoutError", "KeyboardInterrupt")
    assert _stdout(nb.cells[2]) == "after the loop\n"
    assert {"cell": "c3", "event": "the kernel died while running this cell"} in events
    assert nb.cells[4].execution_count is None

    nb, _ = guarded_run(tmp_path, [f"import sys\nprint('{MARKER}' in sys.modules)"], timeout=10, notebook_budget=60,
                        sandbox_mode="limits")
    assert _stdout(nb.cells[0]) == "True\n"  # the server outlives a dead kernel


@pytest.mark.slow
def test_a_kernel_whose_grader_goes_away_is_killed(small_server, tmp_path):
    connection, _ = write_connection_file(str(tmp_path / "kernel.json"))
    policy = {**json.loads(json.dumps(sandbox.Policy(mode="limits").__dict__)), "cwd": str(tmp_path),
              "connection_file": connection}
    kernel = small_server.launch([sys.executable, "-m", "ipykernel_launcher", "-f", connection],
                                 dict(os.environ), str(tmp_path), policy)
    assert kernel.poll() is None
    kernel.conn.close()  # as if the grading worker had died
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{kernel.pid}"):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{kernel.pid}")


@pytest.mark.slow
def test_a_kernel_that_cannot_start_is_a_recorded_failure_that_says_why(small_server, tmp_path, guarded_run):
    nb, _ = guarded_run(tmp_path / "no-such-folder", ["x = 1"], timeout=10, notebook_budget=60,
                        sandbox_mode="limits")
    error = nb.metadata["flowcourse"]["kernel_error"]
    assert "FileNotFoundError" in error and "no-such-folder" in error
    assert nb.cells[0].execution_count is None
