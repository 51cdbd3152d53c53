"""The deployment files of classroom/ (DEPLOY.md): what can be checked without a cluster is checked here.

- the singleuser Dockerfile installs the student wheel and the pinned JupyterLab/nbgrader/jupyterhub only: its
  build context is dist/ (the student wheel), it copies nothing else and never names the grading side;
- its pins are the ones `make class-env` installs (the Makefile), and the wheel's version is the image's tag;
- the Helm values parse (PyYAML) and name that image, mount the exchange volume, and DEPLOY.md builds that image.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "classroom"
GRADING_SIDE = ["flowcourse_instructor", "flowcourse_lessons", "solutions", "key.py", "checks.py", "students.py",
                "autograder", "gradebook"]
PINS = ["jupyterlab==4.6.6", "notebook==7.6.5", "nbgrader==0.9.6", "jupyterhub==6.1.1"]


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in text.splitlines() if line.strip()]


def _version() -> str:
    return re.search(r'^version = "([^"]+)"', (ROOT / "student" / "pyproject.toml").read_text(), re.M).group(1)


def test_dockerfile_installs_only_the_student_wheel():
    steps = _instructions(CLASSROOM / "Dockerfile")
    wheel = f"flowcourse-{_version()}-py3-none-any.whl"
    copies = [args for op, args in steps if op in ("COPY", "ADD")]
    assert copies, "the Dockerfile copies nothing: where does the student wheel come from?"
    for args in copies:
        sources = [a for a in args.split()[:-1] if not a.startswith("--")]
        assert sources == [wheel], f"COPY/ADD {args!r}: only the student wheel {wheel} may enter the image"
    body = " ".join(args for _, args in steps)
    for name in GRADING_SIDE:
        assert name not in body, f"the Dockerfile names {name!r} (grading side)"
    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert len(installs) == 1, installs
    packages = [w for w in installs[0].split("pip install", 1)[1].split("&&")[0].split() if not w.startswith("-")
                and not w.startswith("http")]
    assert sorted(packages) == sorted([*PINS, f"/tmp/wheels/{wheel}"]), packages
    assert "-e" not in installs[0].split() and " . " not in f" {installs[0]} ", "an editable/repository install"
    assert "@jupyter/nbgrader:formgrader" in body and "nbgrader.server_extensions.formgrader" in body
    assert any(op == "USER" and args.strip() not in ("root", "0") for op, args in steps), "runs as root"


def test_dockerfile_pins_match_the_class_environment():
    makefile = (ROOT / "Makefile").read_text()
    class_env = makefile.split("$(CLASS_ENV)/.installed: $(WHEEL)", 1)[1].split("\n\n", 1)[0]
    for pin in PINS:
        assert pin in class_env, f"make class-env does not install {pin}"


def test_dist_holds_only_the_student_wheel_when_built():
    """The image's build context is dist/: it must not hold anything of the grading side."""
    dist = ROOT / "dist"
    if not dist.is_dir():
        pytest.skip("no dist/ yet (make student-wheel)")
    for path in dist.rglob("*"):
        assert not any(name in str(path.relative_to(dist)) for name in GRADING_SIDE), path


def test_helm_values_parse_and_name_the_image():
    yaml = pytest.importorskip("yaml")
    values = yaml.safe_load((CLASSROOM / "z2jh-values.yaml").read_text())
    image = values["singleuser"]["image"]
    assert image["tag"] == _version(), "the image tag is the student wheel's version"
    name = f"{image['name']}:{image['tag']}"
    deploy = (CLASSROOM / "DEPLOY.md").read_text()
    assert f"-t {name}" in deploy and "-f classroom/Dockerfile" in deploy, f"DEPLOY.md does not build {name}"
    assert f"-t {name}" in (CLASSROOM / "Dockerfile").read_text()
    mounts = {m["mountPath"]: m["name"] for m in values["singleuser"]["storage"]["extraVolumeMounts"]}
    assert "/srv/nbgrader/exchange" in mounts, "the exchange volume is not mounted where nbgrader looks"
    volumes = {v["name"]: v for v in values["singleuser"]["storage"]["extraVolumes"]}
    assert "persistentVolumeClaim" in volumes[mounts["/srv/nbgrader/exchange"]]
    assert 'c.Exchange.root = "/srv/nbgrader/exchange"' in (CLASSROOM / "Dockerfile").read_text()
    assert "admin_users" in values["hub"]["config"]["Authenticator"]
