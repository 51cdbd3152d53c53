"""Kernel isolation: the student's kernel runs under resource limits and, where possible, cannot see the key.

The grading process starts each kernel through a kernel manager (``preprocessors.SandboxKernelManager``)
that prefixes the kernel's command with ``python -m flowcourse_instructor.grading.sandbox POLICY -- CMD…``. That
wrapper prepares the process and then ``exec``-s the kernel (same pid, so interrupts and kills from
nbclient still reach it):

``root``    (the grader runs as root, e.g. on a grading server) — a private mount namespace in which the
            course root, the answer key's repository and the grader's home are replaced by empty tmpfs,
            with only the virtual environment, the Python installation, the non-reference ``flowcourse``
            package, extra spec modules and the notebook's own folder bound back read-only; the answer key
            folder is hidden again inside them; private ``/tmp`` and ``/dev/shm``. Then the kernel drops
            to a fresh unprivileged uid (unique per kernel, so kernels cannot signal or trace each other).
``userns``  (unprivileged, user namespaces available) — the same mounts inside ``unshare --user --mount
            --pid``, then a nested user namespace drops every capability so the mounts cannot be undone;
            a private ``/proc`` hides every other process. The kernel is the namespace's init (pid 1), so
            it cannot SIGKILL itself; signals from the grader still reach it.
``limits``  (neither available) — resource limits only; the trusted comparison still holds, but the
            kernel can read files the grader can read. The grade report says which mode ran.

In every mode: address-space, CPU-time (the per-notebook CPU budget), file-size, process and core-dump
limits (``setrlimit``). The kernel runs in the notebook's own folder (read-only when isolated); ``HOME``
and ``/tmp`` are private and writable.

Once a kernel has ended, :func:`end_kernel_processes` ends whatever it started (a background child, a
process in a new session, a double-forked daemon), so that nothing waits on the server for the next
student's kernel: every process of the kernel's uid in ``root`` mode, the whole pid namespace in ``userns``
mode, and in ``limits`` mode what can be found without privileges (see there for what that misses).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Policy", "detect_mode", "default_policy", "wrapper_command", "apply_policy", "reference_package",
           "is_key_module", "kernel_uid", "end_kernel_processes", "MODES"]

MODES = ("root", "userns", "limits")
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_ST_FLAGS = {os.ST_NOSUID: _MS_NOSUID, os.ST_NODEV: _MS_NODEV, os.ST_NOEXEC: _MS_NOEXEC}


def is_key_module(name: str) -> bool:
    """True for a lesson's answer key module, ``flowcourse_lessons.lesson_NN.key`` (or inside it)."""
    parts = name.split(".")
    return len(parts) >= 3 and parts[0] == reference_package() and parts[2] == "key"


def reference_package() -> str:
    """The package of the lessons' answer keys, which kernels must never see (``flowcourse_lessons.lesson_NN.key``)."""
    return "flowcourse_lessons"


@dataclass
class Policy:
    """What the wrapper does before ``exec``-ing the kernel (JSON-serialisable)."""

    mode: str = "limits"
    memory_mb: int = 4096
    cpu_seconds: int = 600
    file_mb: int = 64
    nproc: int = 512
    hide: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def _userns_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, "--user", "--map-root-user", "--mount", "--pid", "--fork", "true"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _root_works() -> bool:
    if os.geteuid() != 0:
        return False
    try:  # a child process tries the mount namespace, so the grader's own namespace is never touched
        code = "import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).unshare(0x00020000) != 0)"
        # generous: on a loaded machine starting Python takes seconds, and a timeout here means weaker isolation
        return subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def detect_mode(requested: str = "auto") -> str:
    """The strongest isolation available: ``root``, else ``userns``, else ``limits``.

    A requested mode other than ``"auto"`` is returned as is (``ValueError`` for an unknown one).
    """
    if requested != "auto":
        if requested not in MODES:
            raise ValueError(f"sandbox mode must be one of {MODES} or 'auto', got {requested!r}")
        return requested
    if _root_works():
        return "root"
    return "userns" if _userns_works() else "limits"


def default_policy(mode: str, course_root: str | os.PathLike, **limits: int) -> Policy:
    """The policy for grading the course at ``course_root``.

    Hidden: the course root (solutions with their keys, gradebook, submissions, …), the repository, the
    grader's home. Kept (read-only): the kernel's environment and its Python installation, and the kernel side
    staged for it (:mod:`.kernelside`: the check runner, the registry, each lesson's ``checks.py``) — never a
    lesson's ``key.py``.
    """
    import flowcourse_lessons
    from flowcourse_instructor.grading.kernelside import kernel_side

    side = kernel_side(course_root)
    hide = [Path(course_root).resolve(), flowcourse_lessons.COURSE_ROOT]
    home = Path.home().resolve()
    if home != Path("/"):
        hide.append(home)
    interpreter = Path(os.path.realpath(side.python)).parent.parent  # the Python installation a venv points to
    keep = [Path(side.prefix), interpreter, Path(sys.base_prefix).resolve(), Path(side.path).parent]
    return Policy(mode=mode, hide=sorted({str(p) for p in hide}), keep=sorted({str(p) for p in keep}), **limits)


def wrapper_command(policy: Policy, cmd: list[str], *, cwd: str, connection_file: str,
                    python: str = sys.executable) -> list[str]:
    """The command that runs the kernel command ``cmd`` under ``policy`` (stdlib only: starts fast).

    ``python`` runs the wrapper: the kernel's own interpreter, with this package on its path.
    """
    spec = {**asdict(policy), "cwd": str(Path(cwd).resolve()), "connection_file": os.path.realpath(connection_file)}
    wrapper = [python, "-m", "flowcourse_instructor.grading.sandbox", json.dumps(spec), "--"]
    if policy.mode == "userns":
        unshare = shutil.which("unshare") or "unshare"
        wrapper = [unshare, "--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child",
                   "--mount-proc", *wrapper]
    return [*wrapper, *cmd]


# --------------------------------------------------------------------------------------------------
# After the kernel: nothing it started outlives it (runs in the grader, or in the fork server)

_log = logging.getLogger(__name__)
_KERNEL_MARK = "FLOWCOURSE_KERNEL_PID"  # limits mode: in the environment of the kernel and what it starts
_UID_BASE = 1_000_000


def kernel_uid(kernel_pid: int) -> int:
    """The uid a ``root``-mode kernel runs as: fresh per kernel, derived from the pid that applied the policy."""
    return _UID_BASE + kernel_pid


@dataclass
class _Proc:
    pid: int
    ppid: int
    pgrp: int
    sid: int
    state: str
    uids: tuple[int, ...]  # real, effective, saved, filesystem


def _process(pid: int) -> _Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": the name may hold spaces and brackets
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    return _Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], tuple(map(int, uids)))


def _processes() -> list[_Proc]:
    """Every live process of this pid namespace (zombies left out: they are dead and run nothing)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            proc = _process(int(entry))
            if proc is not None and proc.state not in ("Z", "X", "x"):
                out.append(proc)
    return out


def _ancestors() -> set[int]:
    """This process and its ancestors: never signalled, whatever a selection says."""
    out, pid = set(), os.getpid()
    while pid > 0 and pid not in out:
        out.add(pid)
        proc = _process(pid)
        pid = proc.ppid if proc else 0
    return out


def _signal(pid: int, signum: int, still: Any) -> bool:
    """Send ``signum`` to ``pid`` if ``still(proc)`` holds for it, without a window for pid reuse (pidfd)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None  # no pidfd: kernels before 5.3; the window between the check and the kill is microseconds
    try:
        proc = _process(pid)
        if proc is None or not still(proc):
            return False
        if fd is not None:
            signal.pidfd_send_signal(fd, signum)
        else:
            os.kill(pid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if fd is not None:
            os.close(fd)


def _end_selected(select: Any, deadline: float) -> int:
    """Stop, then kill, every live process ``select(proc)`` picks, round after round until none is left.

    Stopped processes cannot fork, so a fork bomb loses the race. Returns how many processes it killed.
    """
    spared, killed = _ancestors(), set()
    while True:
        chosen = [p.pid for p in _processes() if p.pid not in spared and select(p)]
        if not chosen:
            return len(killed)
        if time.monotonic() > deadline:
            _log.warning("could not end %d kernel process(es) in time: %s", len(chosen), chosen[:10])
            return len(killed)
        for pid in chosen:
            _signal(pid, signal.SIGSTOP, select)
        for pid in chosen:
            if _signal(pid, signal.SIGKILL, select):
                killed.add(pid)
        time.sleep(0.005)


def _of_uid(uid: int) -> Any:
    return lambda proc: uid in proc.uids[:3]  # real, effective or saved: a setuid program it ran too


def _kill_all_as(uid: int) -> bool:
    """``kill(-1, SIGKILL)`` from a short-lived process running as ``uid``: every process that uid may signal.

    One system call, so a fork bomb cannot outrun it the way it outruns a list of pids. ``False`` when the
    helper could not run (or a process of the uid killed it first).
    """
    try:
        done = subprocess.run(["/bin/sh", "-c", "kill -9 -1"], user=uid, group=uid, extra_groups=[], env={},
                              cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode in (0, 1)  # 1: there was nothing left to kill


def _end_uid(uid: int, deadline: float) -> int:
    """Kill every process of ``uid`` (root only): the helper's ``kill(-1)`` until /proc shows none."""
    select, seen = _of_uid(uid), set()
    while True:
        alive = {p.pid for p in _processes() if select(p)}
        if not alive:
            return len(seen)
        seen |= alive
        if time.monotonic() > deadline:
            _log.warning("could not end %d process(es) of uid %d in time", len(alive), uid)
            return len(seen)
        if not _kill_all_as(uid):  # e.g. the uid is at its process limit: stop and kill pid by pid as root
            _end_selected(select, min(deadline, time.monotonic() + 1))
        time.sleep(0.002)


def _marked(kernel_pid: int) -> set[int]:
    """Live processes whose environment carries the kernel's mark (limits mode: a same-uid search)."""
    mark = f"{_KERNEL_MARK}={kernel_pid}".encode()
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if mark in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    out.add(int(entry))
            except OSError:
                continue
    return out


def _lineage(proc: _Proc | None, by_pid: dict[int, _Proc]) -> list[int]:
    """``proc``'s pid and its ancestors', nearest first, as far as the snapshot ``by_pid`` knows them."""
    out: list[int] = []
    while proc is not None and proc.pid not in out:
        out.append(proc.pid)
        proc = by_pid.get(proc.ppid)
    return out


def _limits_selector(kernel_pid: int) -> Any:
    """Limits mode: the kernel, its descendants, its process group and session, whatever carries its mark."""
    me, marked = os.getuid(), _marked(kernel_pid)
    by_pid = {p.pid: p for p in _processes()}

    def select(proc: _Proc) -> bool:
        if me != 0 and me not in proc.uids[:3]:
            return False
        return (kernel_pid in (proc.pid, proc.pgrp, proc.sid) or proc.pid in marked
                or kernel_pid in _lineage(by_pid.get(proc.pid, proc), by_pid))

    return select


def _end_limits(kernel_pid: int, deadline: float) -> int:
    total = 0
    while True:  # a fresh snapshot each time: a marked process found late (forked meanwhile) is caught next round
        killed = _end_selected(_limits_selector(kernel_pid), deadline)
        total += killed
        if not killed or time.monotonic() > deadline:
            return total


def _end_namespace(kernel_pid: int, deadline: float) -> int:
    """Userns mode: ``kernel_pid`` is ``unshare``; its child is the pid namespace's init. Killing that init
    kills every process of the namespace (the kernel does it); after the kernel has ended, init is gone and so
    is the namespace (``--kill-child``: it dies with ``unshare``). Returns how many processes the namespace had."""
    inits = [p for p in _processes() if p.ppid == kernel_pid]
    total = 0
    for init in inits:
        try:
            namespace = os.readlink(f"/proc/{init.pid}/ns/pid")
        except OSError:
            continue

        def inside(proc: _Proc, namespace: str = namespace) -> bool:
            try:
                return os.readlink(f"/proc/{proc.pid}/ns/pid") == namespace
            except OSError:
                return False

        total += len([p for p in _processes() if inside(p)])
        _signal(init.pid, signal.SIGKILL, lambda proc, pid=init.pid: proc.pid == pid)
        while any(inside(p) for p in _processes()) and time.monotonic() < deadline:
            time.sleep(0.005)
    return total


def end_kernel_processes(kernel_pid: int, mode: str, timeout: float = 10) -> int:
    """End every process the kernel ``kernel_pid`` left behind; return how many it killed.

    Call it once the kernel has been shut down (it also kills the kernel if it still runs), with the pid its
    kernel manager launched and the sandbox ``mode`` it ran in. What each mode catches:

    ``root``    everything: every process of the kernel's own uid (:func:`kernel_uid`), whatever session,
                group or parent it has — even a fork bomb, through ``kill(-1)`` from a helper running as that uid,
                repeated until ``/proc`` shows no live process of the uid (at most ``timeout`` seconds).
                Not caught: only a process that became another user, through a setuid-root program that
                then changes all its uids (none is reachable in the kernel's mount namespace unless the
                system has one, e.g. ``su`` with a known password).
    ``userns``  everything, by construction: the kernel's processes live in its pid namespace, which dies
                with its init (the kernel), and init dies with ``unshare --kill-child``. This only kills
                the namespace's init if ``unshare`` still runs.
    ``limits``  what is findable without privileges (the kernel runs as the grader's uid): the kernel, its
                descendants, its process group and session, and any process whose environment still
                carries ``FLOWCOURSE_KERNEL_PID=<pid>``. Not caught: a process that left the session
                (``setsid``), was orphaned (double fork) *and* dropped the mark from its environment
                (``env -i``, ``execve`` with a clean environment). Kernels forked by the fork server are
                also covered there: the server is their subreaper and kills its orphaned descendants once
                no kernel of it runs.
    """
    deadline = time.monotonic() + timeout
    if mode == "root":
        return _end_uid(kernel_uid(kernel_pid), deadline)
    if mode == "userns":
        return _end_namespace(kernel_pid, deadline)
    if mode == "limits":
        return _end_limits(kernel_pid, deadline)
    raise ValueError(f"sandbox mode must be one of {MODES}, got {mode!r}")


# --------------------------------------------------------------------------------------------------
# The wrapper (runs in the kernel's process, before exec)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _bind_readonly(source: str, target: str) -> None:
    _mount(source, target, None, _MS_BIND | _MS_REC)
    locked = 0  # flags the underlying mount already has must be kept, or a remount in a userns fails
    st = os.statvfs(source)
    for st_flag, ms_flag in _ST_FLAGS.items():
        if st.f_flag & st_flag:
            locked |= ms_flag
    _mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | locked)


def _tmpfs(target: str, mode: str = "755") -> None:
    _mount("tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"mode={mode},size=256m")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


_PRIVATE = ("/tmp", "/dev/shm")  # replaced by fresh tmpfs: nothing the grader or other kernels left there


def _apply_mounts(hide: list[str], keep: list[str]) -> None:
    """Replace every hidden tree by an empty tmpfs, bind the kept paths back read-only, re-hide inside."""
    _check(_libc.unshare(_CLONE_NEWNS), "unshare mount namespace")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    hide = [h for h in [*hide, *_PRIVATE] if os.path.isdir(h)]
    keep = [k for k in keep if os.path.exists(k)]
    outer = sorted(h for h in hide if not any(_inside(h, o) and h != o for o in hide))
    # originals stay reachable through a staging tmpfs outside every hidden tree until the binds are done
    staging = next(d for d in ("/mnt", "/media", "/srv", "/opt", "/boot")
                   if os.path.isdir(d) and not any(_inside(d, h) or _inside(h, d) for h in [*outer, *keep]))
    _tmpfs(staging, "700")
    for n, root in enumerate(outer):
        stage = os.path.join(staging, str(n))
        os.mkdir(stage)
        _mount(root, stage, None, _MS_BIND | _MS_REC)
        _tmpfs(root, "1777" if root in _PRIVATE else "755")
        for k in sorted((k for k in keep if _inside(k, root)), key=len):
            if any(_inside(k, other) and k != other for other in keep if _inside(other, root)):
                continue  # already visible through an enclosing kept path
            source = os.path.join(stage, os.path.relpath(k, root))
            if os.path.isdir(source):
                os.makedirs(k, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(k), exist_ok=True)
                Path(k).touch()
            _bind_readonly(source, k)
    _check(_libc.umount2(staging.encode(), _MNT_DETACH), f"umount {staging}")
    for h in hide:  # hidden folders inside kept ones (the answer key inside the package)
        if h not in outer and any(_inside(h, k) for k in keep):
            _tmpfs(h)


def _set_limits(policy: dict[str, Any]) -> None:
    mib = 1024 * 1024
    limits = {
        resource.RLIMIT_AS: policy["memory_mb"] * mib,
        resource.RLIMIT_CPU: policy["cpu_seconds"],
        resource.RLIMIT_FSIZE: policy["file_mb"] * mib,
        resource.RLIMIT_NPROC: policy["nproc"],
        resource.RLIMIT_CORE: 0,
    }
    for which, soft in limits.items():
        _, hard = resource.getrlimit(which)
        # a hard limit a bit above the soft one: SIGXCPU first (catchable), SIGKILL later
        new_hard = soft + 5 if which == resource.RLIMIT_CPU else soft
        if hard != resource.RLIM_INFINITY:
            soft, new_hard = min(soft, hard), min(new_hard, hard)
        resource.setrlimit(which, (soft, new_hard))


def _private_home(owner: tuple[int, int] | None) -> str:
    home = "/tmp/home"
    os.makedirs(home, exist_ok=True)
    if owner is not None:
        os.chown(home, *owner)
    return home


def _write_connection(data: bytes, owner: tuple[int, int] | None) -> str:
    path = "/tmp/kernel-connection.json"
    Path(path).write_bytes(data)
    if owner is not None:
        os.chown(path, *owner)
    os.chmod(path, 0o600)
    return path


def _drop_to_nested_user(uid: int) -> None:
    """In a user namespace where we are root: enter a nested one as ``uid`` with no capabilities."""
    outer_uid, outer_gid = os.getuid(), os.getgid()
    _check(_libc.unshare(_CLONE_NEWUSER), "unshare nested user namespace")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {outer_uid} 1")
    Path("/proc/self/gid_map").write_text(f"{uid} {outer_gid} 1")
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def apply_policy(policy: dict[str, Any], cmd: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Apply ``policy`` to this process; return the kernel command and environment to run under it.

    Mounts, uid and limits change this process for good: call it in the process that becomes the kernel
    (the wrapper before ``exec``, or a child of :mod:`flowcourse_instructor.grading.forkserver`).
    """
    env = dict(env)
    mode = policy["mode"]
    if mode in ("root", "userns"):
        data = Path(policy["connection_file"]).read_bytes()
        keep = [*policy["keep"], policy["cwd"]]
        _apply_mounts(policy["hide"], keep)
        # root mode: a fresh uid per kernel; userns: files we create already belong to the nested user
        uid = gid = kernel_uid(os.getpid()) if mode == "root" else 1000
        owner = (uid, gid) if mode == "root" else None
        conn = _write_connection(data, owner)
        cmd = [conn if a == policy["connection_file"] else a for a in cmd]
        home = _private_home(owner)
        env.update(HOME=home, TMPDIR="/tmp", MPLCONFIGDIR=home, IPYTHONDIR=f"{home}/.ipython",
                   JUPYTER_RUNTIME_DIR=home, FLOWCOURSE_SANDBOX=mode)
        os.chdir(policy["cwd"])
        _set_limits(policy)
        if mode == "root":
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            _die_with_parent()  # after the uid change, which clears the setting
        else:
            _drop_to_nested_user(uid)  # userns: unshare --kill-child ends the namespace with its parent
    else:  # the kernel's descendants inherit the mark, so that they can be found once it has ended
        env.update(FLOWCOURSE_SANDBOX=mode, **{_KERNEL_MARK: str(os.getpid())})
        _set_limits(policy)
        _die_with_parent()
    return cmd, env


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """SIGKILL this process when the process that started it dies (a grading worker or fork server killed with
    SIGKILL cannot end its kernels itself; without this they would wait forever, owned by nobody)."""
    parent = os.getppid()
    if _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not Linux: the grader ends its kernels as usual
    if os.getppid() != parent:  # the parent died before the setting took effect
        os._exit(70)


def run_wrapper(policy: dict[str, Any], cmd: list[str]) -> None:
    """Apply ``policy`` to this process and ``exec`` ``cmd`` (never returns)."""
    cmd, env = apply_policy(policy, cmd, dict(os.environ))
    os.execvpe(cmd[0], cmd, env)


def main(argv: list[str] | None = None) -> None:
    """``python -m flowcourse_instructor.grading.sandbox POLICY_JSON -- CMD…``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -m flowcourse_instructor.grading.sandbox POLICY_JSON -- CMD...")
    policy = json.loads(argv[0])
    policy.setdefault("cwd", os.getcwd())
    try:
        run_wrapper(policy, argv[2:])
    except OSError as exc:  # refuse to run unsandboxed: the kernel never starts and the grade says why
        print(f"flowcourse sandbox ({policy.get('mode')}) could not start the kernel: {exc}", file=sys.stderr)
        raise SystemExit(70) from None


if __name__ == "__main__":
    main()
