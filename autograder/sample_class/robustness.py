"""Where the generic robustness students (crash, loop, memory bomb, cheats, bad files) are graded.

``target``: the graded function they break (``None``: the lesson's last graded function). Lesson-specific
mistake students live in their own files here, as ``STUDENTS = [...]`` (see ``autograder/README.md``).
"""

ROBUSTNESS = {"lesson": "01-change-of-variables", "target": None}
