# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.training` (the loop: :mod:`cnnvit.training.loop`)."""
from .errors import RunConflict, TrainingDiverged  # noqa: F401
from .training.checks import check_run_inputs  # noqa: F401
from .training.device import check_device, resolve_device  # noqa: F401
from .training.evaluate import predict_logits  # noqa: F401
from .training.identity import IDENTITY_EXEMPT, config_differences, run_state, saved_config  # noqa: F401
from .training.loop import train  # noqa: F401
from .training.losses import class_weights, task_accuracy, task_loss  # noqa: F401
