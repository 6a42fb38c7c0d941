"""The one tree of user-facing errors: everything a user can fix (a parameter, a data set, a
model name, a run folder) raises a :class:`CnnvitError` subclass whose message names the problem.
The CLI, the notebooks and ``make report`` print that message alone, no traceback; anything else
is a bug in cnnvit and keeps its traceback."""
from __future__ import annotations


class CnnvitError(Exception):
    """An error the user can fix (input, data, a run folder): the CLI prints its message, no traceback."""


class ConfigError(CnnvitError, ValueError):
    """A parameter file or override names an unknown key or gives a value of the wrong type."""


class DatasetError(CnnvitError, RuntimeError):
    """A data set is missing, incomplete or unreadable; the message says where and what to do."""


class FetchError(CnnvitError, RuntimeError):
    """A data set could not be fetched; the message says what was tried and what to do."""


class ModelError(CnnvitError, ValueError):
    """An unknown model, or a model asked for something it cannot do (an input size, an option)."""


class WeightsError(CnnvitError, RuntimeError):
    """Pretrained weights are unavailable or do not fit the model."""


class RunConflict(CnnvitError, RuntimeError):
    """The output folder holds a run made with a different config."""


class RunInUse(RunConflict):
    """Another process is training into the same output folder."""


class CheckpointError(CnnvitError, RuntimeError):
    """A run's checkpoint cannot be read back (damaged, or holding more than tensors and data)."""


class TrainingDiverged(CnnvitError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class DistributedRunError(CnnvitError, RuntimeError):
    """A multi-process run failed; the workers' own error lines are in the message."""


class StudyInputError(ConfigError):
    """A study cannot start: missing data, GPUs or weights, listed per run."""


class ReportError(CnnvitError, ValueError):
    """``make report`` was given something it cannot use (an unknown study, profile or folder)."""
