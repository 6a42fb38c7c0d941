"""The typed records of a run (:mod:`cnnvit.records`): metrics.json read and written back
unchanged, by this version and by older ones (keys added since, unknown keys, the sentences that
stood for the weights' origin), a Run's record read once per version of its file, and the string
enums equal to the strings they replaced."""
from __future__ import annotations

import copy
import json
import os
import shutil

import pytest

from cnnvit.records import DatasetCounts, Divergence, EarlyStopping, RunResult, WeightsKind, WeightsOrigin
from cnnvit.report.render import ReportStatus, StudyOutcome
from cnnvit.studies.groups import GroupKind, pairs, parts, runs
from cnnvit.training import RunStatus, load_run, read_result

# a metrics.json as the first version wrote it: none of the keys added since, and one it had then
# ("resumed") that no version reads any more
OLDEST = {
    "run": "r18", "model": "resnet18_cifar", "parameters": 11_173_962, "epochs": 2, "steps": 40,
    "test_accuracy": 0.41, "test_top5": 0.88, "train_time_s": 12.5, "wall_time_s": 14.0,
    "train_images_per_s": 820.0, "device": "cpu (test)", "torch": "2.1.0",
    "dataset": {"name": "cifar10", "source": "data/cifar10", "n_train": 1000, "n_test": 500},
    "finished": "2026-01-02T03:04:05+0000", "test": {"accuracy": 0.41, "top5_accuracy": 0.88},
    "resumed": True,
}
SENTENCES = [  # the weights of metrics.json before the origin was data, and what they mean
    ("trained from scratch", WeightsKind.SCRATCH, {}),
    ("", WeightsKind.SCRATCH, {}),
    ("pretrained: torchvision weights https://x/resnet152.pth", WeightsKind.HUB,
     {"source": "https://x/resnet152.pth"}),
    ("pretrained weights from /w/deit.pth: 150 tensors loaded", WeightsKind.FILE, {"source": "/w/deit.pth"}),
    ("pretrained on celeba by this project (test_vit, run pretrain): 152 tensors loaded", WeightsKind.RUN,
     {"data": "celeba", "model": "test_vit", "run": "pretrain"}),
]


def test_a_finished_run_reads_back_as_written(finished_run):
    raw = json.loads((finished_run[0] / "metrics.json").read_text())
    result = RunResult.from_json(raw)
    assert result.to_json() == raw and list(result.to_json()) == list(raw)  # same keys, same order
    assert json.dumps(result.to_json(), indent=1) == (finished_run[0] / "metrics.json").read_text()
    assert not result.absent and not result.extra  # this version writes every key it knows, no other
    assert isinstance(result.dataset, DatasetCounts) and result.dataset.n_test == raw["dataset"]["n_test"]
    assert result.weights == WeightsOrigin.scratch() and result.weights.kind == "scratch"
    assert result.epochs_trained == result.epochs_run == 2 and result.diverged is None
    assert read_result(finished_run[0]) == result


def test_an_older_metrics_json_reads_and_writes_back_unchanged():
    result = RunResult.from_json(OLDEST)
    assert result.to_json() == OLDEST
    assert result.extra == {"resumed": True}  # kept, not lost
    assert result.weights == WeightsOrigin.scratch() and result.task == "single-label"
    assert result.dataset.n_val is None and result.majority_baseline is None
    assert result.epochs_trained == 2  # no epochs_run then: the configured epochs
    assert {"weights", "epochs_run", "early_stopping"} <= result.absent


def test_nested_records_read_their_entries():
    raw = {**OLDEST, "diverged": {"epoch": 4, "step": 900, "loss": "nan"}, "epochs_run": 4,
           "early_stopping": {"patience": 3, "best_epoch": 2, "stopped_after_epoch": None}}
    result = RunResult.from_json(raw)
    assert result.diverged == Divergence(epoch=4, step=900, loss="nan")
    assert result.early_stopping == EarlyStopping(patience=3, best_epoch=2)
    assert result.epochs_trained == 4 and result.to_json() == raw


def test_a_metrics_json_without_a_key_every_version_wrote_says_which():
    broken = {k: v for k, v in OLDEST.items() if k != "test_accuracy"}
    with pytest.raises(ValueError, match="test_accuracy"):
        RunResult.from_json(broken)


@pytest.mark.parametrize("sentence, kind, fields", SENTENCES)
def test_the_old_weights_sentences_are_read_as_data_and_written_back_as_they_were(sentence, kind, fields):
    origin = WeightsOrigin.from_json(sentence)
    assert origin.kind == kind and origin.label == (sentence or "trained from scratch")
    assert {k: getattr(origin, k) for k in fields} == fields
    assert all(getattr(origin, k) is None for k in ("source", "data", "model", "run") if k not in fields)
    raw = {**OLDEST, "weights": sentence}
    assert RunResult.from_json(raw).to_json() == raw  # the old file's sentence, not a new record
    assert origin.to_json()["kind"] == kind.value  # the record itself is data


def test_a_weights_record_reads_back_as_written_extra_keys_included():
    written = {"kind": "run", "source": "/o/runs/pre", "data": "celeba", "model": "test_vit", "run": "pre",
               "label": "pretrained on celeba by this project (test_vit, run pre)", "note": "kept"}
    origin = WeightsOrigin.from_json(written)
    assert origin.to_json() == written and origin.extra == {"note": "kept"}
    assert json.loads(json.dumps(origin.to_json())) == written  # plain JSON: the kind is a string
    with pytest.raises(ValueError):
        WeightsOrigin.from_json({**written, "kind": "downloaded"})  # not a kind cnnvit writes


def test_a_run_reads_its_record_once_per_version_of_the_file(finished_run, tmp_path):
    """Run.metrics is read once and kept; a run trained again into the folder (here: its
    metrics.json replaced, as the atomic write replaces it) is read anew, never served stale."""
    folder = shutil.copytree(finished_run[0], tmp_path / "run")
    run = load_run(folder, device="cpu")
    first = run.metrics
    assert run.metrics is first and run.weights is first.weights  # not read again
    raw = copy.deepcopy(first.to_json())
    raw["test_accuracy"] = 0.125
    tmp = folder / ".metrics.json.tmp"
    tmp.write_text(json.dumps(raw, indent=1))
    os.replace(tmp, folder / "metrics.json")
    assert run.metrics.test_accuracy == 0.125 and run.metrics is not first


def test_the_enums_equal_the_strings_they_replaced_and_write_them():
    assert [s.value for s in RunStatus] == ["new", "partial", "complete", "conflict", "incomplete"]
    assert RunStatus.COMPLETE == "complete" and "complete" == RunStatus.COMPLETE
    assert [s.value for s in ReportStatus] == ["ok", "partial", "failed"]
    assert [k.value for k in GroupKind] == ["run", "runs", "parts", "pairs"]
    assert [k.value for k in WeightsKind] == ["scratch", "hub", "file", "run"]
    assert json.dumps({"status": ReportStatus.FAILED, "state": RunStatus.NEW}) == '{"status": "failed", "state": "new"}'
    assert f"status-{ReportStatus.PARTIAL}" == "status-partial"  # (the report's CSS class)
    assert StudyOutcome("01_x", "X", "ok").status is ReportStatus.OK  # a plain string becomes the member
    with pytest.raises(ValueError):
        StudyOutcome("01_x", "X", "fine")
    assert (runs("a").kind, parts("b", "x").kind, pairs("c").kind) == ("runs", "parts", "pairs")
