r"""Trusted auto-grading: hidden tests emit evidence in the student's kernel, a judge outside it grades.

Trust model
-----------
A hidden test cell holds one line, ``check("planar_logdet", planar_logdet)``. Inside the student's kernel
:func:`check` only builds each case's inputs from the spec, calls the student's object (exceptions and a
time limit per case) and displays the outputs as *evidence* (MIME type
``application/vnd.flowcourse.evidence+json``). It computes no verdict. After nbgrader has executed the
notebook, the :class:`~flowcourse_instructor.grading.preprocessors.Judge` preprocessor — in the grading process, where the
student's code never ran — reads which checks each test cell runs from the *trusted* cell source, rebuilds
the inputs, computes the answer key's outputs, compares them case by case and replaces the cell's outputs
with a message and the score (``points × passed / total``) that nbgrader records. Patching ``torch``, this
package or the answer key inside the kernel changes nothing the judge computes; the kernel runs
sandboxed (see :mod:`flowcourse_instructor.grading.sandbox`) and cannot read the answer key, ``solutions/`` or the
gradebook.

Adding a check (lesson writers)
-------------------------------
1. In ``src/flowcourse_instructor/grading/checks/lesson_NN.py`` (found automatically; names unique course-wide)::

       from flowcourse_instructor.grading.spec import Case, Check, Mistake, randn, tensor

       def _worked_example_3():   # inputs are built fresh, deterministically, in kernel and judge alike
           return {"z": tensor([[0.5, -0.5]]), "u": tensor([1.0, 0.0]), "w": tensor([1.0, 2.0]),
                   "b": tensor(0.0)}

       CHECKS = [
           Check(
               "planar_logdet",                       # the name the hidden test uses
               reference="planar.planar_logdet",      # flowcourse_lessons.lesson_05.key.planar_logdet
               cases=[
                   Case("worked example 3 (z=(0.5,-0.5), u=(1,0), w=(1,2), b=0)", _worked_example_3),
                   Case("random 2-D batch of 5", lambda: {"z": randn(5, 2, seed=1), "u": randn(2, seed=2),
                                                          "w": randn(2, seed=3), "b": tensor(0.3)}),
               ],
               mistakes=[
                   Mistake("tanh instead of its derivative",
                           "the log-det needs h'(w·z+b) = 1 - tanh², not tanh itself",
                           lambda ref, kw: ...),     # the wrong output; ref.planar.* is the answer key
               ],
               atol=1e-6, rtol=1e-5,
           ),
           Check("quiz_05_q2", reference="quiz.quiz_05_q2"),   # no cases: a value check (quiz letter)
       ]

   Never import ``flowcourse.reference`` in a spec module (mistake outputs get ``ref`` lazily). Generic
   mistakes are recognised without being listed: the negated value (sign / direction of the log-det),
   per-dimension values not summed, a sum or mean over the batch, exp instead of log, a wrong shape,
   NaN/inf. For a class, give ``protocol=lambda cls, **inputs: ...`` returning what to compare; the judge
   runs the same protocol on the answer key's class.
2. In the solution notebook (``solutions/NN-topic/*.ipynb``), nbgrader cell types:

   - the student's answer: *Autograded answer* cell with ``### BEGIN SOLUTION`` / ``### END SOLUTION``;
   - right after it, a *Autograder tests* cell (locked, with points) holding only::

         # hidden test: graded after you submit (run the self-checks above to test your work now)
         ### BEGIN HIDDEN TESTS
         from flowcourse_instructor.grading import check; check("planar_logdet", planar_logdet)
         ### END HIDDEN TESTS

   - visible, reference-free self-checks in an ordinary cell before it, e.g.
     ``selfcheck.logdet(lambda z: planar_forward(z, u, w, b), z)`` (:mod:`flowcourse.selfcheck`);
   - quiz: an answer cell ``answer_q2 = "b"`` (solution markers around the letter) and a test cell with
     ``check("quiz_05_q2", answer_q2)``; put the right letter in ``flowcourse/reference/quiz.py``;
   - training demos and plots that need the answer key or take long: tag the cell ``demo`` (and make it
     read-only); demo cells are blanked before grading, carry no points, and feedback says so.

   One check per test cell keeps partial credit readable; several checks in one cell pool their cases.
3. ``flowcourse release`` regenerates ``course/``; ``pytest tests/test_grading_lessons.py`` proves the
   solution scores full marks and the blank release 0; add wrong students to ``autograder/sample_class/``.

Modules: :mod:`~flowcourse_instructor.grading.spec` (Case, Check, Mistake), :mod:`~flowcourse_instructor.grading.kernel` (check),
:mod:`~flowcourse_instructor.grading.evidence` (encoding), :mod:`~flowcourse_instructor.grading.checks` (registry),
:mod:`~flowcourse_instructor.grading.judge` (trusted comparison and messages), :mod:`~flowcourse_instructor.grading.preprocessors`
(the nbgrader pipeline), :mod:`~flowcourse_instructor.grading.config` (``nbgrader_config.py``),
:mod:`~flowcourse_instructor.grading.sandbox` (kernel isolation), :mod:`~flowcourse_instructor.grading.scan` (static scan),
:mod:`~flowcourse.selfcheck` (reference-free checks for students), :mod:`~flowcourse.studentcheck`
(``flowcourse check``), :mod:`~flowcourse_instructor.grading.sampleclass` (the sample class),
:mod:`~flowcourse_instructor.grading.pipeline` (what the CLI runs).
"""

from typing import Any

__all__ = ["check", "Case", "Check", "Mistake", "randn", "rand", "tensor"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m flowcourse_instructor.grading.sandbox`` (run before every kernel) does not import torch.
    if name == "check":
        from flowcourse_instructor.grading.kernel import check

        return check
    if name in __all__:
        from flowcourse_instructor.grading import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
