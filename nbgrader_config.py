"""nbgrader configuration: the course root is the repository root (sources in solutions/, release in course/).

The standard commands work from here: nbgrader generate_assignment | autograde | generate_feedback | export.
What it sets, and why, is in flowcourse/grading/config.py.
"""

from pathlib import Path

from flowcourse_instructor.grading.config import configure

configure(get_config(), Path(__file__).parent)  # noqa: F821 - get_config is provided by nbgrader
