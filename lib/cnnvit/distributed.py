# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training.distributed`."""
from .training.distributed import (Dist, agree, barrier, from_env, init, launch,  # noqa: F401
                                   mean_across_ranks, shard_check)
