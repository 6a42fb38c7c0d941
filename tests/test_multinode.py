"""Several machines through torchrun's c10d rendezvous, played on one machine: two "nodes" of one
process each meet at 127.0.0.1 (gloo, CPU), each with its own run folder, as on machines that share
no disk."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

from cnnvit import config as config_mod
from cnnvit.errors import ConfigError, DistributedRunError
from cnnvit.training import distributed
from cnnvit.training.checks import check_run_inputs
from cnnvit.training.distributed import Dist

from helpers import DDP_CONFIG, REPO, _cli

# test_distributed's DDP config (no BatchNorm, dropout or augmentation), smaller: 4 steps
MN_CONFIG = {**DDP_CONFIG, "data": {"name": "synthetic", "synthetic_train": 128, "synthetic_test": 64},
             "train": {**DDP_CONFIG["train"], "epochs": 1, "eval_batch_size": 64}}
# what may differ between two runs that computed the same thing
VOLATILE = {"run", "finished", "train_time_s", "wall_time_s", "train_images_per_s"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(cmds: list[list[str]], env: dict, timeout: int = 240) -> list[subprocess.CompletedProcess]:
    """Start the commands at once (one "machine" each) and wait for all of them."""
    procs = [subprocess.Popen([sys.executable, *c], cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [subprocess.CompletedProcess(p.args, p.returncode, o, e) for p, (o, e) in zip(procs, outs)]


def _run_files(d) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def _same_run(a, b) -> None:
    """The two run folders hold the same results, to the bit."""
    pa, pb = (np.load(d / "predictions.npz") for d in (a, b))
    for key in ("logits", "labels", "predictions"):
        np.testing.assert_array_equal(pa[key], pb[key])
    assert (a / "steps.csv").read_text() == (b / "steps.csv").read_text()
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert {k: v for k, v in ma.items() if k not in VOLATILE} == {k: v for k, v in mb.items() if k not in VOLATILE}


def test_two_machines_give_the_run_of_one_machine_with_two_processes(tmp_path, cli_env):
    """The same command on two "machines" (train.nnodes=2) trains what train.nproc=2 trains on
    one: the same world size and the same shards of each global batch, and an all-reduce of two
    gradients (a + b, in either order, is the same float), so the results agree to the bit. One
    process against two is test_distributed's (within float tolerance), so not repeated here."""
    params = tmp_path / "mn.yaml"
    params.write_text(yaml.safe_dump(MN_CONFIG))
    port = _free_port()
    machines = _two_nodes([["-m", "cnnvit", "-q", "train", str(params), "--set", "train.nnodes=2",
                            f"train.rdzv_endpoint=127.0.0.1:{port}", "--out", str(tmp_path / d)]
                           for d in ("A", "B")], cli_env)
    for res in machines:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # (torchrun straight away: what train.nproc=2 launches, test_distributed's, less one start-up)
    one = _cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cnnvit", "-q",
                "train", str(params), "--out", str(tmp_path / "one")], cli_env)
    assert one.returncode == 0, one.stdout[-3000:] + one.stderr[-3000:]

    # rank 0 alone wrote, into its own machine's --out; the other machine's --out holds nothing
    written = [d for d in ("A", "B") if (tmp_path / d / "metrics.json").exists()]
    assert len(written) == 1, {d: _run_files(tmp_path / d) for d in ("A", "B")}
    run, other = tmp_path / written[0], tmp_path / ({"A", "B"} - set(written)).pop()
    assert _run_files(other) == []
    quiet = machines[0 if other.name == "A" else 1]
    assert "rank 0 ran on another machine" in quiet.stderr
    assert not list(tmp_path.glob("*-*.yaml"))  # the launch files are removed

    saved = config_mod.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    assert (saved.train.nnodes, saved.train.nproc) == (2, 1)
    assert json.loads((run / "metrics.json").read_text())["distributed"]["world_size"] == 2
    _same_run(run, tmp_path / "one")


def test_torchrun_by_hand_on_two_machines_is_recorded(monkeypatch):
    """Started by hand (``torchrun --nnodes 2 --nproc_per_node 1 ...``) with a config that leaves
    train.nproc and train.nnodes at 1, a rank reads torchrun's environment and saves what ran: 1
    process on each of 2 machines, and a config that loads again (train.nnodes > 1 needs an
    endpoint, which torchrun does not pass on: its store's address stands in). The environment
    is what torchrun 2.x gives rank 1 of such a job; reading it for real is the test above's
    (each worker's config names nnodes=2, which a misread environment would refuse)."""
    for key, value in {"RANK": "1", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1",
                       "GROUP_WORLD_SIZE": "2", "MASTER_ADDR": "node01", "MASTER_PORT": "41234"}.items():
        monkeypatch.setenv(key, value)
    dist = distributed.from_env()
    assert (dist.rank, dist.world_size, dist.local_world_size, dist.nnodes, dist.torchrun) == (1, 2, 1, 2, True)
    plain = _cfg()
    recorded = distributed.record_world(plain, dist)
    assert (recorded.train.nproc, recorded.train.nnodes) == (1, 2)
    assert recorded.train.rdzv_endpoint == "node01:41234"
    assert plain.train.nnodes == 1  # the caller's config is left as it was
    again = config_mod.from_dict(yaml.safe_load(config_mod.dump(recorded)))  # as saved in config.yaml
    assert (again.train.nproc, again.train.nnodes) == (1, 2)


def _cfg(*overrides: str) -> config_mod.Config:
    return config_mod.build(MN_CONFIG, overrides=list(overrides))


def test_a_config_naming_another_world_than_torchrun_started_fails():
    two_by_two = Dist(rank=0, world_size=4, local_rank=0, local_world_size=2, torchrun=True)
    with pytest.raises(ConfigError, match=r"train.nproc=1 and train.nnodes=3.*2 processes on each of "
                                          r"2 machines.*train.nnodes differs: 3 against 2"):
        distributed.record_world(_cfg("train.nnodes=3", "train.rdzv_endpoint=h:1", "train.batch_size=36"),
                                 two_by_two)
    with pytest.raises(ConfigError, match="train.nproc differs: 4 against 2"):
        distributed.record_world(_cfg("train.nproc=4"), two_by_two)
    recorded = distributed.record_world(_cfg("train.nproc=2"), two_by_two).train
    assert (recorded.nproc, recorded.nnodes) == (2, 2) and recorded.rdzv_endpoint
    # a job of one process under torchrun is not what train.nproc=2 asks for
    with pytest.raises(ConfigError, match="train.nproc differs: 2 against 1"):
        distributed.record_world(_cfg("train.nproc=2"), Dist(torchrun=True))


def test_default_rendezvous_id_follows_the_run_not_where_it_lies():
    base = _cfg("train.nnodes=2", "train.rdzv_endpoint=node01:29400")
    # each machine's own copy: the data elsewhere, another endpoint spelling, another device
    elsewhere = _cfg("train.nnodes=2", "train.rdzv_endpoint=10.0.0.1:29400", "data.root=/scratch/data",
                     "device=auto", "train.eval_batch_size=32")
    assert distributed.default_rdzv_id(base) == distributed.default_rdzv_id(elsewhere)
    for other in (["seed=1"], ["optim.lr=0.01"], ["train.nproc=2"]):
        changed = _cfg("train.nnodes=2", "train.rdzv_endpoint=node01:29400", *other)
        assert distributed.default_rdzv_id(changed) != distributed.default_rdzv_id(base), other


def test_launch_command_for_one_and_for_several_machines(tmp_path):
    out = tmp_path / "run"
    cfg = _cfg("train.nnodes=3", "train.nproc=2", "train.batch_size=36", "train.rdzv_endpoint=node01:29400")
    several = distributed.torchrun_args(cfg, "cfg.yaml", out, progress=False)
    rdzv_id = distributed.default_rdzv_id(cfg)
    assert rdzv_id.startswith("cnnvit-") and str(out.name) not in rdzv_id
    assert several == ["-m", "torch.distributed.run", "--nnodes=3", "--rdzv_backend=c10d",
                       "--rdzv_endpoint=node01:29400", f"--rdzv_id={rdzv_id}", "--nproc_per_node=2",
                       "-m", "cnnvit", "-q", "train", "cfg.yaml", "--out", str(out)]
    named = distributed.torchrun_args(_cfg("train.nnodes=2", "train.rdzv_endpoint=h:1", "train.rdzv_id=job7"),
                                      "cfg.yaml", out, progress=True)
    assert "--rdzv_id=job7" in named and "-q" not in named
    one = distributed.torchrun_args(_cfg("train.nproc=2"), "cfg.yaml", out, progress=True)
    assert one[:4] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert not [a for a in one if a.startswith(("--rdzv", "--nnodes"))]


@pytest.mark.parametrize("overrides, message", [
    (["train.nnodes=2"], "train.rdzv_endpoint: train.nnodes=2 needs the host:port"),
    (["train.nnodes=2", "train.rdzv_endpoint=node01"], "needs the host:port"),
    (["train.nnodes=3", "train.nproc=2", "train.rdzv_endpoint=h:1"],
     r"divide evenly among the 6 processes of train.nnodes=3 x train.nproc=2"),
])
def test_bad_multinode_settings_fail_before_work(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(*overrides)


def test_mixup_needs_an_even_batch_in_each_process_of_all_machines():
    # 36 images among 2 x 2 processes: 9 each, which mixup cannot pair
    cfg = _cfg("train.nnodes=2", "train.nproc=2", "train.rdzv_endpoint=h:1", "train.batch_size=36",
               "train.mixup=0.2")
    with pytest.raises(ConfigError, match="must be even when mixup"):
        check_run_inputs(cfg)


def test_ranks_start_from_one_state_or_say_why_not(tmp_path):
    agreed = distributed.agreed_state
    # other machines' folders stay empty ('new'), unless an earlier job had rank 0 there
    assert agreed(["new", "new", "new"], tmp_path) == "new"
    assert agreed(["partial", "partial"], tmp_path) == "partial"  # a shared folder
    assert agreed(["complete", "new", "complete"], tmp_path) == "complete"
    assert agreed(["new", "complete"], tmp_path) == "complete"  # done, in another machine's folder
    # each rank loads the checkpoint itself: a resume needs it on every machine
    with pytest.raises(DistributedRunError, match="rank 0 would resume .* but rank 1 finds none"):
        agreed(["partial", "new"], tmp_path)
    with pytest.raises(DistributedRunError, match="rank 1 would resume .* but rank 0 finds none"):
        agreed(["new", "partial"], tmp_path)


def test_a_machine_left_alone_says_the_others_did_not_come(tmp_path, cli_env):
    """One machine of two started: torchrun gives up waiting (here after 2 s, through its
    PET_RDZV_CONF environment variable) and the error says where the machines were to meet."""
    params = tmp_path / "mn.yaml"
    params.write_text(yaml.safe_dump(MN_CONFIG))
    port = _free_port()
    res = _cli(["-m", "cnnvit", "-q", "train", str(params), "--set", "train.nnodes=2",
                f"train.rdzv_endpoint=127.0.0.1:{port}", "--out", str(tmp_path / "A")],
               {**cli_env, "PET_RDZV_CONF": "join_timeout=2"}, timeout=120)
    assert res.returncode == 2
    assert f"error: A: the 2 machines did not all meet at 127.0.0.1:{port} (rendezvous id cnnvit-" in res.stderr
    assert _run_files(tmp_path / "A") == []
