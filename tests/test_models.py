"""Model registry: forward and backward of every small model at its native size."""
from __future__ import annotations

import pytest
import torch

from cnnvit.models import (check_input_size, count_parameters, create_model, hub_weights,
                           is_fixed_size, list_models, native_size)

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
