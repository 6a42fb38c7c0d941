"""Experiment tracking: TensorBoard scalars land in the run folder; a missing tracker is named."""
from __future__ import annotations

import importlib.util

import pytest

from cnnvit.config import ConfigError
from cnnvit.training.tracking import Tracker, check_tracking


def test_tensorboard_scalars_can_be_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tracker = Tracker(tmp_path, "run", tensorboard=True, wandb=False)
    tracker.log(1, {"train/loss": 2.5, "val/accuracy": None})
    tracker.log(2, {"train/loss": 1.5})
    tracker.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert events.Tags()["scalars"] == ["train/loss"]  # None values are skipped
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(1, 2.5), (2, 1.5)]


def test_no_tracker_writes_nothing(tmp_path):
    tracker = Tracker(tmp_path, "run", tensorboard=False, wandb=False)
    tracker.log(1, {"train/loss": 1.0})
    tracker.close()
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_wandb_requested_but_missing_is_a_config_error():
    with pytest.raises(ConfigError, match="train.wandb: the wandb package is not installed"):
        check_tracking(tensorboard=False, wandb=True)


def test_wandb_runs_offline_in_the_run_folder_and_resumes_the_same_run(tmp_path, monkeypatch):
    import sys
    import types

    calls = []

    class FakeRun:
        def log(self, values, step):
            calls.append(("log", values, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kw: calls.append(("init", kw)) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    for _ in range(2):  # a resumed run logs to the same W&B run
        tracker = Tracker(tmp_path, "r1", tensorboard=False, wandb=True, config={"seed": 0})
        tracker.log(3, {"train/loss": 1.0, "val/accuracy": None})
        tracker.close()
    inits = [c[1] for c in calls if c[0] == "init"]
    assert inits[0]["mode"] == "offline" and inits[0]["dir"] == str(tmp_path)
    assert inits[0]["id"] == inits[1]["id"] and inits[0]["config"] == {"seed": 0}
    assert ("log", {"train/loss": 1.0}, 3) in calls and calls[-1] == ("finish",)
