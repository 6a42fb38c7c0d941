# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.models.t2t_vit`."""
from .models.t2t_vit import T2TViT, sinusoid_position_table, t2t_vit_t_14  # noqa: F401
