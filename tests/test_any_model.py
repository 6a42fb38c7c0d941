"""Any timm model by name, torchvision's classification models as ``torchvision:NAME``: what the
registry says of them, that they build, learn and train end to end, that options they cannot use
are refused before any work, their weights (hub offline, a local file), and the ``models --all``
search. timm's tiny ``test_*`` models and small torchvision models at small sizes keep it fast."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from cnnvit.errors import ModelError
from cnnvit.models import (check_model_config, count_blocks, create_model, list_models, model_info,
                           search_models, weights)
from helpers import drop_rates, forward_fails



# --------------------------------------------------------------------------- names and metadata

def test_curated_names_take_precedence_and_the_prefix_means_the_library():
    curated, timm_own = model_info("test_vit"), model_info("timm:test_vit")
    assert curated.family == "tiny" and curated.native_size == 64 and curated.hub is None
    assert timm_own.family == "timm" and timm_own.native_size == 160
    assert not timm_own.fixed_size  # its config says fixed, but it resamples its position embedding
    assert type(create_model("resnet18", 3)).__module__.startswith("torchvision.")  # the curated one
    assert type(create_model("timm:resnet18", 3)).__module__.startswith("timm.")
    assert model_info("torchvision:resnet18").family == "torchvision"
    assert not {n for n in list_models() if n.startswith(("vit_tiny", "timm:", "torchvision:"))}
    assert model_info("timm:test_vit") is model_info("timm:test_vit")  # looked up once


def test_metadata_comes_from_the_libraries_configs():
    vit = model_info("vit_tiny_patch16_224")
    assert (vit.native_size, vit.fixed_size, vit.drop_path, vit.layer_decay, vit.freeze_last_k) == \
        (224, True, True, True, True)
    assert vit.hub.location() == "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"  # timm's default
    assert model_info("vit_tiny_patch16_224.augreg_in21k").hub.location() == "timm/vit_tiny_patch16_224.augreg_in21k"
    assert model_info("maxvit_tiny_pm_256").hub is None  # timm publishes no weights for it
    resnet = model_info("torchvision:resnet50")
    assert resnet.hub.ident == "ResNet50_Weights.IMAGENET1K_V2" and resnet.hub.location().startswith("https://")
    assert (resnet.native_size, resnet.fixed_size, resnet.layer_decay, resnet.freeze_last_k) == (224, False, False, True)
    assert model_info("torchvision:inception_v3").native_size == 299  # its weights' crop size
    assert model_info("torchvision:vit_b_16").fixed_size and not model_info("torchvision:swin_t").fixed_size
    squeeze = model_info("torchvision:squeezenet1_1")
    assert not (squeeze.freeze_last_k or squeeze.freeze_head or squeeze.layer_decay or squeeze.drop_path)


@pytest.mark.parametrize("name", ["timm:test_vit", "deit_tiny_distilled_patch16_224", "test_convnext", "test_efficientnet", "dla46_c",
                                  "torchvision:vit_b_16", "torchvision:resnet18", "torchvision:squeezenet1_1"])
def test_metadata_is_true_of_the_model(name):
    """As for the curated models: checked on the model built (on the meta device)."""
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name, 7).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, info.native_size, info.native_size)).shape == (1, 7)
        assert forward_fails(model, 2 * info.native_size) == info.fixed_size
    assert hasattr(model, "group_matcher") == info.layer_decay
    if info.freeze_last_k:
        assert count_blocks(model) >= 2
    else:
        with pytest.raises(weights.WeightsError, match="neither transformer blocks nor ResNet stages"):
            count_blocks(model)
    if info.drop_path:
        with torch.device("meta"):
            assert 0 < max(drop_rates(create_model(name, 7, drop_path=0.1))) <= 0.1 + 1e-6  # EfficientNet: below
    else:
        with pytest.raises(ModelError, match="model.drop_path"):
            create_model(name, 7, drop_path=0.1)


@pytest.mark.parametrize("name, hints", [
    ("vit_tiny_patch16_22", ["did you mean 'vit_tiny_patch16_224'?"]),
    ("mobilenet_v3_small", ["did you mean 'torchvision:mobilenet_v3_small'?"]),  # needs the prefix
    ("torchvision:mobilenet_v3", ["'torchvision:mobilenet_v3_small'"]),
    ("timm:vit_tiny_patch16", ["'timm:vit_tiny_patch16_224'"]),
])
def test_unknown_names_get_close_matches_and_the_search_command(name, hints):
    with pytest.raises(ModelError) as exc:
        model_info(name)
    msg = str(exc.value)
    assert msg.startswith(f"model.name: unknown model {name!r}") and "models --all PATTERN" in msg
    assert all(h in msg for h in hints), msg


def test_an_unknown_weights_tag_lists_the_models_tags():
    with pytest.raises(ModelError, match="no weights tagged 'bogus' for vit_tiny_patch16_224; its tags: "
                                         "augreg_in21k_ft_in1k, augreg_in21k"):
        model_info("vit_tiny_patch16_224.bogus")


# --------------------------------------------------------------------------- build, learn, train

@pytest.mark.parametrize("name, size", [("timm:test_vit", 160), ("test_efficientnet", 32), ("test_convnext", 32),
                                        ("torchvision:squeezenet1_1", 64), ("torchvision:mobilenet_v3_small", 32)])
def test_forward_backward(name, size):
    torch.manual_seed(0)
    model = create_model(name, 7).train()
    logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 5])).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_timm_model_trains_with_drop_path_layer_decay_and_last_k(tmp_path, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"model": {"name": "test_convnext", "drop_path": 0.1, "layer_decay": 0.7,
                              "freeze": "last_k", "trainable_blocks": 1},
                    "optim": {"name": "adamw", "weight_decay": 0.05}})
    check_model_config(cfg.model, 32)
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "test_convnext" and 0 <= m["test_accuracy"] <= 1 and m["epochs"] == 1
    model = create_model("test_convnext", 10)
    last = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("stages.3.", "head.")))
    assert m["trainable_parameters"] == last < m["parameters"]  # stem and stages 0-2 frozen


def test_torchvision_model_trains_through_the_cli_and_reloads(tmp_path, main, capsys):
    from cnnvit.training.run import load_run

    out = tmp_path / "run"
    assert main(["-q", "train", "--set", "model.name=torchvision:mobilenet_v3_small", "data.synthetic_train=64",
                 "data.synthetic_test=20", "train.epochs=1", "train.batch_size=16", "device=cpu",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert "test accuracy" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"] == "torchvision:mobilenet_v3_small" and m["weights"]["kind"] == "scratch"
    run = load_run(out, device="cpu")
    with np.load(out / "predictions.npz") as f:
        saved = f["predictions"]
    from cnnvit.datasets import load_dataset

    ds = load_dataset("synthetic", synthetic_train=64, synthetic_test=20)
    assert (run.predict(ds.test_images).argmax(1) == saved).mean() > 0.9  # the same model comes back


# --------------------------------------------------------------------------- options refused

@pytest.mark.parametrize("name, options, size, key", [
    ("vit_tiny_patch16_224", {}, 32, "data.image_size=224"),  # fixed size
    ("torchvision:vit_b_16", {}, 32, "data.image_size=224"),
    ("torchvision:squeezenet1_1", {"freeze": "last_k"}, 32, "model.freeze"),  # no blocks
    ("torchvision:squeezenet1_1", {"freeze": "head"}, 32, "model.freeze"),  # its classifier is a conv
    ("torchvision:mobilenet_v3_small", {"freeze": "last_k"}, 32, "model.freeze"),
    ("torchvision:mobilenet_v3_small", {"layer_decay": 0.7}, 32, "model.layer_decay"),  # no group_matcher
    ("caformer_s18", {"layer_decay": 0.7}, 224, "model.layer_decay"),  # timm's, without one
    ("torchvision:resnet18", {"drop_path": 0.1}, 32, "model.drop_path"),
    ("maxvit_tiny_pm_256", {"pretrained": True}, 256, "model.pretrained"),  # no published weights
])
def test_options_the_model_cannot_use_are_refused_before_any_work(name, options, size, key, tmp_path,
                                                                 train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"model": {"name": name, **options}, "data": {"image_size": size}})
    with pytest.raises(ModelError, match=re.escape(key)) as exc:
        check_model_config(cfg.model, size)
    assert name in str(exc.value)
    with pytest.raises(ModelError, match=re.escape(key)):
        train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    assert not (tmp_path / "run").exists()


def test_options_a_model_exposes_pass():
    from cnnvit import config as config_mod

    for name, size in (("test_convnext", 32), ("torchvision:resnet18", 64), ("torchvision:vit_b_16", 224)):
        check_model_config(config_mod.build(overrides=[f"model.name={name}", "model.pretrained=true",
                                                       "model.freeze=last_k"]).model, size)
    check_model_config(config_mod.build(overrides=["model.name=timm:test_vit", "model.layer_decay=0.7",
                                                   "model.drop_path=0.1", "model.freeze=head"]).model, 160)


# --------------------------------------------------------------------------- weights

@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(weights, "_hub_cached", lambda library, ident: False)
    monkeypatch.setattr(weights, "_online", lambda library, timeout=3.0: False)


@pytest.mark.parametrize("name, where", [("timm:test_vit", "timm/test_vit.r160_in1k"),
                                         ("torchvision:squeezenet1_1", "squeezenet1_1-b8a52dc0.pth")])
def test_offline_without_cached_weights_names_pretrained_path(name, where, offline, make_cfg):
    cfg = make_cfg({"model": {"name": name, "pretrained": True}})
    with pytest.raises(weights.WeightsError) as exc:
        weights.check_pretrained(cfg)
    msg = str(exc.value)
    assert where in msg and "offline" in msg and "model.pretrained_path" in msg


def test_pretrained_path_stands_in_for_hub_weights_offline(tmp_path, offline, train_mod, make_cfg, tiny_ds):
    torch.manual_seed(0)
    source = create_model("test_convnext", 4)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    cfg = make_cfg({"model": {"name": "test_convnext", "pretrained": True, "freeze": "head",
                              "pretrained_path": str(tmp_path / "w.pth")}})
    assert weights.check_pretrained(cfg).kind == "file"
    out = train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    m = json.loads((out / "metrics.json").read_text())
    assert m["weights"]["kind"] == "file" and "tensors loaded" in m["weights"]["label"]
    trained = torch.load(out / "model.pt", weights_only=True)
    body = [k for k in source.state_dict() if not k.startswith("head.fc.")]
    assert body and all(torch.equal(trained[k], source.state_dict()[k]) for k in body)  # loaded, frozen
    assert trained["head.fc.weight"].shape == (10, source.head.fc.in_features)


def test_torchvision_weights_load_then_the_classifier_is_replaced(tmp_path, monkeypatch):
    """torchvision's own loading, offline, from its cache (filled here with a stand-in file)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(weights, "_online", lambda library, timeout=3.0: False)
    torch.manual_seed(0)
    published = create_model("torchvision:squeezenet1_1", 1000).state_dict()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(published, tmp_path / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth")
    from cnnvit import config as config_mod

    cfg = config_mod.build(overrides=["model.name=torchvision:squeezenet1_1", "model.pretrained=true"])
    origin = weights.check_pretrained(cfg)  # cached: no network needed
    assert origin.kind == "hub" and origin.source.endswith("squeezenet1_1-b8a52dc0.pth")
    model = create_model("torchvision:squeezenet1_1", 5, pretrained=True)
    state = model.state_dict()
    assert state.keys() == create_model("torchvision:squeezenet1_1", 5).state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in published.items() if not k.startswith("classifier.1."))
    assert state["classifier.1.weight"].shape[0] == 5
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)


# --------------------------------------------------------------------------- the search

@pytest.fixture
def main(monkeypatch):
    """``cnnvit.__main__.main`` without its logging.basicConfig (which would outlive the test)."""
    import logging

    from cnnvit.__main__ import main as cli_main

    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    return cli_main


def test_models_all_searches_timm_and_torchvision(main, capsys):
    assert main(["models", "--all", "*vit_tiny*"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^vit_tiny_patch16_224\s+224 px fixed\s+weights: augreg_in21k_ft_in1k, augreg_in21k$",
                     out, flags=re.M)
    assert not re.search(r"^(torchvision:|timm:)", out, flags=re.M)
    assert main(["models", "--all", "resnet18"]) == 0  # no wildcard: anywhere in the name
    out = capsys.readouterr().out
    assert re.search(r"^torchvision:resnet18\s+224 px\s+weights ResNet18_Weights.IMAGENET1K_V1$", out, flags=re.M)
    assert re.search(r"^timm:resnet18\s+224 px\s+weights: a1_in1k", out, flags=re.M)  # curated resnet18 is torchvision's
    assert re.search(r"^resnet18d\s", out, flags=re.M)
    assert main(["models", "--all", "torchvision:squeeze*"]) == 0
    assert re.findall(r"^\S+", capsys.readouterr().out, flags=re.M) == ["torchvision:squeezenet1_0",
                                                                         "torchvision:squeezenet1_1"]
    assert main(["models", "--all", "no_such_model*"]) == 1
    assert "no timm or torchvision model matches" in capsys.readouterr().err
    assert main(["models"]) == 0  # the curated list, as before
    assert "vit_tiny_patch16_224" not in capsys.readouterr().out


def test_every_name_the_search_prints_resolves():
    found = search_models("*tiny*", list_models())
    assert len(found) > 20
    for m in found[::7]:
        assert model_info(m.name).native_size == m.size and model_info(m.name).pretrained == bool(m.weights)
