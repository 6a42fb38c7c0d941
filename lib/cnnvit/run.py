# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training.run`."""
from .training.run import Run, load_run  # noqa: F401
