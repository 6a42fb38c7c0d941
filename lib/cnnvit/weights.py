# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.models.weights`."""
from .errors import WeightsError  # noqa: F401
from .models.weights import (FREEZE_POLICIES, LoadReport, apply_freeze, check_pretrained,  # noqa: F401
                             classifier_prefixes, describe_source, layer_decay_groups, load_checkpoint,
                             prepare_model, read_state_dict)
