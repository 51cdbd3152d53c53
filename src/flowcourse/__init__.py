"""flowcourse: the student toolkit of a course on normalizing flows — what the lessons import, and no answers.

Modules: :mod:`~flowcourse.base` (the direction contract: ``Flow``, ``FlowSequence``, ``StandardNormal``,
``FlowDistribution``), :mod:`~flowcourse.jacobian` (autograd truth for log-dets), :mod:`~flowcourse.data`,
:mod:`~flowcourse.training`, :mod:`~flowcourse.plots`, :mod:`~flowcourse.selfcheck` (the visible self-checks;
``flowcourse-check NOTEBOOK``), and building blocks no lesson grades: :mod:`~flowcourse.glow_blocks`,
:mod:`~flowcourse.glow_lu`, :mod:`~flowcourse.expressivity`, :mod:`~flowcourse.vae`,
:mod:`~flowcourse.splines` (1-D flows and targets for lesson 09), :mod:`~flowcourse.continuous` (velocity fields
and their training loop). A lesson's graded formulas are written by the student; where a block needs one, it
takes it as an argument.
"""

__version__ = "0.1.0"
