# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training.augment`."""
from .training.augment import (Preprocess, apply_policy, batch_indices, color_jitter,  # noqa: F401
                               make_generator, random_crop, random_flip, random_resized_crop)
