"""The class at a glance: one self-contained HTML page per lesson, from the gradebook and the judge's records.

What an instructor reads before the next lecture, and what no nbgrader view shows: how many students were
graded (and how many did not hand in), the distribution of their automatic scores, each graded test cell's
pass rate (full marks, partial, zero; in notebook order) and the named mistakes of the lesson's checks ranked
by how many students made them, each with one of the judge's messages as an example.

Scores come from the gradebook (nbgrader's ``Grade`` rows: a manual score overrides the automatic one, as
in nbgrader); the named mistakes from the grading record the :class:`~flowcourse_instructor.grading.preprocessors.Judge`
keeps in each autograded notebook (``metadata.flowcourse.cells[].checks[].mistakes``, see
:func:`~flowcourse_instructor.grading.preprocessors.cell_record`). Figures are matplotlib PNGs embedded as base64,
so a page works offline, from a file share or on a phone; it is written atomically (a temporary file, then
``os.replace``), so the grading service can refresh it while an instructor reads it.

    write_reports(root)                  every lesson → <root>/reports/<lesson>.html
    write_report(root, lesson)           one lesson (the grading service calls this after each graded submission)
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["CellStats", "MistakeStats", "LessonSummary", "summarize", "render", "write_report", "write_reports"]

FULL, PARTIAL, ZERO = "#1a7f37", "#9a6700", "#cf222e"  # the colours of the judge's verdicts
_EPS = 1e-9


@dataclass
class CellStats:
    """One graded test cell: how many graded students got full marks, part of them, or nothing."""

    name: str
    notebook: str
    points: float
    checks: list[str] = field(default_factory=list)
    full: int = 0
    partial: int = 0
    zero: int = 0
    total_score: float = 0.0

    @property
    def graded(self) -> int:
        return self.full + self.partial + self.zero

    @property
    def mean(self) -> float:
        return self.total_score / self.graded if self.graded else 0.0


@dataclass
class MistakeStats:
    """A named mistake of a check: the students whose output it matched, and one of the judge's messages."""

    name: str
    check: str
    cell: str
    students: int
    example: str


@dataclass
class LessonSummary:
    """Everything one lesson's page shows."""

    lesson: str
    written: datetime
    released: bool = True
    graded: int = 0
    pending: int = 0
    not_handed_in: int = 0
    max_points: float = 0.0
    totals: list[float] = field(default_factory=list)  # each graded student's automatic score, in points
    cells: list[CellStats] = field(default_factory=list)
    mistakes: list[MistakeStats] = field(default_factory=list)
    unrecorded: int = 0  # graded students whose autograded notebook carries no judge's record to read mistakes from


# ------------------------------------------------------------------------------------------- reading

def _db_url(root: Path) -> str:
    from flowcourse_instructor.grading.pipeline import load_config

    return load_config(root).CourseDirectory.db_url


def _sqlite_missing(db_url: str) -> bool:
    """True when ``db_url`` names an SQLite file that does not exist (opening it would create a gradebook)."""
    if not db_url.startswith("sqlite:///"):
        return False
    path = db_url[len("sqlite:///"):].split("?", 1)[0]
    return path not in ("", ":memory:") and not Path(path).exists()


def _notebook_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cell_order(root: Path, lesson: str, notebook: str) -> list[str]:
    """Grade ids of the lesson's source notebook (``solutions/``, else ``course/``) in notebook order."""
    for folder in ("solutions", "course"):
        nb = _notebook_json(root / folder / lesson / f"{notebook}.ipynb")
        if nb:
            return [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.get("cells", [])
                    if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    return []


_TOP_METADATA = '\n "metadata": '  # nbformat writes sorted keys with indent 1: top-level keys have one space


def _record(path: Path) -> dict[str, Any] | None:
    """The judge's record of an autograded notebook (``metadata.flowcourse``), ``None`` when there is none.

    Only the notebook's top-level metadata is parsed: nbformat writes it after the cells, at one space of
    indent (a newline cannot occur inside a JSON string), so a 200-student page does not parse 200 notebooks'
    outputs. Anything unexpected falls back to reading the whole file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    metadata = None
    at = text.rfind(_TOP_METADATA)
    if at >= 0:
        with contextlib.suppress(ValueError):
            metadata, _ = json.JSONDecoder().raw_decode(text, at + len(_TOP_METADATA))
    if not isinstance(metadata, dict):
        try:
            metadata = json.loads(text).get("metadata", {})
        except (ValueError, AttributeError):
            return None
    record = metadata.get("flowcourse") if isinstance(metadata, dict) else None
    return record if isinstance(record, dict) and "cells" in record else None


def _grades(gb: Any, lesson: str) -> list[tuple[str, str, str, float | None, float | None, float | None]]:
    """``(student, notebook, cell, auto, manual, extra credit)`` of every grade of the lesson, in one query."""
    from nbgrader.api import Assignment, BaseCell, Grade, Notebook, SubmittedAssignment, SubmittedNotebook

    query = (gb.db.query(SubmittedAssignment.student_id, Notebook.name, BaseCell.name, Grade.auto_score,
                         Grade.manual_score, Grade.extra_credit)
             .select_from(Grade)
             .join(SubmittedNotebook, Grade.notebook_id == SubmittedNotebook.id)
             .join(SubmittedAssignment, SubmittedNotebook.assignment_id == SubmittedAssignment.id)
             .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
             .join(Notebook, SubmittedNotebook.notebook_id == Notebook.id)
             .join(BaseCell, Grade.cell_id == BaseCell.id)
             .filter(Assignment.name == lesson))
    return [tuple(row) for row in query]


def _score(auto: float | None, manual: float | None, extra: float | None) -> float:
    """nbgrader's ``Grade.score``: the manual score overrides the automatic one, plus any extra credit."""
    base = manual if manual is not None else auto if auto is not None else 0.0
    return float(base) + float(extra or 0.0)


def summarize(root: str | os.PathLike, lesson: str, *, db_url: str | None = None) -> LessonSummary:
    """What ``lesson``'s page shows, read from the course's gradebook and ``autograded/`` notebooks.

    A student is *graded* when the gradebook holds an automatic (or manual) score for one of the lesson's
    test cells; a submission without one yet is *pending*; a student the gradebook knows with no submission
    of the lesson did *not hand in*. ``db_url`` defaults to the course configuration's.
    """
    from nbgrader.api import Gradebook, MissingEntry, Student, SubmittedAssignment

    root = Path(root).resolve()
    summary = LessonSummary(lesson, datetime.now(UTC))
    db_url = db_url or _db_url(root)
    if _sqlite_missing(db_url):
        summary.released = False
        return summary
    with Gradebook(db_url) as gb:
        try:
            assignment = gb.find_assignment(lesson)
        except MissingEntry:
            summary.released = False
            return summary
        cells: dict[tuple[str, str], CellStats] = {}
        for notebook in sorted(assignment.notebooks, key=lambda n: n.name):
            solutions = {c.name for c in notebook.solution_cells}
            tests = {c.name: c for c in notebook.grade_cells if c.cell_type == "code" and c.name not in solutions}
            order = [name for name in _cell_order(root, lesson, notebook.name) if name in tests]
            for name in order + sorted(set(tests) - set(order)):
                cells[(notebook.name, name)] = CellStats(name, notebook.name, float(tests[name].max_score))
        students = {s for (s,) in gb.db.query(Student.id)}
        submitted = {s for (s,) in gb.db.query(SubmittedAssignment.student_id)
                     .filter(SubmittedAssignment.assignment_id == assignment.id)}
        rows = _grades(gb, lesson)
    summary.cells = list(cells.values())
    summary.max_points = sum(c.points for c in summary.cells)
    summary.not_handed_in = len(students - submitted)

    scores: dict[str, dict[tuple[str, str], float]] = {}
    for student, notebook, cell, auto, manual, extra in rows:
        if (notebook, cell) in cells and (auto is not None or manual is not None):
            scores.setdefault(student, {})[(notebook, cell)] = _score(auto, manual, extra)
    graded = sorted(scores)
    summary.graded, summary.pending = len(graded), len(submitted - set(graded))
    for student in graded:
        got = scores[student]
        summary.totals.append(sum(got.values()))
        for key, stats in cells.items():
            score = got.get(key, 0.0)
            stats.total_score += score
            if stats.points > 0 and score >= stats.points - _EPS:
                stats.full += 1
            elif score > _EPS:
                stats.partial += 1
            else:
                stats.zero += 1
    summary.mistakes, summary.unrecorded = _mistakes(root, lesson, graded, sorted({nb for nb, _ in cells}), cells)
    return summary


def _mistakes(root: Path, lesson: str, students: Sequence[str], notebooks: Sequence[str],
              cells: dict[tuple[str, str], CellStats]) -> tuple[list[MistakeStats], int]:
    """The named mistakes in the judge's records of ``students``' autograded notebooks, most frequent first,
    and how many students have no usable record; also fills each cell's ``checks`` from the records."""
    made: dict[tuple[str, str], set[str]] = {}
    where: dict[tuple[str, str], tuple[str, str]] = {}
    unrecorded = 0
    for student in students:
        recorded = False
        for notebook in notebooks:
            record = _record(root / "autograded" / student / lesson / f"{notebook}.ipynb")
            if record is None:
                continue
            for cell in record.get("cells", []):
                if (notebook, cell.get("cell")) in cells:
                    cells[(notebook, cell["cell"])].checks = [c.get("name", "") for c in cell.get("checks", [])]
            if any("mistakes" not in check for cell in record["cells"] for check in cell.get("checks", [])):
                continue  # graded before the judge recorded the names of mistakes
            recorded = True
            for cell in record["cells"]:
                for check in cell.get("checks", []):
                    for mistake, problem in zip(check.get("mistakes", []), check.get("problems", []), strict=False):
                        if not mistake:
                            continue
                        key = (check.get("name", ""), mistake)
                        made.setdefault(key, set()).add(student)
                        where.setdefault(key, (cell.get("cell", ""), problem))
        unrecorded += not recorded
    ranked = sorted(made, key=lambda k: (-len(made[k]), k))
    return [MistakeStats(name, check, where[(check, name)][0], len(made[(check, name)]), where[(check, name)][1])
            for check, name in ranked], unrecorded


# ------------------------------------------------------------------------------------------- figures

WIDTH, DPI, FONT = 5.0, 150, 9  # inches, pixels an inch, points: 750 px wide, shown at most 640 CSS px wide


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})  # 5 % larger, 10 % faster
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(height: float, *, left: float = 0.55, top: float = 0.15) -> Any:
    """A :data:`WIDTH`-inch figure with one axes and margins in inches (``top``: room for a legend).

    Margins are set, not computed by a layout engine, which would draw every figure twice (a third of the
    page's time).
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, the Agg canvas, safe in a service

    fig = Figure(figsize=(WIDTH, height))
    fig.subplots_adjust(left=left / WIDTH, right=1 - 0.2 / WIDTH, top=1 - top / height, bottom=0.5 / height)
    ax = fig.add_subplot()
    ax.tick_params(labelsize=FONT)
    return fig, ax


def _labelled_bars(ax: Any, labels: Sequence[str]) -> list[float]:
    """Rows for horizontal bars, first on top, each labelled above its bar (a phone has no room beside it)."""
    y = [float(i) for i in range(len(labels))]
    for row, label in zip(y, labels, strict=True):
        ax.text(0, row - 0.3, _short(label, 64), fontsize=FONT, va="bottom", ha="left")
    ax.set_yticks([])
    ax.set_ylim(len(labels) - 0.6, -0.9)  # inverted: the first row on top, room for its label
    return y


def _score_figure(summary: LessonSummary) -> str:
    fig, ax = _figure(2.6)
    percent = [100 * t / summary.max_points if summary.max_points else 0.0 for t in summary.totals]
    ax.hist(percent, bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.0001], color="#0969da", edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"automatic score, % of {summary.max_points:g} points", fontsize=FONT)
    ax.set_ylabel("students", fontsize=FONT)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


def _cells_figure(summary: LessonSummary) -> str:
    cells = summary.cells
    fig, ax = _figure(0.9 + 0.42 * len(cells), left=0.15, top=0.35)
    y = _labelled_bars(ax, [c.name for c in cells])  # notebook order, top to bottom
    n = [max(c.graded, 1) for c in cells]
    left = [0.0] * len(cells)
    for part, color, label in (("full", FULL, "full marks"), ("partial", PARTIAL, "partial"), ("zero", ZERO, "zero")):
        width = [100 * getattr(c, part) / k for c, k in zip(cells, n, strict=True)]
        ax.barh(y, width, left=left, color=color, label=label, height=0.4)
        left = [a + b for a, b in zip(left, width, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"% of the {summary.graded} graded students", fontsize=FONT)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=FONT)
    return _png(fig)


def _mistakes_figure(mistakes: Sequence[MistakeStats], limit: int = 15) -> str:
    shown = list(mistakes[:limit])
    names = [m.name for m in shown]  # the check is named only where the same mistake shows for several
    fig, ax = _figure(0.7 + 0.42 * len(shown), left=0.15)
    y = _labelled_bars(ax, [m.name if names.count(m.name) == 1 else f"{m.name} ({m.check})" for m in shown])
    ax.barh(y, [m.students for m in shown], color=ZERO, height=0.4)  # the most frequent on top
    ax.set_xlim(0, max(m.students for m in shown) * 1.05)
    ax.set_xlabel("students", fontsize=FONT)
    ax.xaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
main{max-width:860px;margin:0 auto;padding:12px 16px 40px}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #d0d7de}
.facts{display:flex;flex-wrap:wrap;gap:8px;padding:0;list-style:none}
.facts li{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 10px}
.facts b{font-size:1.2em}
img{width:100%;max-width:640px;height:auto;display:block}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border-bottom:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;white-space:nowrap}
.muted{color:#59636e;font-size:.9em}
tr.mistake td{border-bottom:none;padding-top:8px}
tr.example td{color:#59636e;font-size:.85em;padding-left:18px}
@media (max-width:560px){.wide{display:none}}
"""


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def render(summary: LessonSummary) -> str:
    """The lesson's page as one self-contained HTML document."""
    e = html.escape
    when = summary.written.strftime("%Y-%m-%d %H:%M UTC")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(summary.lesson)}: the class at a glance</title><style>{_CSS}</style></head><body><main>",
           f"<h1>{e(summary.lesson)}: the class at a glance</h1>",
           f'<p class="muted">Report of <time datetime="{summary.written.isoformat(timespec="seconds")}">{when}'
           "</time>; refreshed as submissions are graded.</p>"]
    facts = [("graded", summary.graded, "students graded")]
    if summary.pending:
        facts.append(("pending", summary.pending, "submitted, not graded yet"))
    if summary.not_handed_in:
        facts.append(("not-handed-in", summary.not_handed_in, "not handed in"))
    if summary.totals:
        mean, median = statistics.fmean(summary.totals), statistics.median(summary.totals)
        facts.append(("mean", _fmt(mean), f"mean score / {summary.max_points:g}"))
        facts.append(("median", _fmt(median), f"median score / {summary.max_points:g}"))
    out.append('<ul class="facts">' + "".join(f'<li id="{key}"><b>{value}</b> {e(label)}</li>'
                                              for key, value, label in facts) + "</ul>")
    if not summary.released:
        out.append('<p id="empty">This lesson is not in the gradebook yet (not released): nothing graded.</p>')
    elif not summary.graded:
        out.append('<p id="empty">Nothing graded yet for this lesson.</p>')
    else:
        out += _sections(summary)
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def _sections(summary: LessonSummary) -> list[str]:
    e = html.escape
    out = ["<h2>Score distribution</h2>",
           f'<img id="fig-scores" alt="histogram of the automatic scores" src="data:image/png;base64,'
           f'{_score_figure(summary)}">']
    if summary.cells:
        out += ["<h2>Pass rate of each exercise</h2>",
                f'<img id="fig-cells" alt="full marks, partial and zero for each graded test cell" '
                f'src="data:image/png;base64,{_cells_figure(summary)}">',
                '<div class="scroll"><table id="cells"><thead><tr><th>test cell</th><th class="wide">checks</th>'
                '<th class="n">points</th><th class="n">full</th><th class="n">partial</th><th class="n">zero</th>'
                '<th class="n">mean</th></tr></thead><tbody>']
        out += [f'<tr><td>{e(c.name)}</td><td class="wide">{e(", ".join(c.checks))}</td><td class="n">{c.points:g}</td>'
                f'<td class="n">{c.full}</td><td class="n">{c.partial}</td><td class="n">{c.zero}</td>'
                f'<td class="n">{_fmt(c.mean)}</td></tr>' for c in summary.cells]
        out.append("</tbody></table></div>")
    out.append("<h2>Named mistakes, most frequent first</h2>")
    if summary.mistakes:
        out.append(f'<img id="fig-mistakes" alt="students per named mistake" '
                   f'src="data:image/png;base64,{_mistakes_figure(summary.mistakes)}">')
        out.append('<div class="scroll"><table id="mistakes"><thead><tr><th>mistake</th><th>exercise</th>'
                   '<th class="n">students</th></tr></thead><tbody>')
        for m in summary.mistakes:  # the example on a row of its own: a phone has no room for a fourth column
            out.append(f'<tr class="mistake"><td>{e(m.name)}</td><td>{e(m.check)} <span class="muted">'
                       f'({e(m.cell)})</span></td><td class="n">{m.students}</td></tr>')
            out.append(f'<tr class="example"><td colspan="3">for example: {e(m.example)}</td></tr>')
        out.append("</tbody></table></div>")
    else:
        out.append('<p id="no-mistakes">No named mistake was recognised in the graded submissions.</p>')
    if summary.unrecorded:
        out.append(f'<p class="muted" id="unrecorded">{summary.unrecorded} graded student(s) have no judge\'s '
                   "record in <code>autograded/</code> that names mistakes (their notebook is missing, or was graded "
                   "before the judge recorded mistake names: re-grade it): their mistakes are not counted above.</p>")
    return out


# ------------------------------------------------------------------------------------------- writing

def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step: a reader sees the old page or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the page is for a web server or a file share
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_report(root: str | os.PathLike, lesson: str, out: str | os.PathLike | None = None) -> Path:
    """Write ``lesson``'s page to ``<out>/<lesson>.html`` (``out`` defaults to ``<root>/reports``); return its path."""
    root = Path(root).resolve()
    path = Path(out or root / "reports") / f"{lesson}.html"
    _write_atomically(path, render(summarize(root, lesson)))
    return path


def _all_lessons(root: Path, db_url: str) -> list[str]:
    from nbgrader.api import Gradebook

    from flowcourse_instructor.grading.sampleclass import lessons

    with Gradebook(db_url) as gb:
        return sorted(set(lessons(root)) | {a.name for a in gb.assignments})


def write_reports(root: str | os.PathLike, lessons: Iterable[str] | None = None,
                  out: str | os.PathLike | None = None) -> list[Path]:
    """Write one page per lesson (default: every lesson of ``solutions/`` and of the gradebook) into ``out``
    (default ``<root>/reports``); return their paths.

    Raises :class:`~flowcourse_instructor.grading.pipeline.OrderError` when the course has no gradebook yet.
    """
    from flowcourse_instructor.grading.pipeline import OrderError

    root = Path(root).resolve()
    db_url = _db_url(root)
    if _sqlite_missing(db_url):
        raise OrderError("no gradebook yet: run `flowcourse release` and `flowcourse grade` first")
    folder = Path(out or root / "reports")
    paths = []
    for lesson in (list(lessons) if lessons is not None else _all_lessons(root, db_url)):
        path = folder / f"{lesson}.html"
        _write_atomically(path, render(summarize(root, lesson, db_url=db_url)))
        paths.append(path)
    return paths
