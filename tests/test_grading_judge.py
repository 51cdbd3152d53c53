"""The trusted judge: verdicts, partial credit and the mistakes it names (no nbgrader, no kernel).

Evidence is produced the way the kernel produces it (``kernel.run_cases`` on a student function), and the
truth is an independent closed form written here, never the judge's own computation.
"""

from __future__ import annotations

import math

import pytest
import torch

from flowcourse_instructor.grading import kernel
from flowcourse_instructor.grading.evidence import encode
from flowcourse_instructor.grading.judge import judge_check, render_html, render_text
from flowcourse_instructor.grading.spec import Case, Check, Mistake, randn, tensor


def affine_forward(z, a, b):
    """The truth: x = a z + b, log-det Σ log|a| per sample."""
    return a * z + b, torch.log(a.abs()).sum().expand(z.shape[0])


def gauss(z):
    return -0.5 * z.pow(2).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


CASES = [
    Case("random batch", lambda: {"z": randn(4, 3, seed=1), "a": randn(3, seed=2) + 3.0, "b": randn(3, seed=3)}),
    Case("negative scale", lambda: {"z": randn(2, 3, seed=4), "a": tensor([-2.0, 0.5, 3.0]), "b": tensor([0.0, 1, 2])}),
]
AFFINE = Check("j_affine", cases=CASES, outputs=("x", "log-det"), mistakes=[
    Mistake("log without abs", "take log|a|", lambda ref, kw: (kw["a"] * kw["z"] + kw["b"],
                                                              torch.log(kw["a"]).sum().expand(kw["z"].shape[0]))),
])
GAUSS = Check("j_gauss", cases=[
    Case("batch of 5 in 4-D", lambda: {"z": randn(5, 4, seed=7)}),
    Case("origin", lambda: {"z": torch.zeros(1, 2, dtype=torch.float64)}),
])


def judge(spec, student, reference):
    return judge_check(spec, kernel.run_cases(spec, student), reference=reference)


def test_a_correct_answer_passes_every_case():
    result = judge(AFFINE, affine_forward, affine_forward)
    assert (result.passed, result.total) == (2, 2)


def test_float32_answers_pass_within_tolerance():
    def f32(z, a, b):
        x, ld = affine_forward(z.float(), a.float(), b.float())
        return x, ld

    spec = Check("j_f32", cases=CASES, atol=1e-5, rtol=1e-5)
    assert judge(spec, f32, affine_forward).passed == 2


def test_a_float32_answer_fails_where_the_dtype_must_follow_the_input():
    def f32(z, a, b):
        return affine_forward(z.float(), a.float(), b.float())

    spec = Check("j_dtype", cases=CASES, atol=1e-5, rtol=1e-5, same_dtype=True)
    result = judge(spec, f32, affine_forward)
    assert result.passed == 0
    assert "dtype float32, expected float64" in result.cases[0].problem
    assert "dtype must follow the input" in result.cases[0].hint
    assert judge(spec, affine_forward, affine_forward).passed == 2


def test_an_input_edited_in_place_fails_even_with_the_right_values():
    def in_place(z, a, b):
        x = z.mul_(a).add_(b)  # right values, but the caller's z is now x
        return x.clone(), torch.log(a.abs()).sum().expand(z.shape[0])

    result = judge(AFFINE, in_place, affine_forward)
    assert result.passed == 0
    assert "changed its input `z` in place" in result.cases[0].problem
    assert result.cases[0].hint.startswith("in-place edit of an input")


def test_an_in_place_edit_of_a_leaf_that_requires_grad_is_named():
    spec = Check("j_leaf", cases=[Case("z requires grad", lambda: {
        "z": randn(3, 2, seed=9).requires_grad_(), "a": tensor([2.0, 3.0]), "b": tensor([0.0, 1.0])})])

    def in_place(z, a, b):
        z *= a
        return z + b, torch.log(a.abs()).sum().expand(z.shape[0])

    result = judge(spec, in_place, affine_forward)
    assert result.passed == 0 and "in-place operation" in result.cases[0].problem
    assert result.cases[0].hint.startswith("in-place edit of an input")
    assert judge(spec, affine_forward, affine_forward).passed == 1


def test_named_mistake_wins_and_costs_only_its_cases():
    def no_abs(z, a, b):
        return a * z + b, torch.log(a).sum().expand(z.shape[0])

    result = judge(AFFINE, no_abs, affine_forward)
    assert [c.passed for c in result.cases] == [True, False]
    bad = result.cases[1]
    assert bad.problem.startswith("log-det: at index [0]: got nan")
    assert bad.hint == "log without abs: take log|a|"
    assert "a = tensor of shape (3,) [-2, 0.5, 3]" in bad.inputs


@pytest.mark.parametrize(
    "student, fragment",
    [
        (lambda z, a, b: (a * z + b, -torch.log(a.abs()).sum().expand(z.shape[0])), "sign is flipped"),
        (lambda z, a, b: (a * z + b, torch.log(a.abs()).expand_as(z)), "not summed"),
        (lambda z, a, b: (a * z + b, torch.log(a.abs()).sum() * z.shape[0]), "summed over the batch"),
        (lambda z, a, b: (a * z + b, a.abs().prod().expand(z.shape[0])), "|det| itself"),
        (lambda z, a, b: (a * z + b, torch.log(a.abs()).sum().expand(z.shape[0])[:, None]), "wrong shape"),
        (lambda z, a, b: (torch.log(a.abs()).sum().expand(z.shape[0]), a * z + b), "swapped"),
        (lambda z, a, b: a * z + b, "return a tuple"),
        (lambda z, a, b: (a * z + b, 2 * torch.log(a.abs()).sum().expand(z.shape[0])), "2 × the answer"),
    ],
)
def test_generic_mistakes_are_named(student, fragment):
    result = judge(AFFINE, student, affine_forward)
    assert result.passed == 0
    assert all(fragment in c.hint for c in result.cases), [c.hint for c in result.cases]


def test_constant_offset_and_nan_are_explained():
    offset = judge(GAUSS, lambda z: -0.5 * z.pow(2).sum(1), gauss)
    assert "off by the constant" in offset.cases[0].hint
    assert str(round(2 * math.log(2 * math.pi), 3))[:4] in offset.cases[0].hint
    nan = judge(GAUSS, lambda z: gauss(z) * torch.nan, gauss)
    assert "NaN or inf" in nan.cases[0].hint


def test_mean_over_batch_and_transpose_are_named():
    mean = judge(GAUSS, lambda z: gauss(z).mean(), gauss)
    assert "averaged over the batch" in mean.cases[0].hint
    spec = Check("j_t", cases=[Case("m", lambda: {"m": randn(2, 3, seed=1)})])
    assert "transposed" in judge(spec, lambda m: (2 * m).T, lambda m: 2 * m).cases[0].hint


def test_errors_timeouts_and_missing_cases_score_zero_with_reasons():
    records = [{"label": "random batch", "status": "error", "error": "NameError: torch"},
               {"label": "negative scale", "status": "timeout", "error": "did not finish within 5 s"}]
    result = judge_check(AFFINE, records, reference=affine_forward)
    assert [c.passed for c in result.cases] == [False, False]
    assert "raised NameError: torch" in result.cases[0].problem
    assert "infinite loop" in result.cases[1].problem
    partial = judge_check(AFFINE, records[:0] + [{"label": "random batch", "status": "ok",
                                                  "output": encode(affine_forward(**CASES[0].inputs()))}],
                          reference=affine_forward)
    assert [c.passed for c in partial.cases] == [True, False]
    assert "stopped before it" in partial.cases[1].problem
    missing = judge_check(AFFINE, None, reference=affine_forward, missing="kernel died")
    assert missing.passed == 0 and missing.total == 2 and missing.note == "kernel died"


def test_forged_or_malformed_output_is_not_trusted():
    records = [{"label": c.label, "status": "ok", "output": {"kind": "tensor", "np": "<f8", "dtype": "float64",
                                                             "shape": [4, 3], "data": "AAAA"}} for c in CASES]
    result = judge_check(AFFINE, records, reference=affine_forward)
    assert result.passed == 0 and "unreadable output" in result.cases[0].problem


def test_value_checks_normalise_quiz_letters():
    spec = Check("j_quiz", mistakes=[Mistake("confusion", "think again", lambda r, k: "c")])
    assert judge(spec, " (B) ", "b").passed == 1
    wrong = judge(spec, "C", "b")
    assert wrong.passed == 0 and wrong.cases[0].hint == "confusion: think again"
    number = Check("j_num", atol=1e-3, rtol=0)
    assert judge(number, torch.tensor(0.5802), 0.58).passed == 1
    assert judge(number, 0.2202, 0.5802).passed == 0


def test_messages_name_case_input_got_expected_and_escape_html():
    result = judge(AFFINE, lambda z, a, b: (a * z + b, -torch.log(a.abs()).sum().expand(z.shape[0])),
                   affine_forward)
    text = render_text("test_affine", [result], 0.0, 3.0, notes=["restored <cell>"])
    assert "0/2 cases passed → 0 / 3 points" in text
    assert "case “random batch”" in text and "inputs: z = tensor of shape (4, 3)" in text
    assert "got -" in text and "expected " in text and "likely mistake — the sign is flipped" in text
    html = render_html("test_affine", [result], 0.0, 3.0, notes=["restored <cell>"])
    assert "restored &lt;cell&gt;" in html and "<cell>" not in html


# --------------------------------------------------------------------- a mistake is charged once

def _key_logdet(z):
    return torch.log(z.abs()).sum(1)


def _key_forward(z):
    return 2 * z, _key_logdet(z)


def _key_inverse(x):
    return x / 2, -_key_logdet(x / 2)


LOGDET = Check("c_logdet", cases=[Case("z", lambda: {"z": randn(3, 2, seed=5)})])
FORWARD = Check("c_forward", cases=[Case("z", lambda: {"z": randn(3, 2, seed=5)})], outputs=("x", "log-det"))
INVERSE = Check("c_inverse", cases=[Case("x", lambda: {"x": randn(3, 2, seed=6)})], outputs=("z", "log-det"))


def _student(namespace_source):
    namespace = {"torch": torch}
    exec(namespace_source, namespace)
    return namespace


def _charged(lesson_of, source):
    lesson_of([LOGDET, FORWARD, INVERSE], c_logdet=_key_logdet, c_forward=_key_forward, c_inverse=_key_inverse)
    ns = _student(source)
    return {name: judge_check(spec, kernel.run_cases(spec, ns[name], namespace=ns))
            for name, spec in (("c_logdet", LOGDET), ("c_forward", FORWARD), ("c_inverse", INVERSE))}


WRONG_HELPER = '''
def c_logdet(z):
    return torch.log(z.abs()).sum(1) + 1.0      # the only mistake
def c_forward(z):
    return 2 * z, c_logdet(z)
def c_inverse(x):
    z = x / 2
    return z, -c_logdet(z)
'''


def test_a_mistake_in_a_helper_costs_only_the_helper(lesson_of):
    results = _charged(lesson_of, WRONG_HELPER)
    assert results["c_logdet"].passed == 0
    assert results["c_forward"].passed == 1 and results["c_inverse"].passed == 1
    note = results["c_forward"].cases[0].hint
    assert "`c_forward` is right" in note and "`c_logdet`" in note
    assert "note — your `c_forward` is right" in render_text("t", [results["c_forward"]], 1, 1)


def test_a_function_wrong_on_top_of_its_helper_is_still_charged(lesson_of):
    """The inverse forgets the minus sign: its log-det is the helper's output where the key's is its negative."""
    results = _charged(lesson_of, WRONG_HELPER.replace("return z, -c_logdet(z)", "return z, c_logdet(z)"))
    assert results["c_inverse"].passed == 0
    assert "calls your `c_logdet`, which is wrong on these inputs: fix it first" in results["c_inverse"].cases[0].hint
    assert results["c_forward"].passed == 1


def test_helpers_right_means_nothing_is_excused(lesson_of):
    results = _charged(lesson_of, WRONG_HELPER.replace(" + 1.0", "").replace("return 2 * z, c_logdet(z)",
                                                                              "return 3 * z, c_logdet(z)"))
    assert results["c_logdet"].passed == 1 and results["c_forward"].passed == 0
    assert "fix it first" not in results["c_forward"].cases[0].hint


def test_a_helper_matches_the_key_with_nan_in_the_same_places_in_float32_too():
    from flowcourse_instructor.grading.judge import _matches

    for dtype in (torch.float32, torch.float64):
        got = torch.tensor([float("nan"), 1.0, float("inf")], dtype=dtype)
        assert _matches(got, got.clone()), dtype
        assert not _matches(got, torch.tensor([float("nan"), 2.0, float("inf")], dtype=dtype)), dtype
