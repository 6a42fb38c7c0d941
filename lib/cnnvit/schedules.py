# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training.schedules`."""
from .training.schedules import lr_at  # noqa: F401
