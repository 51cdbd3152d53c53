"""Every named mistake fires on a mistaken implementation written as a student would, and never on the key's answer.

The mistaken implementations are ``MISTAKEN`` in each lesson's ``students.py`` (see
:mod:`flowcourse_instructor.grading.proofs`). A named mistake without one fails here: prove it or delete it.
"""

import importlib

import pytest

import flowcourse_lessons
from flowcourse_instructor.grading import proofs
from flowcourse_instructor.grading.checks import all_checks


def _mistaken(lesson_package):
    try:
        return importlib.import_module(f"{lesson_package}.students").MISTAKEN
    except (ModuleNotFoundError, AttributeError):
        return {}


CHECKS = all_checks()
NAMED = [(spec.lesson, spec.name, m.name) for spec in CHECKS.values() for m in spec.mistakes]
WITH_CASES = [spec.name for spec in CHECKS.values()]


@pytest.mark.parametrize(("lesson", "check", "mistake"), NAMED, ids=[f"{c}/{m}" for _, c, m in NAMED])
def test_each_named_mistake_fires_on_its_mistaken_implementation(lesson, check, mistake):
    sources = _mistaken(lesson).get(check, {})
    assert mistake in sources, (f"{flowcourse_lessons.assignment_of(lesson)}/students.py: MISTAKEN[{check!r}] has no "
                                f"implementation making the mistake {mistake!r}: write one or delete the mistake")
    result = proofs.judge_source(flowcourse_lessons.assignment_of(lesson), check, sources[mistake])
    assert result.passed < result.total, f"the mistaken {check} passed every case"
    assert mistake in proofs.named_mistakes(result, CHECKS[check]), (
        f"judge did not name {mistake!r}; it said: " + " | ".join(c.hint or c.problem for c in result.cases))


@pytest.mark.parametrize("check", WITH_CASES)
def test_the_solution_passes_every_case_and_names_no_mistake(check):
    spec = CHECKS[check]
    assignment = flowcourse_lessons.assignment_of(spec.lesson)
    namespace = proofs.solution_namespace(assignment)
    result = proofs.judge_object(check, eval(proofs.test_objects(assignment)[check], namespace))
    assert result.passed == result.total, [c.problem for c in result.cases if not c.passed]


def test_every_mistaken_implementation_names_a_real_mistake():
    """No orphan: a MISTAKEN entry for a check or mistake that does not exist is an error, not dead code."""
    known = {(spec.name, m.name) for spec in CHECKS.values() for m in spec.mistakes}
    orphans = [(lesson, check, name) for lesson in flowcourse_lessons.lessons()
               for check, sources in _mistaken(f"flowcourse_lessons.{lesson}").items() for name in sources
               if (check, name) not in known]
    assert orphans == []
