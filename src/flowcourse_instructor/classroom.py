"""A class on JupyterHub on one machine: ``make class`` / ``make class-stop`` / ``make class-clean``.

Layout of a class root (default ``/srv/flowcourse-class``, mode 711 so students can reach the exchange only)::

    hub/        mode 700: the hub's database, cookie secret, pid files, log, the accounts this class created
    course/     mode 700: the instructor's course root (solutions/ with the key, gradebook.db, submitted/, ...)
    exchange/   mode 777 (nbgrader's documented exchange): exchange/flowcourse/{outbound,inbound,feedback}

Students are local Unix accounts (homes mode 700) whose JupyterLab runs from the student environment
(``make class-env``), configured by ``~/.jupyter/nbgrader_config.py`` (course id and exchange root). The hub,
its proxy and every server listen on 127.0.0.1. The instructor side (collect, ``flowcourse grade``, feedback,
``nbgrader release_feedback``) runs as root in ``course/``: :meth:`Classroom.instructor`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Classroom", "ClassError", "readable_by", "REPO"]

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "classroom" / "jupyterhub_config.py"
COURSE_ID = "flowcourse"


class ClassError(RuntimeError):
    """Why the class cannot start (shown to the instructor as is)."""


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _pids_of(uids: set[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid in uids:
                    pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie is dead for our purposes
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            return False
    return True


def _terminate(pids: Iterable[int], *, group: bool = False, wait: float = 10.0) -> None:
    pids = [p for p in pids if _alive(p)]
    kill = os.killpg if group else os.kill
    for pid in pids:
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(OSError):
                kill(pid, signal.SIGKILL)


def readable_by(user: str, paths: Sequence[str | os.PathLike], *, listing: bool = False) -> list[str]:
    """Which of ``paths`` the Unix account ``user`` can read (files) or list (folders), run as that account.

    Each path is tried in a separate process with the account's uid, gid and no other group (as root:
    ``subprocess`` drops the privileges before running ``cat``/``ls``). Returns the readable ones.
    """
    entry = pwd.getpwnam(user)
    readable = []
    for path in paths:
        argv = ["ls", "-A", str(path)] if listing or Path(path).is_dir() else ["cat", str(path)]
        done = subprocess.run(argv, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[], cwd="/",
                              env={"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir}, capture_output=True, timeout=30)
        if done.returncode == 0:
            readable.append(str(path))
    return readable


@dataclass
class Classroom:
    """One class: its root folder, the student environment, the proxy, the port and the accounts."""

    root: Path = Path("/srv/flowcourse-class")
    env: Path = Path("/opt/flowcourse/student-env")
    proxy: Path = Path("/opt/flowcourse/proxy/node_modules/.bin/configurable-http-proxy")
    port: int = 8000
    prefix: str = "fc"
    students: tuple[str, ...] = ("alice", "bob", "carol")
    instructor: str = "instructor"
    password: str = "flowcourse-class"
    source: Path = REPO
    hub_python: Path = field(default_factory=lambda: Path(sys.executable))

    def __post_init__(self) -> None:
        self.root, self.env, self.proxy = Path(self.root), Path(self.env), Path(self.proxy)

    # -------------------------------------------------------------------------------------------- names
    @property
    def student_accounts(self) -> list[str]:
        return [f"{self.prefix}-{s}" for s in self.students]

    @property
    def instructor_account(self) -> str:
        return f"{self.prefix}-{self.instructor}"

    @property
    def accounts(self) -> list[str]:
        return [*self.student_accounts, self.instructor_account]

    @property
    def hub_dir(self) -> Path:
        return self.root / "hub"

    @property
    def course(self) -> Path:
        return self.root / "course"

    @property
    def exchange(self) -> Path:
        return self.root / "exchange"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def home(self, account: str) -> Path:
        return Path(pwd.getpwnam(account).pw_dir)

    # ------------------------------------------------------------------------------------------ checks
    def preflight(self) -> None:
        """Raise :class:`ClassError` saying what is missing: root, npm/the proxy, the student env, free ports."""
        if os.geteuid() != 0:
            raise ClassError("run as root: the class creates a local Unix account per student and the hub "
                             "starts each student's server as that account (sudo make class)")
        if not self.proxy.is_file():
            if shutil.which("npm") is None:
                raise ClassError("npm is missing: the hub's proxy is the node package configurable-http-proxy "
                                 "(apt-get install nodejs npm, then make class)")
            raise ClassError(f"{self.proxy} is missing: run `make class-proxy` (npm install configurable-http-proxy)")
        if not (self.env / "bin" / "jupyterhub-singleuser").is_file():
            raise ClassError(f"no student environment at {self.env}: run `make class-env`")
        try:
            import jupyterhub  # noqa: F401
        except ImportError as e:
            raise ClassError("jupyterhub is not installed in the instructor venv: run `make class-hub`") from e
        if self.running():
            raise ClassError(f"a class is already running from {self.root} (pid {self._pid('jupyterhub.pid')}): "
                             "make class-stop")
        taken = [p for p in (self.port, self.port + 1, self.port + 2) if not _port_free(p)]
        if taken:
            raise ClassError(f"port {', '.join(map(str, taken))} on 127.0.0.1 is taken (the hub needs "
                             f"{self.port}, {self.port + 1}, {self.port + 2}): stop what uses it or "
                             f"choose another with CLASS_PORT=… make class")

    # ---------------------------------------------------------------------------------------- accounts
    def _created(self) -> Path:
        return self.hub_dir / "accounts.txt"

    def create_accounts(self) -> list[str]:
        """Create the accounts that do not exist yet (homes mode 700); give each its nbgrader config."""
        created = []
        for account in self.accounts:
            if not _exists(account):
                subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", account],
                               check=True, capture_output=True)
                created.append(account)
                with open(self._created(), "a") as f:
                    f.write(account + "\n")
            entry = pwd.getpwnam(account)
            home = Path(entry.pw_dir)
            home.chmod(0o700)
            jupyter = home / ".jupyter"
            jupyter.mkdir(exist_ok=True)
            (jupyter / "nbgrader_config.py").write_text(
                "c = get_config()  # written by make class: this class's course and exchange\n"
                f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
                f"c.Exchange.root = {str(self.exchange)!r}\n"
                f"c.Exchange.path_includes_course = False\n")
            for path in (jupyter, jupyter / "nbgrader_config.py"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return created

    def remove_accounts(self) -> None:
        """Delete the accounts this class created (and their homes); kill their processes first."""
        listed = self._created().read_text().split() if self._created().is_file() else []
        accounts = [a for a in listed if _exists(a)]
        _terminate(_pids_of({pwd.getpwnam(a).pw_uid for a in accounts}), wait=5)
        for account in accounts:
            subprocess.run(["userdel", "--remove", account], capture_output=True)
            if _exists(account):  # userdel refuses while a process of the account lives: once more
                _terminate(_pids_of({pwd.getpwnam(account).pw_uid}), wait=2)
                subprocess.run(["userdel", "--remove", "--force", account], capture_output=True)
        with contextlib.suppress(FileNotFoundError):
            self._created().unlink()

    # ------------------------------------------------------------------------------------------ course
    def prepare_course(self, lessons: Sequence[str]) -> None:
        """The course root (copy of solutions/ and nbgrader_config.py), the exchange, the lessons released."""
        from flowcourse_instructor.grading.pipeline import _api, _quiet, prepare_workspace

        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        self.hub_dir.mkdir(exist_ok=True)
        self.hub_dir.chmod(0o700)
        self.exchange.mkdir(exist_ok=True)
        self.exchange.chmod(0o777)
        prepare_workspace(self.source, self.course)
        self.course.chmod(0o700)
        with open(self.course / "nbgrader_config.py", "a") as f:
            f.write(f"\n# the class's exchange (make class)\nc = get_config()  # noqa: F821\n"
                    f"c.Exchange.root = {str(self.exchange)!r}\nc.Exchange.path_includes_course = False\n"
                    "# grade on submit (the hub's `grader` service): full feedback at once, 3 graded submissions "
                    "an hour\nc.GradingService.feedback = 'full'\nc.GradingService.limit = 3\n"
                    "c.GradingService.window_minutes = 60\nc.GradingService.poll_seconds = 1.0\n")
        api = _api(self.course)
        for lesson in lessons:
            result = _quiet(lambda lesson=lesson: api.generate_assignment(lesson, force=True, create=True))
            if not result["success"]:
                raise ClassError(f"generate_assignment {lesson} failed:\n{result.get('log')}\n{result.get('error')}")
            self.nbgrader("release_assignment", lesson, "--force")

    def nbgrader(self, *args: str) -> str:
        """Run ``nbgrader ARGS`` as the instructor (root) in the course root; return its output."""
        return self._run([str(Path(sys.executable).parent / "nbgrader"), *args])

    def flowcourse(self, *args: str) -> str:
        """Run ``flowcourse ARGS`` (the trusted grader) in the course root; return its output."""
        return self._run([str(Path(sys.executable).parent / "flowcourse"), *args])

    def _run(self, argv: list[str]) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCOURSE_COURSE")}
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        done = subprocess.run(argv, cwd=self.course, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise ClassError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-3000:]}")
        return done.stdout + done.stderr

    # --------------------------------------------------------------------------------------------- hub
    def _pid(self, name: str) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.hub_dir / name).read_text().strip())
        return None

    def running(self) -> bool:
        pid = self._pid("jupyterhub.pid")
        return pid is not None and _alive(pid)

    def start_hub(self, timeout: float = 90.0) -> None:
        """Start the hub (in its own session, detached) and wait until it answers."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FLOWCOURSE_", "JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
        env.update(FLOWCOURSE_CLASS_PORT=str(self.port), FLOWCOURSE_CLASS_ENV=str(self.env),
                   FLOWCOURSE_CLASS_PROXY=str(self.proxy), FLOWCOURSE_CLASS_PASSWORD=self.password,
                   FLOWCOURSE_CLASS_STUDENTS=" ".join(self.student_accounts),
                   FLOWCOURSE_CLASS_INSTRUCTORS=self.instructor_account,
                   FLOWCOURSE_CLASS_COURSE=str(self.course),
                   FLOWCOURSE_CLASS_GRADER_BIN=str(Path(sys.executable).parent),
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")]))
        log = open(self.hub_dir / "jupyterhub.log", "ab")  # noqa: SIM115 - handed to the hub process
        proc = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(CONFIG)],
                                cwd=self.hub_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        (self.hub_dir / "jupyterhub.pid").write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ClassError(f"the hub exited ({proc.returncode}):\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.url}/hub/health", timeout=2) as r:
                    if r.status == 200:
                        return
            time.sleep(0.5)
        raise ClassError(f"the hub did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.hub_dir / "jupyterhub.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(self, lessons: Sequence[str]) -> None:
        self.preflight()
        self.prepare_course(lessons)
        self.create_accounts()
        try:
            self.start_hub()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the hub, its proxy and every server of the class's accounts; no process is left behind."""
        hub = self._pid("jupyterhub.pid")
        if hub is not None and _alive(hub):
            _terminate([hub], group=True, wait=15)
        if hub is not None:
            with contextlib.suppress(ChildProcessError, OSError):  # started by this process: reap it
                os.waitpid(hub, os.WNOHANG)
        grader = self._grader_pid()
        if grader is not None:  # the hub stops its service; if it could not: SIGTERM closes its Dask workers too
            _terminate([grader], wait=20)
        proxy = self._pid("proxy.pid")
        if proxy is not None and _alive(proxy):
            with contextlib.suppress(OSError):
                if "configurable-http-proxy" in Path(f"/proc/{proxy}/cmdline").read_text(errors="replace"):
                    _terminate([proxy], wait=5)
        accounts = [a for a in self.accounts if _exists(a)]
        _terminate(_pids_of({pwd.getpwnam(a).pw_uid for a in accounts}), wait=5)
        for name in ("jupyterhub.pid", "proxy.pid"):
            with contextlib.suppress(FileNotFoundError):
                (self.hub_dir / name).unlink()

    def clean(self) -> None:
        """:meth:`stop`, then delete the accounts this class created and the class root."""
        self.stop()
        self.remove_accounts()
        shutil.rmtree(self.root, ignore_errors=True)

    def _grader_pid(self) -> int | None:
        from flowcourse_instructor.grading.service import PID_FILE

        with contextlib.suppress(OSError, ValueError):
            pid = int((self.course / PID_FILE).read_text().strip())
            if _alive(pid) and "serve" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                return pid
        return None

    def leftovers(self) -> list[str]:
        """Processes still running for this class (its accounts' processes, the hub, the proxy)."""
        uids = {pwd.getpwnam(a).pw_uid for a in self.accounts if _exists(a)}
        found = [f"pid {p} (uid of a class account)" for p in _pids_of(uids)]
        for name in ("jupyterhub.pid", "proxy.pid"):
            pid = self._pid(name)
            if pid is not None and _alive(pid):
                found.append(f"pid {pid} ({name})")
        grader = self._grader_pid()
        if grader is not None:
            found.append(f"pid {grader} (the grading service)")
        return found

    def banner(self, lessons: Sequence[str]) -> str:
        return "\n".join([
            f"A flowcourse class is running at {self.url}/  (127.0.0.1 only)",
            f"  students:   {', '.join(self.student_accounts)}",
            f"  instructor: {self.instructor_account} (hub admin)",
            f"  password (every account): {self.password}",
            f"  released to the exchange {self.exchange}: {', '.join(lessons)}",
            f"  course root (instructor, root only): {self.course}",
            f"  hub log: {self.hub_dir / 'jupyterhub.log'}",
            "Each submission is graded as it arrives (the hub's `grader` service, `flowcourse serve`) and its "
            "feedback released: students press Fetch Feedback. Class report: "
            f"{self.course / 'reports'}. To collect and re-grade by hand (as root, in the course root):",
            f"  cd {self.course} && {Path(sys.executable).parent}/nbgrader collect LESSON && "
            f"{Path(sys.executable).parent}/flowcourse grade && {Path(sys.executable).parent}/flowcourse feedback "
            f"&& {Path(sys.executable).parent}/nbgrader release_feedback LESSON",
            "Stop it with `make class-stop` (no process left); `make class-clean` also deletes the accounts "
            "and the class root.",
        ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowcourse_instructor.classroom",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="/srv/flowcourse-class")
    parser.add_argument("--env", default="/opt/flowcourse/student-env")
    parser.add_argument("--proxy", default="/opt/flowcourse/proxy/node_modules/.bin/configurable-http-proxy")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--lessons", nargs="+", default=["01-change-of-variables"])
    sub.add_parser("stop")
    sub.add_parser("clean")
    args = parser.parse_args(argv)
    room = Classroom(root=Path(args.root), env=Path(args.env), proxy=Path(args.proxy),
                     port=getattr(args, "port", 8000))
    try:
        if args.command == "start":
            room.start(args.lessons)
            print(room.banner(args.lessons))
        elif args.command == "stop":
            if os.geteuid() != 0:
                raise ClassError("run as root (the class's servers run as its students' accounts)")
            room.stop()
            left = room.leftovers()
            print("class stopped" + (f"; still running: {', '.join(left)}" if left else ": no process left"))
            return 1 if left else 0
        else:
            if os.geteuid() != 0:
                raise ClassError("run as root (it deletes the class's Unix accounts)")
            room.clean()
            print(f"class stopped; its accounts and {room.root} are removed")
    except ClassError as e:
        print(f"make class: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

