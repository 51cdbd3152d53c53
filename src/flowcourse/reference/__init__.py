"""The answer key: a clean PyTorch implementation of every flow the course teaches.

One module per family; the direction convention is stated once in :mod:`flowcourse.reference.base`.
"""
