"""Model registry: forward and backward of every small model at its native size; each model's
metadata checked against the model itself; options a model cannot use are refused."""
from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnvit import config as config_mod
from cnnvit.errors import ModelError
from cnnvit.models import (apply_freeze, check_input_size, check_model_config, count_parameters, create_model,
                           hub_weights, is_fixed_size, list_models, model_info, native_size)
from helpers import drop_rates, forward_fails

REPO = Path(__file__).resolve().parents[1]

RUNNABLE = [n for n in list_models()
            if n.startswith("test_") or n in ("resnet18_cifar", "resnet18", "naive_cnn")]


def test_registry_contents():
    names = list_models()
    assert names == sorted(names)
    for expected in ("resnet18", "resnet18_cifar", "vit_base_patch16_224", "vit_small_cifar",
                     "test_resnet", "test_resnet_cifar", "test_vit", "test_vit_cifar",
                     "test_alexnet", "test_resnet_bottleneck", *STUDY5_MODELS):
        assert expected in names
    assert {"test_resnet", "test_resnet_cifar", "test_vit", "test_vit_cifar",
            "resnet18", "resnet18_cifar"} <= set(RUNNABLE)
    assert native_size("vit_base_patch16_224") == 224
    assert native_size("resnet18") == 224
    assert native_size("resnet18_cifar") == 32
    assert native_size("test_vit") == 64
    assert native_size("test_vit_cifar") == 32
    assert all(native_size(n) == 224 for n in STUDY5_MODELS)
    assert [n for n in STUDY5_MODELS if is_fixed_size(n)] == ["vit_base_patch32_224"]


@pytest.mark.parametrize("name", RUNNABLE)
def test_forward_backward_at_native_size(name):
    torch.manual_seed(0)
    num_classes = 7
    model = create_model(name, num_classes)
    model.train()
    size = native_size(name)
    x = torch.randn(2, 3, size, size)
    logits = model(x)
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 5]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    assert any(p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    check_input_size(name, size)  # the native size passes the check


def test_cifar_stem_keeps_resolution():
    model = create_model("test_resnet_cifar", 10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    imagenet = create_model("test_resnet", 10)
    assert imagenet.conv1.stride == (2, 2)


def test_vit_base_builds_with_86m_parameters():
    model = create_model("vit_base_patch16_224", 10)
    n = count_parameters(model)
    assert 85e6 < n < 87e6, n
    assert model.head.out_features == 10


def test_vit_small_cifar_size():
    n = count_parameters(create_model("vit_small_cifar", 10))
    assert 2.5e6 < n < 3.0e6, n


def test_drop_path_reaches_the_vit():
    model = create_model("test_vit_cifar", 10, drop_path=0.1)
    rates = [getattr(b.drop_path1, "drop_prob", 0.0) for b in model.blocks]
    assert max(rates) == pytest.approx(0.1)


def test_unknown_model_raises_naming_it():
    with pytest.raises(ValueError, match="'nope'"):
        create_model("nope", 10)


@pytest.mark.parametrize("name", ["test_resnet", "test_vit", "resnet18_cifar", "test_alexnet",
                                  "test_resnet_bottleneck"])
def test_pretrained_refused_where_there_are_no_weights(name):
    with pytest.raises(ValueError, match="pretrained"):
        create_model(name, 10, pretrained=True)


@pytest.mark.parametrize("name, wrong", [("test_vit", 32), ("test_vit_cifar", 64),
                                         ("vit_base_patch16_224", 32), ("vit_small_cifar", 224),
                                         ("vit_base_patch32_224", 64)])
def test_check_input_size_rejects_vit_at_wrong_size(name, wrong):
    with pytest.raises(ValueError) as exc:
        check_input_size(name, wrong)
    assert name in str(exc.value)
    assert f"data.image_size={native_size(name)}" in str(exc.value)


def test_check_input_size_reflects_a_real_failure():
    """The check stands for a real limitation: the ViT cannot run at another size."""
    model = create_model("test_vit_cifar", 10)
    with pytest.raises(Exception):
        model(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("name", ["test_resnet", "resnet18", "alexnet", "vgg16", "resnet101",
                                  "resnet152"])
def test_cnns_accept_any_size(name):
    check_input_size(name, 32)
    check_input_size(name, 100)


# ------------------------------------------------------------------- study 2 (Tiny-ImageNet)

# parameters with 200 classes: the seed's figures (002_*.txt) where it gives them
SEED_PARAMETERS = {"resnet18_cifar": 11.27e6, "resnet34_cifar": 21.38e6, "resnet50_cifar": 23.91e6,
                   "resnet50_noskip_cifar": 21.133e6, "resnext50_32x4d_cifar": 23.38e6}
STUDY2_MODELS = ["vgg19_bn", "vgg19", "resnet18_cifar", "resnet34_cifar", "resnet50_cifar",
                 "resnet50_noskip_cifar", "resnext50_32x4d_cifar", "t2t_vit_t_14_64"]
# study 5 (CelebA): ImageNet models; parameters with 1000 classes as torchvision and timm publish them
STUDY5_MODELS = ["alexnet", "vgg16", "resnet101", "resnet152", "vit_base_patch32_224"]
IMAGENET_PARAMETERS = {"alexnet": 61.10e6, "vgg16": 138.36e6, "resnet101": 44.55e6, "resnet152": 60.19e6,
                       "vit_base_patch32_224": 88.22e6}


@pytest.mark.parametrize("name, num_classes, expected, tolerance",
                         [(n, 200, v, 0.001 * v) for n, v in SEED_PARAMETERS.items()]
                         + [(n, 1000, v, 0.01e6) for n, v in IMAGENET_PARAMETERS.items()])
def test_parameter_counts_match_published_figures(name, num_classes, expected, tolerance):
    with torch.device("meta"):  # shapes without the cost of initialising 138M weights
        n = count_parameters(create_model(name, num_classes))
    assert abs(n - expected) <= tolerance, n


def test_t2t_vit_t_14_matches_the_paper_and_the_seed():
    model = create_model("t2t_vit_t_14", 1000)
    assert abs(count_parameters(model) - 21.5e6) / 21.5e6 < 0.02  # the paper's 21.5M
    # the seed's 21.23M with 200 classes counts the official code's fixed position table too
    seed = count_parameters(create_model("t2t_vit_t_14", 200)) + model.pos_embed.numel()
    assert abs(seed - 21.23e6) / 21.23e6 < 0.001
    assert model.no_weight_decay() == {"cls_token"}


@pytest.mark.parametrize("name, num_classes",
                         [(n, 200) for n in STUDY2_MODELS] + [(n, 5) for n in STUDY5_MODELS])
def test_study_models_forward_backward_at_64px(name, num_classes):
    """The real architectures (not only their stand-ins), one small batch at 64 px, or at the
    native size of a model that takes no other (ViT-B/32: 224 px, 49 tokens, about a second)."""
    torch.manual_seed(0)
    model = create_model(name, num_classes, drop_path=0.1 if name.startswith("t2t") else 0.0)
    size = native_size(name) if is_fixed_size(name) else 64
    logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, num_classes)
    torch.nn.functional.cross_entropy(logits, torch.tensor([3, num_classes - 1])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.parameters() if p.requires_grad)


def test_small_stem_keeps_64px_in_the_first_stage():
    model = create_model("resnet50_cifar", 200)
    feats = model.layer1(model.relu(model.bn1(model.conv1(torch.randn(1, 3, 64, 64)))))
    assert feats.shape[-2:] == (64, 64)


@pytest.mark.parametrize("name, plain", [("resnet50_noskip_cifar", True), ("resnet50_cifar", False),
                                         ("test_resnet_noskip_cifar", True),
                                         ("test_resnet_bottleneck_cifar", False)])
def test_no_skip_really_removes_the_shortcuts(name, plain):
    """Zero the last block's output BatchNorm: with a shortcut the input still reaches the head,
    without one the logits no longer depend on the input."""
    model = create_model(name, 10).eval()
    last = model.layer4[-1]
    bn3 = (last.block if plain else last).bn3
    torch.nn.init.zeros_(bn3.weight)
    torch.nn.init.zeros_(bn3.bias)
    a, b = model(torch.randn(1, 3, 32, 32)), model(torch.randn(1, 3, 32, 32))
    assert torch.allclose(a, b) == plain
    assert not any("downsample" in n for n, _ in model.named_modules()) == plain


def test_resnext_uses_grouped_convolutions():
    model = create_model("resnext50_32x4d_cifar", 200)
    assert model.layer1[0].conv2.groups == 32
    assert model.layer1[0].conv2.in_channels == 128  # 32 groups x 4 channels


def test_vgg_variants_differ_only_in_batchnorm():
    with_bn, without = create_model("vgg19_bn", 200), create_model("vgg19", 200)
    convs = lambda m: [x.out_channels for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert convs(with_bn) == convs(without) and len(convs(with_bn)) == 16
    assert sum(isinstance(x, torch.nn.BatchNorm2d) for x in with_bn.modules()) == 16
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in without.modules())
    assert sum(isinstance(x, torch.nn.Linear) for x in with_bn.modules()) == 3


@pytest.mark.parametrize("name, library", [("resnet18", "torchvision"), ("alexnet", "torchvision"),
                                           ("vgg16", "torchvision"), ("resnet101", "torchvision"),
                                           ("resnet152", "torchvision"), ("vit_base_patch16_224", "timm"),
                                           ("vit_base_patch32_224", "timm"), ("test_alexnet", None)])
def test_hub_weights_name_the_library_that_serves_them(name, library):
    source = hub_weights(name)
    assert (source and source[0]) == library
    if library == "torchvision":  # the URL of the weights that the builder loads
        assert source[1].startswith(f"https://download.pytorch.org/models/{name}-")
    elif library == "timm":
        assert source[1].startswith(f"timm/{name}.")


@pytest.mark.parametrize("name, wrong", [("t2t_vit_t_14", 64), ("t2t_vit_t_14_64", 224),
                                         ("test_t2t_vit", 64)])
def test_t2t_vit_has_a_fixed_input_size(name, wrong):
    with pytest.raises(ValueError, match=f"data.image_size={native_size(name)}"):
        check_input_size(name, wrong)


# ------------------------------------------------------------------- the registry's metadata



@pytest.mark.parametrize("name", list_models())
def test_metadata_is_true_of_the_model(name):
    """Every entry's metadata, checked against the model it builds (on the meta device: shapes
    without the cost of initialising the large ones): native size, fixed size, published
    weights, stochastic depth, layer grouping and blocks to count for freeze=last_k."""
    info = model_info(name)
    assert info.name == name and info.description
    # T2T-ViT's drop-path schedule reads a tensor's values, which the meta device does not hold
    device = "cpu" if name.startswith(("t2t_vit", "test_t2t_vit")) else "meta"
    with torch.device(device):
        model = create_model(name, 7).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, info.native_size, info.native_size)).shape == (1, 7)
        # a fixed-size model fails at twice its size, any other one runs there
        assert forward_fails(model, 2 * info.native_size) == info.fixed_size
        assert hasattr(model, "group_matcher") == info.layer_decay
        if info.drop_path:
            assert max(drop_rates(create_model(name, 7, drop_path=0.1)), default=0) == pytest.approx(0.1)
        if info.freeze_last_k:
            apply_freeze(model, "last_k", trainable_blocks=1)
    if not info.drop_path:
        with pytest.raises(ModelError, match="model.drop_path"):
            create_model(name, 7, drop_path=0.1)
    if not info.freeze_last_k:
        with pytest.raises(Exception, match="neither transformer blocks nor ResNet stages"):
            apply_freeze(model, "last_k", trainable_blocks=1)
    if info.pretrained:
        assert hub_weights(name)[0] == info.hub.library
    else:
        assert hub_weights(name) is None
        with pytest.raises(ModelError, match="model.pretrained"):
            create_model(name, 7, pretrained=True)
    assert is_fixed_size(name) == info.fixed_size and native_size(name) == info.native_size


@pytest.mark.parametrize("name", list_models())
def test_registered_name_is_the_builders_own_name(name):
    """The name comes from the builder's function name, which its body does not repeat."""
    builder = model_info(name).builder
    assert builder.__name__ == name
    body = inspect.getsource(builder).split(f"def {name}(", 1)[1]
    assert f'"{name}"' not in body and f"'{name}'" not in body


def test_tiny_stand_ins_are_registered_apart():
    assert {n for n in list_models() if n.startswith("test_")} == \
        {n for n in list_models() if model_info(n).family == "tiny"}


@pytest.mark.parametrize("name, options, key", [
    ("test_resnet_cifar", {"drop_path": 0.1}, "model.drop_path"),
    ("resnet18_cifar", {"drop_path": 0.1}, "model.drop_path"),
    ("vgg19_bn", {"layer_decay": 0.65}, "model.layer_decay"),
    ("t2t_vit_t_14_64", {"layer_decay": 0.65}, "model.layer_decay"),
    ("test_alexnet", {"freeze": "last_k"}, "model.freeze"),
    ("test_swin", {"freeze": "last_k"}, "model.freeze"),
    ("resnet18_cifar", {"pretrained": True}, "model.pretrained"),
])
def test_an_option_the_model_cannot_use_is_refused(name, options, key, tmp_path, train_mod, make_cfg, tiny_ds):
    cfg = make_cfg({"model": {"name": name, **options}})
    with pytest.raises(ModelError, match=key) as exc:
        check_model_config(cfg.model)
    assert name in str(exc.value)
    with pytest.raises(ModelError, match=key):  # before any file is written
        train_mod.train(cfg, tmp_path / "run", dataset=tiny_ds, progress=False)
    assert not (tmp_path / "run").exists()


def test_options_at_their_off_value_and_applicable_options_pass():
    check_model_config(config_mod.build(overrides=["model.name=resnet18_cifar"]).model, 64)
    check_model_config(config_mod.build(overrides=[
        "model.name=vit_base_patch16_224", "model.pretrained=true", "model.drop_path=0.1",
        "model.layer_decay=0.65", "model.freeze=last_k"]).model, 224)
    # a local checkpoint stands in for published weights the model does not have
    check_model_config(config_mod.build(overrides=["model.name=test_vit", "model.pretrained=true",
                                                   "model.pretrained_path=/some/run"]).model, 64)
    create_model("test_resnet_cifar", 10, drop_path=0.0, pretrained=False)
    with pytest.raises(ModelError, match="unknown option"):
        create_model("test_resnet_cifar", 10, dropout=0.1)


def test_check_model_config_names_unknown_models_and_wrong_sizes():
    with pytest.raises(ModelError) as exc:
        check_model_config(config_mod.build(overrides=["model.name=resnet19"]).model)
    assert "model.name" in str(exc.value) and "'resnet19'" in str(exc.value)
    assert "did you mean 'resnet18'?" in str(exc.value)
    with pytest.raises(ModelError, match="data.image_size=64"):
        check_model_config(config_mod.build(overrides=["model.name=test_vit"]).model, 32)


def test_checking_a_model_config_builds_nothing():
    """The check reads metadata only: a timm model with every option is checked without timm."""
    code = ("import sys; from cnnvit import config; from cnnvit.models import check_model_config; "
            "cfg = config.build(overrides=['model.name=vit_large_patch16_384', 'model.pretrained=true', "
            "'model.drop_path=0.1', 'model.layer_decay=0.7', 'model.freeze=last_k']); "
            "check_model_config(cfg.model, 384); "
            "assert not {'timm', 'torchvision'} & set(sys.modules), 'a model library was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("path", sorted((REPO / "params").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_study_uses_options_its_models_take(path, tmp_path):
    from cnnvit.studies import load_study

    load_study(path, out_dir=tmp_path)  # checks each run's model section
