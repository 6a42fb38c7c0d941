"""Pretrained weights from files and the hub, freeze policies, layer-wise learning-rate decay."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from cnnvit import config as config_mod
from cnnvit.models import weights
from cnnvit.models import create_model
from cnnvit.training.setup import make_optimizer


def _grads(model: torch.nn.Module) -> set[str]:
    """Names of the parameters that receive a gradient from one backward pass."""
    model.zero_grad(set_to_none=True)
    size = 32 if hasattr(model, "patch_embed") else 16
    model(torch.randn(2, 3, size, size)).sum().backward()
    return {n for n, p in model.named_parameters() if p.grad is not None}


# --------------------------------------------------------------------------- loading files

@pytest.mark.parametrize("wrap", ["plain", "model", "state_dict", "ddp"])
def test_checkpoint_with_another_head_loads_all_but_the_head(tmp_path, wrap):
    torch.manual_seed(0)
    source = create_model("test_vit_cifar", 7)
    state = source.state_dict()
    if wrap == "ddp":
        state = {f"module.{k}": v for k, v in state.items()}
    elif wrap != "plain":
        state = {wrap: state, "epoch": 3}
    torch.save(state, tmp_path / "ckpt.pth")
    torch.manual_seed(1)
    target = create_model("test_vit_cifar", 10)
    fresh_head = target.head.weight.clone()
    report = weights.load_checkpoint(target, tmp_path / "ckpt.pth")
    assert report.mismatched == ["head.weight", "head.bias"] and not report.missing
    assert torch.equal(target.head.weight, fresh_head)  # the new 10-class head is kept
    for name, value in source.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(target.state_dict()[name], value), name
    assert "head.weight" in report.summary() and "other shape" in report.summary()


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    torch.save(create_model("test_resnet_cifar", 10).state_dict(), tmp_path / "resnet.pt")
    with pytest.raises(weights.WeightsError, match="does not fit this model"):
        weights.load_checkpoint(create_model("test_vit_cifar", 10), tmp_path / "resnet.pt")


@pytest.mark.parametrize("content, message", [(None, "no weights file"), (b"garbage", "cannot read"),
                                              ({"epoch": 1}, "no state dict")])
def test_bad_weight_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "w.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(weights.WeightsError, match=message):
        weights.read_state_dict(path)


def test_run_folder_of_this_project_is_a_checkpoint_and_says_so(tmp_path, train_mod, make_cfg, tiny_ds):
    """Offline transfer: a run this project trained is the starting point of another."""
    source = train_mod.train(make_cfg({"model": {"name": "test_vit_cifar"}}), tmp_path / "pre",
                             dataset=tiny_ds, progress=False)
    label = "pretrained on synthetic by this project (test_vit_cifar, run pre)"
    assert weights.describe_source(source) == label
    origin = {"kind": "run", "source": str(source), "data": "synthetic", "model": "test_vit_cifar", "run": "pre"}
    assert weights.checkpoint_origin(source).to_json() == {**origin, "label": label}
    cfg = make_cfg({"model": {"name": "test_vit_cifar", "pretrained_path": str(source), "freeze": "head"}})
    out = train_mod.train(cfg, tmp_path / "fine", dataset=tiny_ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in m["weights"].items() if k != "label"} == origin  # data, not a sentence
    assert m["weights"]["label"].startswith(label + ": ") and "tensors loaded" in m["weights"]["label"]
    assert m["trainable_parameters"] == sum(p.numel() for p in create_model("test_vit_cifar", 10).head.parameters())
    fine = torch.load(out / "model.pt", weights_only=True)
    pre = torch.load(source / "model.pt", weights_only=True)
    frozen = [k for k in pre if not k.startswith("head.")]
    assert all(torch.equal(fine[k], pre[k]) for k in frozen)  # the backbone did not move


def test_weights_origin_is_data_with_the_label_of_each_kind(tmp_path):
    """What prepare_model says of a model's starting weights: a scratch model, published weights
    and a plain file, each with the same keys (JSON as stored in metrics.json) and its label."""
    torch.save(create_model("test_vit_cifar", 10).state_dict(), tmp_path / "w.pt")
    scratch = config_mod.build(overrides=["model.name=test_vit_cifar"]).model
    from_file = config_mod.build(overrides=["model.name=test_vit_cifar", f"model.pretrained_path={tmp_path / 'w.pt'}"]).model
    hub = config_mod.build(overrides=["model.name=vit_base_patch16_224", "model.pretrained=true"]).model
    origins = {kind: weights.prepare_model(create_model("test_vit_cifar", 10), cfg)[1].to_json()
               for kind, cfg in (("scratch", scratch), ("file", from_file), ("hub", hub))}
    for kind, origin in origins.items():
        assert json.loads(json.dumps(origin)) == origin
        assert set(origin) == {"kind", "source", "data", "model", "run", "label"}
        assert origin["kind"] == kind and origin["data"] is None and origin["run"] is None
    assert origins["scratch"]["source"] is None and origins["scratch"]["label"] == "trained from scratch"
    assert origins["file"]["source"] == str(tmp_path / "w.pt")
    assert origins["file"]["label"].startswith(f"pretrained weights from {tmp_path / 'w.pt'}: ")
    assert origins["hub"]["source"].startswith("timm/vit_base_patch16_224")
    assert origins["hub"]["label"] == f"pretrained: timm weights {origins['hub']['source']}"


# --------------------------------------------------------------------------- hub, offline

def test_offline_without_weights_fails_at_once_naming_them(monkeypatch):
    monkeypatch.setattr(weights, "_hub_cached", lambda library, ident: False)
    monkeypatch.setattr(weights, "_online", lambda library, timeout=3.0: False)
    cfg = config_mod.build(overrides=["model.name=deit_base_patch16_224", "model.pretrained=true",
                                      "data.image_size=224"])
    with pytest.raises(weights.WeightsError) as exc:
        weights.check_pretrained(cfg)
    msg = str(exc.value)
    assert "timm/deit_base_patch16_224" in msg and "offline" in msg
    assert "model.pretrained_path=FILE" in msg


def test_models_without_published_weights_say_so():
    cfg = config_mod.build(overrides=["model.name=test_vit_cifar", "model.pretrained=true"])
    with pytest.raises(weights.WeightsError, match="no published weights"):
        weights.check_pretrained(cfg)


def test_study_lists_missing_weights_before_training(tmp_path, monkeypatch):
    from cnnvit.errors import StudyInputError
    from cnnvit.studies import check_study_inputs, load_study

    monkeypatch.setattr(weights, "_hub_cached", lambda library, ident: False)
    monkeypatch.setattr(weights, "_online", lambda library, timeout=3.0: False)
    params = tmp_path / "s.yaml"
    params.write_text(yaml.safe_dump(sort_keys=False, data={"study": "s", "profile": "smoke", "base": {"device": "cpu"}, "runs": {
        "hub": {"config": {"model": {"name": "deit_tiny_patch16_224", "pretrained": True},
                           "data": {"image_size": 224}}},
        "pre": {"config": {"model": {"name": "test_vit_cifar"}}},
        "fine": {"config": {"model": {"name": "test_vit_cifar", "pretrained_path": "run:pre"}}}}}))
    study = load_study(params, out_dir=tmp_path / "out")
    assert study.runs["fine"].config.model.pretrained_path == str(tmp_path / "out" / "runs" / "pre")
    with pytest.raises(StudyInputError) as exc:
        check_study_inputs(study)
    assert "deit_tiny_patch16_224" in str(exc.value) and "(runs: hub)" in str(exc.value)


def test_run_reference_must_name_an_earlier_run(tmp_path):
    from cnnvit.studies import load_study

    params = tmp_path / "s.yaml"
    params.write_text(yaml.safe_dump({"study": "s", "profile": "smoke", "runs": {
        "fine": {"config": {"model": {"pretrained_path": "run:pre"}}}, "pre": {}}}))
    with pytest.raises(config_mod.ConfigError, match="must name a run listed before it"):
        load_study(params)


# --------------------------------------------------------------------------- what trains

def test_linear_probe_trains_the_head_only():
    model = create_model("test_vit_cifar", 10)
    weights.apply_freeze(model, "head")
    assert _grads(model) == {"head.weight", "head.bias"}


def test_last_k_blocks_train_with_everything_after_them():
    model = create_model("test_vit_cifar", 10)  # 2 blocks
    weights.apply_freeze(model, "last_k", trainable_blocks=1)
    trained = _grads(model)
    assert {n.split(".")[0] for n in trained} == {"blocks", "norm", "head"}
    assert all(n.startswith("blocks.1.") for n in trained if n.startswith("blocks"))
    assert not model.cls_token.requires_grad and not model.pos_embed.requires_grad


@pytest.mark.parametrize("name", ["test_resnet_cifar", "test_resnet_bottleneck"])  # ours, torchvision's
def test_freezing_a_resnet_fixes_its_batchnorm_statistics(name):
    model = create_model(name, 10)
    weights.apply_freeze(model, "last_k", trainable_blocks=1)
    assert {n.split(".")[0] for n in _grads(model)} == {"layer4", "fc"}
    before = model.layer1[0].bn1.running_mean.clone()
    model.train()
    model(torch.randn(4, 3, 16, 16) * 5 + 3)
    assert torch.equal(model.layer1[0].bn1.running_mean, before)  # frozen part: statistics fixed
    probe = create_model(name, 10)
    weights.apply_freeze(probe, "head")
    assert _grads(probe) == {"fc.weight", "fc.bias"}


def test_full_fine_tuning_trains_everything():
    model = create_model("test_vit_cifar", 10)
    weights.apply_freeze(model, "none")
    assert _grads(model) == {n for n, _ in model.named_parameters()}


@pytest.mark.parametrize("name, k, message", [  # AlexNet and VGG have no blocks to count
    ("test_vit_cifar", 5, "between 1 and"),
    ("test_alexnet", 1, "TinyAlexNet has neither .* use model.freeze=none or head")])
def test_last_k_is_refused_out_of_range_or_without_blocks(name, k, message):
    with pytest.raises(weights.WeightsError, match=message):
        weights.apply_freeze(create_model(name, 10), "last_k", trainable_blocks=k)


def test_layer_decay_scales_the_learning_rate_by_depth(train_mod, make_cfg):
    model = create_model("test_vit_cifar", 10)
    cfg = make_cfg({"model": {"name": "test_vit_cifar", "layer_decay": 0.5},
                    "optim": {"name": "adamw", "weight_decay": 0.05}})
    opt = make_optimizer(cfg, model)
    scale = {id(p): g["lr_scale"] for g in opt.param_groups for p in g["params"]}
    assert scale[id(model.head.weight)] == 1.0
    assert scale[id(model.blocks[1].mlp.fc1.weight)] == 0.5
    assert scale[id(model.blocks[0].mlp.fc1.weight)] == 0.25
    assert scale[id(model.patch_embed.proj.weight)] == 0.125
    with pytest.raises(weights.WeightsError, match="group_matcher"):
        make_optimizer(make_cfg({"model": {"layer_decay": 0.5}}), create_model("test_resnet_cifar", 10))


def test_reloaded_run_with_a_frozen_resnet_predicts_as_trained(tmp_path, train_mod, make_cfg, tiny_ds):
    from cnnvit.training.run import load_run

    cfg = make_cfg({"model": {"freeze": "last_k", "trainable_blocks": 2}})
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    run = load_run(out, device="cpu")
    acc = float((run.predict(tiny_ds.test_images).argmax(1) == tiny_ds.test_labels).mean())
    assert acc == run.metrics.test_accuracy


@pytest.mark.parametrize("name, heads", [("test_deit_distilled", {"head", "head_dist"}),
                                         ("test_swin", {"head.fc"}), ("test_cait", {"head"}),
                                         ("test_vgg_bn", {"classifier.7"}),
                                         ("test_alexnet", {"classifier.6"}), ("alexnet", {"classifier.6"}),
                                         ("vgg16", {"classifier.6"}),
                                         ("resnet101", {"fc"}), ("resnet152", {"fc"}),
                                         ("vit_base_patch32_224", {"head"})])
def test_linear_probe_finds_each_architectures_classifier(name, heads):
    # structure only, so on the meta device: initialising VGG16's 138M weights would take seconds;
    # freezing inside the block too, as timm's freeze builds FrozenBatchNorm2d layers anew
    with torch.device("meta"):
        model = create_model(name, 10)
        weights.apply_freeze(model, "head")
    trained = {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trained == heads
