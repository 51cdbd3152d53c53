r"""Trusted auto-grading: hidden tests emit evidence in the student's kernel, a judge outside it grades.

Trust model
-----------
A hidden test cell holds one line, ``check("planar_logdet", planar_logdet)``. Inside the student's kernel
:func:`check` only builds each case's inputs from the spec, calls the student's object (exceptions and a
time limit per case) and displays the outputs as *evidence* (MIME type
``application/vnd.flowcourse.evidence+json``). It computes no verdict. After nbgrader has executed the
notebook, the :class:`~.preprocessors.Judge` preprocessor — in the grading process, where the student's code
never ran — reads which checks each test cell runs from the *trusted* cell source, rebuilds the inputs,
computes the answer key's outputs, compares them case by case and replaces the cell's outputs with a message
and the score (``points × passed / total``) that nbgrader records. Patching ``torch``, this package or
anything else inside the kernel changes nothing the judge computes.

The kernel has no key to read (:mod:`.kernelside`): it runs the student environment (``.venv-student``, the
toolkit wheel) with only the check runner, the lessons' registry and each lesson's ``checks.py`` staged on its
path. The sandbox (:mod:`.sandbox`) is the second wall: it hides the course root (solutions, gradebook,
submissions), the repository and the grader's home, and runs each kernel as a fresh unprivileged uid.

Every point fair: the policy
----------------------------
- **A mistake costs points once, in the function that makes it.** When a graded function calls another graded
  function of the same lesson (``planar_forward`` calls the student's ``planar_logdet``), the kernel records
  those calls (inputs and outputs, a few per case). For a case that fails, the judge checks each recorded call
  against the key; if a helper was wrong, and every wrong part of the function's output is what the wrong helper
  returned, used as the key uses the key's helper (the value itself, negated, shifted or scaled), the function
  is right given its helper: the case passes, with a note naming the helper. Otherwise the case fails and the
  hint says to fix the helper first. Numbers a student computes with a helper (a worked example's value) are
  graded as numbers: the visible self-check with the published value shows the slip before hand-in.
- **Behaviour a value cannot show is checked where the lesson teaches it**: an input edited in place fails its
  case (the kernel compares every tensor input before and after the call), and so does an in-place edit of a
  leaf tensor that requires grad; checks with ``same_dtype`` demand the input's dtype; trainable parameters are
  checked to receive gradients by a protocol that backpropagates through the student's layer.
- **No false fails**: every graded name is stated in the release text (a test walks the release), and a
  visible self-check (:func:`flowcourse.selfcheck.answer`) confirms each answer variable is set in the form the
  grader reads. Stderr and warnings never cost points.

Adding a check (lesson writers)
-------------------------------
Everything a lesson owns sits in its folder ``solutions/NN-topic/`` (:mod:`flowcourse_lessons`):

1. ``key.py``: the graded function, e.g. ``def planar_logdet(z, u, w, b)``, tested in ``test_key.py`` against
   autograd at random non-identity parameters; quiz answers are constants named after their check
   (``quiz_05_fold = "B"``).
2. ``checks.py``: ``CHECKS = [Check("planar_logdet", cases=[...], mistakes=[...]), ...]``. The check's name is
   the key's name (give ``key="other_name"`` only when two checks grade one function); the registry finds the
   file, knows its lesson and resolves the key. Cases build their inputs from fixed seeds (:func:`randn`), and
   never contain an implementation of a graded function: the grading kernel runs them. A named
   :class:`Mistake` says what the student did, and computes its wrong output from the key through its first
   argument (``lambda ref, kw: ref.planar_logdet(...)``; ``ref.lesson_05.x`` is an earlier lesson's key):
   ``checks.py`` never imports ``key.py``. Generic mistakes are recognised without being listed: the
   negated value (sign / direction of the log-det), per-dimension values not summed, a sum or mean over the
   batch, exp instead of log, a wrong shape, NaN/inf. For a class, give ``protocol=lambda cls, **inputs: ...``
   returning what to compare; the judge runs the same protocol on the key's class.
3. ``students.py``: ``MISTAKEN = {"planar_logdet": {"<mistake name>": "<a student's cell>"}}`` proves each
   named mistake fires on code a student would write (:mod:`.proofs`, ``tests/test_hints_proven.py``); a
   mistake that cannot be proven is deleted. ``STUDENTS`` are whole sample submissions graded end to end.
4. The notebook (nbgrader cell types): the student's answer in an *Autograded answer* cell between
   ``### BEGIN SOLUTION`` / ``### END SOLUTION``; right after it a locked *Autograder tests* cell with points::

       # Hidden test: graded after you hand in. Run the self-checks above to test your work now.
       ### BEGIN HIDDEN TESTS
       from flowcourse_instructor.grading import check

       check("planar_logdet", planar_logdet)
       ### END HIDDEN TESTS

   and visible, key-free self-checks before it (:mod:`flowcourse.selfcheck`). Training demos and plots are
   tagged ``demo`` (read-only): blanked before grading, no points. Notebooks import the toolkit only; a piece an
   earlier lesson graded travels as a ``.py`` file of this lesson's folder, released with it.

One check per test cell keeps partial credit readable; several checks in one cell pool their cases.
``flowcourse release`` regenerates ``course/``; ``pytest tests/test_grading_lessons.py`` proves the solution
scores full marks, the blank release 0 and each sample student its expectation.

Modules: :mod:`.spec` (Case, Check, Mistake), :mod:`.kernel` (check), :mod:`.evidence` (encoding),
:mod:`.checks` (registry), :mod:`.judge` (trusted comparison and messages), :mod:`.preprocessors` (the
nbgrader pipeline), :mod:`.config` (``nbgrader_config.py``), :mod:`.kernelside` (what kernels run on),
:mod:`.sandbox` (kernel isolation), :mod:`.forkserver` (warm kernels), :mod:`.scan` (static scan),
:mod:`.proofs` (hints proven), :mod:`.sampleclass` (the sample class), :mod:`.pipeline` (what the CLI runs),
:mod:`.policy` (how to grade, as one value that travels with every task), :mod:`.engine` (grading tasks on Dask
distributed; one writer of the gradebook), :mod:`.service` (grade on submit).
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
