"""DistributedDataParallel through torchrun, on the CPU with gloo: two processes against one."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from cnnvit import config as config_mod
from cnnvit.training.augment import batch_indices

from helpers import DDP_CONFIG, REPO, _cli

# what "the same" means: per-step losses within 1e-4 (float32 all-reduce sums in another order)
LOSS_ATOL = 1e-4
ACC_ATOL = 0.02  # two of the 100 test images may flip between near-tied classes


def test_batch_indices_shards_are_disjoint_and_cover_each_global_batch():
    one = list(batch_indices(103, 8, True, 5, True))
    two = [list(batch_indices(103, 4, True, 5, True, rank=r, world_size=2)) for r in range(2)]
    assert len(one) == len(two[0]) == len(two[1]) == 103 // 8
    for full, a, b in zip(one, *two):
        assert set(a.tolist()).isdisjoint(b.tolist())
        assert sorted(torch.cat([a, b]).tolist()) == sorted(full.tolist())


def test_two_processes_match_one(tmp_path, cli_env):
    params = tmp_path / "ddp.yaml"
    params.write_text(yaml.safe_dump(DDP_CONFIG))
    env = cli_env
    single = _cli(["-m", "cnnvit", "-q", "train", str(params), "--out", str(tmp_path / "one")], env)
    assert single.returncode == 0, single.stderr[-3000:]
    # train.nproc=2 makes the ordinary command start torchrun itself
    double = _cli(["-m", "cnnvit", "-q", "train", str(params), "--set", "train.nproc=2",
                   "--out", str(tmp_path / "two")], env)
    assert double.returncode == 0, double.stdout[-3000:] + double.stderr[-3000:]
    # one result line: the launching process's, not repeated by rank 0 (issue 26, item 12)
    result_line = f"{tmp_path / 'two'}: test accuracy "
    assert (double.stdout + double.stderr).count(result_line) == 1, double.stdout + double.stderr

    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    shards = two["distributed"]["shard_check"]
    assert two["distributed"]["world_size"] == 2 and two["distributed"]["backend"] == "gloo"
    assert shards["disjoint"] and shards["complete"]
    assert shards["per_rank"] == [96, 96] and shards["expected"] == 192  # 6 global batches of 32
    assert one["distributed"] is None and one["steps"] == two["steps"] == 12

    steps_one, steps_two = (pd.read_csv(tmp_path / d / "steps.csv") for d in ("one", "two"))
    np.testing.assert_allclose(steps_two["loss"], steps_one["loss"], atol=LOSS_ATOL)
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= ACC_ATOL
    # rank 0 alone wrote the run folder, and recorded the world size in the saved config
    saved = config_mod.from_dict(yaml.safe_load((tmp_path / "two" / "config.yaml").read_text()))
    assert saved.train.nproc == 2
    assert not list(tmp_path.glob("two-*.yaml"))  # the launch file is removed


def test_torchrun_started_by_hand_records_its_world_size(tmp_path, cli_env):
    params = tmp_path / "ddp.yaml"
    params.write_text(yaml.safe_dump({**DDP_CONFIG, "train": {**DDP_CONFIG["train"], "epochs": 1}}))
    res = _cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cnnvit",
                "-q", "train", str(params), "--out", str(tmp_path / "run")], cli_env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["nproc"] == 2
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["distributed"]["world_size"] == 2


@pytest.mark.parametrize("overrides, message", [
    (["train.nproc=3", "train.batch_size=32"], "divide evenly"),
    (["train.sync_bn=true", "device=cpu"], "SyncBatchNorm runs on CUDA only"),
])
def test_bad_distributed_settings_fail_before_work(overrides, message):
    with pytest.raises(config_mod.ConfigError, match=message):
        config_mod.build(overrides=overrides)


def test_sync_bn_on_a_machine_without_cuda_fails_before_work():
    from cnnvit.training import check_device

    cfg = config_mod.build(overrides=["train.sync_bn=true"])  # device=auto: this machine has no GPU
    with pytest.raises(config_mod.ConfigError, match=r"SyncBatchNorm runs on CUDA only.*this run is on cpu"):
        check_device(cfg)


def test_two_process_run_killed_mid_way_resumes(tmp_path, cli_env):
    """Interrupt the launching command (Ctrl-C, or a notebook cell's interrupt) once rank 0 has
    written a checkpoint: the workers stop with it; run the command again: it resumes from that
    epoch and ends where an uninterrupted run ends."""
    import signal
    import time

    cfg = {**DDP_CONFIG, "data": {**DDP_CONFIG["data"], "synthetic_train": 640},
           "train": {**DDP_CONFIG["train"], "epochs": 4}}
    params = tmp_path / "ddp.yaml"
    params.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "two"
    cmd = [sys.executable, "-m", "cnnvit", "-q", "train", str(params), "--set", "train.nproc=2",
           "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=cli_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # the launcher alone; it must stop torchrun and the ranks
    proc.wait(timeout=120)
    time.sleep(2)  # surviving workers, if any, would go on writing
    assert not (run / "metrics.json").exists(), "the workers outlived the interrupted launcher"

    again = _cli(cmd[1:], cli_env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming after epoch" in again.stdout + again.stderr
    resumed = json.loads((run / "metrics.json").read_text())
    assert 1 <= resumed["resumed_from_epoch"] < 4
    single = _cli(["-m", "cnnvit", "-q", "train", str(params), "--out", str(tmp_path / "one")], cli_env)
    assert single.returncode == 0, single.stderr[-3000:]
    steps_one, steps_two = (pd.read_csv(tmp_path / d / "steps.csv") for d in ("one", "two"))
    np.testing.assert_allclose(steps_two["loss"], steps_one["loss"], atol=LOSS_ATOL)
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    assert abs(one["test_accuracy"] - resumed["test_accuracy"]) <= ACC_ATOL


def test_a_worker_error_reaches_the_caller(tmp_path, cli_env):
    """torchrun's own summary hides why a worker failed; the launcher passes the reason on."""
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump({**DDP_CONFIG, "data": {**DDP_CONFIG["data"], "synthetic_train": 20}}))
    res = _cli(["-m", "cnnvit", "-q", "train", str(params), "--set", "train.nproc=2",
                "--out", str(tmp_path / "run")], cli_env)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()
    message = "\n".join(last[last.index(next(l for l in last if l.startswith("error: "))):])
    assert "the workers reported" in message and "exceeds the 20 training images" in message
