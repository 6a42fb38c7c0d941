# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.datasets.celeba`."""
from .datasets.celeba import *  # noqa: F401,F403
