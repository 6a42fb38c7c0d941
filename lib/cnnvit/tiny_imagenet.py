# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.datasets.tiny_imagenet`."""
from .datasets.tiny_imagenet import *  # noqa: F401,F403
