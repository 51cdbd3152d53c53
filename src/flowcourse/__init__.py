"""flowcourse: an auto-graded course on normalizing flows.

Modules: ``reference`` (the answer key), ``grading`` (what hidden tests call), ``data``, ``training``,
``plots``, ``jacobian`` (autograd truth for log-dets) and ``cli``.
"""

__version__ = "0.1.0"
