"""Benchmarks of flowcourse (`make bench`): plain-text tables of medians, never asserted in tests."""
