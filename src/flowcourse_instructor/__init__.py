"""The instructor side of flowcourse: the grader (:mod:`.grading`), the ``flowcourse`` command (:mod:`.cli`) and the
book's tooling (:mod:`.book`). Never installed for students: they get the toolkit, :mod:`flowcourse`, alone.

The answer keys, checks and sample students live with their lessons, ``solutions/NN-topic/``, imported as
:mod:`flowcourse_lessons`.
"""
