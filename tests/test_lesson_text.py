"""What a student reads speaks to the student: sources named, no workshop words, questions numbered in order.

Scans the release (``course/``), the lessons' sources and the book's own pages; the book's lesson pages are
built from the same notebooks.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKSHOP = re.compile(r"the seeds?\b|seeds'|seed's|\bthe issue\b|\bengineer|\bcatalog|quick experiment", re.I)
QUESTION = re.compile(r"\b(?:Q|Question )(\d+)\b")
NOTEBOOKS = sorted((ROOT / "solutions").glob("[0-9][0-9]-*/[0-9][0-9]-*.ipynb"))


def _student_text(path: Path) -> str:
    """Markdown and the visible code of a notebook (hidden tests and grading-side comments excluded)."""
    parts = []
    for cell in nbformat.read(path, 4).cells:
        source = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", cell.source, flags=re.S)
        parts.append(source)
    return "\n".join(parts)


@pytest.mark.parametrize("path", [*NOTEBOOKS, *sorted((ROOT / "course").glob("*/*.ipynb")),
                                  *sorted((ROOT / "book").glob("*.md"))], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_workshop_words(path):
    text = _student_text(path) if path.suffix == ".ipynb" else path.read_text()
    found = sorted({m.group(0) for m in WORKSHOP.finditer(text)})
    assert found == [], f"name the sources instead (the lesson notes, Kong & Chaudhuri, the papers): {found}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_questions_are_numbered_from_one_without_gaps(path):
    markdown = "\n".join(c.source for c in nbformat.read(path, 4).cells if c.cell_type == "markdown")
    numbers = sorted({int(n) for n in QUESTION.findall(markdown)})
    assert numbers == list(range(1, len(numbers) + 1)), numbers


def test_the_scans_can_fail():
    assert WORKSHOP.search("as the seeds say") and WORKSHOP.search("the answer key's engineer measured")
    assert not WORKSHOP.search("torch.manual_seed(3) with three random seeds")
    assert sorted({int(n) for n in QUESTION.findall("**Q1** … **Q5**")}) == [1, 5]
