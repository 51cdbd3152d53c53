"""Grading kernels forked from a warm process: a kernel starts in a tenth of a second instead of four.

A fresh ``ipykernel`` spends about 4 s of CPU importing IPython, torch and matplotlib before a lesson's
first line runs — most of the cost of grading a short lesson. ``flowcourse grade`` therefore gives each
worker a *fork server*: a process that imports those modules once (never the answer key: it checks) and
forks one child per kernel. The child applies the same :func:`flowcourse_instructor.grading.sandbox.apply_policy` as
the ``python -m flowcourse_instructor.grading.sandbox`` wrapper (mount namespace, fresh uid, limits), then runs
ipykernel in-process. The student's kernel is the one the wrapper would ``exec``, with modules already
imported; each kernel is a fresh fork, so nothing one student changes reaches the next.

Only the wrapper's ``root`` and ``limits`` modes are forked (``userns`` needs ``unshare --pid``, an
``exec``); any other command, or a server that failed to start, launches the usual way.

Protocol (a Unix socket per server, one connection per kernel, JSON lines): the client sends
``{"cmd", "env", "cwd", "policy"}``; the server answers ``{"pid"}``, later ``{"exit"}`` when it reaps the
kernel. A closed connection (the grader died) kills the kernel; end-of-file on stdin stops the server.

Nothing a kernel starts outlives it: when the server reaps a kernel it ends the processes the kernel left
(:func:`flowcourse_instructor.grading.sandbox.end_kernel_processes`: in ``root`` mode every process of the
kernel's uid) before it answers ``{"exit"}``. The server is a child subreaper (``PR_SET_CHILD_SUBREAPER``):
orphans of its kernels (a double-forked daemon) become its children, and once none of its kernels runs it
kills every child that is not a kernel — in ``limits`` mode the only way to find a daemon that left the
kernel's session and cleared its environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from flowcourse_instructor.grading import sandbox
from flowcourse_instructor.grading.kernelside import KernelSide, kernel_environment, kernel_side

__all__ = ["PRELOAD", "ForkServer", "ForkedKernel", "ForkProvisioner", "enable", "server"]

PRELOAD = ("IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "IPython.core.completerlib",
           "IPython.extensions.storemagic", "sqlite3", "tornado.queues",  # what a kernel imports as it boots
           "numpy", "torch", "matplotlib.pyplot", "flowcourse_instructor.grading.kernel", "flowcourse.selfcheck",
           "flowcourse.jacobian")
_INLINE = "module://matplotlib_inline.backend_inline"  # what ipykernel sets before a notebook imports pyplot


# ------------------------------------------------------------------------------------------- server side

def _preload(modules: tuple[str, ...]) -> None:
    import importlib

    os.environ.setdefault("MPLBACKEND", _INLINE)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's warning about frozen modules
    for name in modules:
        importlib.import_module(name)
    leaked = sorted(m for m in sys.modules if sandbox.is_key_module(m))
    if leaked:
        raise RuntimeError(f"preloading imported the answer key ({', '.join(leaked[:3])}): refusing to serve")


def _send(conn: socket.socket, message: dict[str, Any]) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the client is gone; the kernel is killed when its connection is seen closed


def _read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _become_kernel(request: dict[str, Any], conn: socket.socket) -> None:
    """In the forked child: sandbox this process, then run ipykernel in it (never returns)."""
    code = 70
    _send(conn, {"pid": os.getpid()})  # first, so the client reads it before any error or exit of this kernel
    try:
        os.setsid()  # its own process group: the grader's signals (interrupt, kill) reach it and its children
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        cmd, env = sandbox.apply_policy(request["policy"], request["cmd"], request["env"])
        conn.close()
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["ipykernel_launcher", *cmd[cmd.index("ipykernel_launcher") + 1:]]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - whatever happens, the child must never return into the server
        _send(conn, {"error": traceback.format_exc(limit=3)[-2000:]})
    finally:
        os._exit(code)


def serve(path: str, preload: tuple[str, ...] = PRELOAD) -> None:
    """Run the server on the Unix socket ``path`` until stdin closes.

    Started as ``python -m flowcourse_instructor.grading.forkserver``.
    """
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]  # as ipykernel_launcher does; IPython puts the notebook's folder back
    _preload(preload)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(sys.stdin.buffer, selectors.EVENT_READ)
    kernels: dict[int, socket.socket] = {}
    modes: dict[int, str] = {}  # each kernel's sandbox mode, to end what it leaves behind
    _become_subreaper()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nobody reads the pipe from now on
    while True:
        for key, _ in selector.select(timeout=0.05):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                request = json.loads(_read_line(conn) or b"{}")
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    for other in kernels.values():
                        other.close()
                    _become_kernel(request, conn)
                kernels[pid] = conn
                modes[pid] = str(request.get("policy", {}).get("mode", "limits"))
                selector.register(conn, selectors.EVENT_READ, pid)
            elif key.fileobj is sys.stdin.buffer:
                if not os.read(sys.stdin.fileno(), 4096):  # the grading worker is gone
                    for pid in kernels:
                        _kill_group(pid)
                    for pid in kernels:
                        _end_kernel(pid, modes.pop(pid))
                    _end_orphans(set())
                    return
            elif not key.fileobj.recv(4096):  # the client closed its connection: nobody drives this kernel
                selector.unregister(key.fileobj)
                _kill_group(key.data)
        for pid, status in _reaped():
            conn = kernels.pop(pid, None)
            if conn is not None:  # not an orphan of a kernel (reaped here as the subreaper)
                _end_kernel(pid, modes.pop(pid))
                if not kernels:
                    _end_orphans(set())
                _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                with contextlib.suppress(KeyError):  # unregistered already if the client closed first
                    selector.unregister(conn)
                conn.close()


def _reaped() -> list[tuple[int, int]]:
    out = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, status))


_PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Orphaned descendants of this process's kernels become its children instead of init's (Linux ≥ 3.4)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"fork server: no subreaper ({os.strerror(ctypes.get_errno())})", file=sys.stderr)


def _end_kernel(pid: int, mode: str) -> None:
    """End what the kernel ``pid`` left behind; the server keeps serving whatever happens here."""
    try:
        sandbox.end_kernel_processes(pid, mode)
    except Exception:  # noqa: BLE001 - a failed cleanup must not take the server (and later kernels) down
        traceback.print_exc()


def _end_orphans(kernels: set[int]) -> None:
    """Kill every descendant of this server that is not a kernel in ``kernels`` nor runs under one.

    Called when no kernel runs (``kernels`` empty): what is left is an orphan some kernel left behind.
    """
    me = os.getpid()
    try:
        by_pid = {p.pid: p for p in sandbox._processes()}

        def orphan(proc: Any) -> bool:
            lineage = sandbox._lineage(by_pid.get(proc.pid, proc), by_pid)
            return me in lineage[1:] and not kernels.intersection(lineage)

        sandbox._end_selected(orphan, time.monotonic() + 10)
    except Exception:  # noqa: BLE001 - as in _end_kernel
        traceback.print_exc()
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:  # the orphans just killed: reaped here, not left as zombies
            pass


def _kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
            return
        except OSError:
            continue


# ------------------------------------------------------------------------------------------- client side

class ForkedKernel:
    """The ``subprocess.Popen`` face of a kernel forked by the server (what jupyter_client's provisioner uses)."""

    stdin = stdout = stderr = None

    def __init__(self, conn: socket.socket, start_timeout: float = 30) -> None:
        self.conn, self.pid, self.returncode = conn, None, None
        self.error = ""
        self._buffer = b""
        deadline = time.monotonic() + start_timeout
        while self.pid is None and self.returncode is None and time.monotonic() < deadline:
            self._read(0.1)
        if self.pid is None:
            conn.close()
            raise RuntimeError(f"the fork server did not start a kernel {self.error}".strip())

    def _read(self, timeout: float) -> None:
        """Take what the server sent within ``timeout`` seconds (0: only what is there already)."""
        self.conn.settimeout(timeout)
        try:
            chunk = self.conn.recv(65536)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the server died: the kernel is gone with it
            self.returncode = -signal.SIGKILL if self.returncode is None else self.returncode
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            message = json.loads(line)
            self.pid = message.get("pid", self.pid)
            self.error = message.get("error", self.error)
            if "exit" in message:
                self.returncode = message["exit"]

    def poll(self) -> int | None:
        if self.returncode is None:
            self._read(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            self._read(0.1)
        self.conn.close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """A running server, owned by this process; :meth:`launch` forks a kernel from it."""

    def __init__(self, preload: tuple[str, ...] = PRELOAD, start_timeout: float = 120,
                 side: KernelSide | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="flowcourse-forkserver-")
        os.chmod(self._dir.name, 0o700)
        self.path = os.path.join(self._dir.name, "socket")
        self.side = side or kernel_side(os.getcwd())
        self.process = subprocess.Popen(
            [self.side.python, "-m", "flowcourse_instructor.grading.forkserver", self.path, *preload],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self._dir.name,
            env=kernel_environment(os.environ, self.side))
        ready = _readline_within(self.process.stdout, start_timeout)
        if ready.strip() != b"ready":
            self.close()
            raise RuntimeError(f"the fork server did not start (exit {self.process.poll()})")

    def launch(self, cmd: list[str], env: dict[str, str], cwd: str, policy: dict[str, Any]) -> ForkedKernel:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.path)
        conn.sendall(json.dumps({"cmd": cmd, "env": env, "cwd": cwd, "policy": policy}).encode() + b"\n")
        return ForkedKernel(conn)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._dir.cleanup()


def _readline_within(stream: Any, seconds: float) -> bytes:
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    return stream.readline() if selector.select(timeout=seconds) else b""


# This process's own server (a grading worker's): process-local by nature, never a policy shared with others.
_enabled = False
_server: ForkServer | None = None
_course_root = ""


def enable(on: bool = True, course_root: str | os.PathLike = "") -> None:
    """Let kernels of this process be forked from a server (started on first use); ``False`` stops it.

    ``course_root``: the course being graded, whose kernel side the server runs (default: the working folder).
    """
    global _enabled, _server, _course_root
    _enabled, _course_root = on, str(course_root or "")
    if not on and _server is not None:
        _server.close()
        _server = None


def server() -> ForkServer | None:
    """This process's server, started on first use; ``None`` when disabled or it cannot start."""
    global _server, _enabled
    if not _enabled:
        return None
    if _server is None or not _server.alive():
        try:
            _server = ForkServer(side=kernel_side(_course_root or os.getcwd()))
        except (OSError, RuntimeError):
            _enabled = False  # launch kernels the usual way from now on
            return None
    return _server


def _forkable(cmd: list[str]) -> tuple[dict[str, Any], list[str]] | None:
    """``(policy, kernel command)`` when ``cmd`` is the sandbox wrapper around ipykernel in a forkable mode."""
    try:
        start = cmd.index("flowcourse_instructor.grading.sandbox")
        policy, kernel = json.loads(cmd[start + 1]), cmd[cmd.index("--") + 1:]
    except (ValueError, IndexError, json.JSONDecodeError):
        return None
    if policy.get("mode") not in ("root", "limits") or "ipykernel_launcher" not in kernel:
        return None
    return policy, kernel


class ForkProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, launching forkable kernel commands through the fork server."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        found, fork_server = _forkable(cmd), server()
        if found is None or fork_server is None or cmd[0] != fork_server.side.python:
            return await super().launch_kernel(cmd, **kwargs)
        policy, kernel_cmd = found
        cwd = str(kwargs.get("cwd") or os.getcwd())
        env = dict(kwargs.get("env") or os.environ)
        self.process = fork_server.launch(kernel_cmd, env, cwd, policy)
        self.pid = self.pgid = self.process.pid
        self.cwd = cwd
        return self.connection_info


if __name__ == "__main__":
    serve(sys.argv[1], tuple(sys.argv[2:]) or PRELOAD)
