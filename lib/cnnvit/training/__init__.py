"""Training and reading back runs: :func:`train` one run into a folder (resuming or skipping it
as its state says), :func:`load_run` to read one back.

The modules, in the order a run meets them: identity (is the folder's run this config's?),
checks and device (fail before work), setup (data on the device, model, optimizer, loss, weight
average, DDP, compile), state (the run's state and its checkpoint), epoch (one epoch's steps,
evaluation, early stopping and checkpoint), evaluate, files and summary (the run folder's files
and metrics.json), loop (the run, top to bottom); beside them augment, schedules, losses,
metrics, distributed and tracking, and run (a finished run read back).

Names load on first use: importing a light module of the package (schedules, identity, metrics)
does not import torch through this file.
"""
import importlib

_EXPORTS = {
    "train": "loop",
    "Run": "run", "load_run": "run",
    "run_state": "identity", "read_metrics": "identity", "saved_config": "identity", "config_differences": "identity",
    "RunStatus": "identity", "read_result": "identity",
    "IDENTITY_EXEMPT": "identity",
    "check_run_inputs": "checks",
    "resolve_device": "device", "check_device": "device",
    "predict_logits": "evaluate",
    "RunState": "state",
    "lr_at": "schedules",
    "Preprocess": "augment", "batch_indices": "augment", "make_generator": "augment",
    "class_weights": "losses", "task_loss": "losses", "task_accuracy": "losses",
    "classification_metrics": "metrics", "multilabel_metrics": "metrics", "majority_baseline": "metrics",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
