# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training.tracking`."""
from .training.tracking import Tracker, check_tracking  # noqa: F401
