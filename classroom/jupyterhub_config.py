"""JupyterHub configuration of a flowcourse class on one machine (`make class`; classroom/DEPLOY.md).

The hub runs as root from the instructor's venv; every student is a local Unix account whose server is started by
the LocalProcessSpawner as that account, from the student environment (`make class-env`: the student wheel,
JupyterLab, nbgrader's student-side extensions, jupyterhub-singleuser; never the answer key). Everything listens on
127.0.0.1. `flowcourse_instructor.classroom` sets the FLOWCOURSE_CLASS_* variables below and starts the hub.

The hub also runs the class's grading service (`flowcourse serve`, a JupyterHub-managed service, as root like the
hub): it grades each submission as it reaches the exchange and releases its feedback, so a student's
Fetch Feedback shows it within seconds (rules per lesson in the course's nbgrader_config.py: DEPLOY.md).
"""

import os

c = get_config()  # noqa: F821 - provided by JupyterHub
env = os.environ
port = int(env.get("FLOWCOURSE_CLASS_PORT", "8000"))
student_env = env["FLOWCOURSE_CLASS_ENV"]
students = env.get("FLOWCOURSE_CLASS_STUDENTS", "").split()
instructors = env.get("FLOWCOURSE_CLASS_INSTRUCTORS", "").split()

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = port
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = port + 1
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port + 2}"
c.ConfigurableHTTPProxy.command = [env["FLOWCOURSE_CLASS_PROXY"]]
c.ConfigurableHTTPProxy.pid_file = "proxy.pid"
c.JupyterHub.pid_file = "jupyterhub.pid"
c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# A fixed password for every account of this small class (a real term uses the university's login: DEPLOY.md).
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = env["FLOWCOURSE_CLASS_PASSWORD"]
c.Authenticator.allowed_users = set(students + instructors)
c.Authenticator.admin_users = set(instructors)

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [f"{student_env}/bin/jupyterhub-singleuser"]
c.Spawner.args = ["--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: what the class demo drives
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.env_keep = ["LANG", "LC_ALL"]  # nothing of the hub's (instructor) environment reaches a student
c.Spawner.environment = {"PATH": f"{student_env}/bin:/usr/local/bin:/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                         "MKL_NUM_THREADS": "1"}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.LocalProcessSpawner.shell_cmd = []

# Grade on submit: the grading service runs beside the hub, from the instructor's venv, in the course root.
course = env.get("FLOWCOURSE_CLASS_COURSE")
if course:
    grader_bin = env["FLOWCOURSE_CLASS_GRADER_BIN"]
    c.JupyterHub.services = [{
        "name": "grader",
        "command": [f"{grader_bin}/flowcourse", "--root", course, "serve"],
        "cwd": course,
        "environment": {"PATH": f"{grader_bin}:/usr/local/bin:/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    }]
