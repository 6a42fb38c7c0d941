"""The optimizer's parameter groups, parameter by parameter: layer-wise learning-rate decay
(``model.layer_decay``) together with weight decay spared on a model's ``no_weight_decay()``
names and on 1-d parameters, and frozen parameters left out.

The expected values are derived here from the parameter names and the number of blocks, not
read back from timm's grouping: the convention (BEiT's, as timm implements it for ViTs) is
embeddings (class/distillation token, position table, patch embedding) layer 0, block ``i``
layer ``i + 1``, the final norm in the last block's layer ``depth`` (timm's ViT group_matcher
gives ``^norm`` the ordinal MATCH_PREV_GROUP: "with the group before"), what no pattern matches
(the head, DeiT's distillation head) the top layer ``depth + 1``; a parameter of layer ``l``
has ``lr_scale = layer_decay ** (depth + 1 - l)``.
Small ViTs, no training: the file runs in seconds.
"""
from __future__ import annotations

import re
from collections import Counter

import pytest

from cnnvit.models import create_model
from cnnvit.models.weights import apply_freeze
from cnnvit.training.setup import make_optimizer

WEIGHT_DECAY = 0.05
LAYER_DECAY = 0.75
# two timm transformers of the registry: a plain ViT, and a DeiT with a second token and head
VITS = ["test_vit_cifar", "test_deit_distilled"]
EMBEDDINGS = ("cls_token", "dist_token", "reg_token", "pos_embed", "patch_embed.")


def _optimizer(make_cfg, name, model, layer_decay):
    return make_optimizer(make_cfg({"model": {"name": name, "layer_decay": layer_decay},
                                    "optim": {"name": "adamw", "weight_decay": WEIGHT_DECAY}}), model)


def _group_of(opt, model):
    """Each trainable parameter's name -> its group, after checking that it is in exactly one
    group once and that the groups hold nothing else (no frozen or foreign tensor)."""
    names = {id(p): n for n, p in model.named_parameters()}
    seen = Counter(id(p) for g in opt.param_groups for p in g["params"])
    assert all(c == 1 for c in seen.values()), [names.get(i) for i, c in seen.items() if c > 1]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert set(seen) == trainable, ({names.get(i) for i in set(seen) - trainable},
                                    {names[i] for i in trainable - set(seen)})
    return {names[id(p)]: g for g in opt.param_groups for p in g["params"]}


def _expected_layer(name: str, depth: int) -> int:
    """The layer a parameter belongs to, from its name alone (see the module docstring)."""
    if name.startswith(EMBEDDINGS):
        return 0
    block = re.match(r"blocks\.(\d+)\.", name)
    if block:
        return int(block.group(1)) + 1
    if name.startswith("norm."):
        return depth  # with the last block
    return depth + 1  # the head(s)


def _expected_decay(model, name: str) -> float:
    param = dict(model.named_parameters())[name]
    spared = name in model.no_weight_decay() or param.ndim <= 1  # norms, biases, tokens, positions
    return 0.0 if spared else WEIGHT_DECAY


@pytest.mark.parametrize("layer_decay", [LAYER_DECAY, None], ids=["layer_decay", "no_layer_decay"])
@pytest.mark.parametrize("name", VITS)
def test_weight_decay_spares_no_weight_decay_names_and_1d_params_in_every_group(make_cfg, name, layer_decay):
    """The tokens and position table (3-d tensors, spared only because no_weight_decay() names
    them), every norm and bias get no decay, every other weight the configured decay, whether
    or not the groups are split by layer (the two code paths of make_optimizer)."""
    model = create_model(name, 10)
    group = _group_of(_optimizer(make_cfg, name, model, layer_decay), model)
    # the cases that make this test mean something are there
    params = dict(model.named_parameters())
    assert {"cls_token", "pos_embed"} <= model.no_weight_decay() and params["pos_embed"].ndim == 3
    assert any(p.ndim == 1 for p in params.values()) and any(p.ndim > 1 for p in params.values())
    wrong = {n: g["weight_decay"] for n, g in group.items() if g["weight_decay"] != _expected_decay(model, n)}
    assert not wrong, wrong
    assert group["blocks.0.attn.qkv.weight"]["weight_decay"] == WEIGHT_DECAY  # (not all spared)


@pytest.mark.parametrize("name", VITS)
def test_lr_scale_is_layer_decay_to_the_layers_below_the_top(make_cfg, name):
    """lr_scale = layer_decay ** (depth + 1 - layer), the layer from the parameter's name: the
    head trains at the full rate, the last block (and the final norm) at layer_decay times
    that, each block below at layer_decay times the one above, the embeddings at the lowest."""
    model = create_model(name, 10)
    depth = len(model.blocks)
    assert depth >= 2  # at least two block layers between the embeddings and the top
    group = _group_of(_optimizer(make_cfg, name, model, LAYER_DECAY), model)
    expected = {n: LAYER_DECAY ** (depth + 1 - _expected_layer(n, depth)) for n in group}
    got = {n: g["lr_scale"] for n, g in group.items()}
    assert got == pytest.approx(expected)
    # spot checks, written out: the extremes and one block
    assert got["head.weight"] == pytest.approx(1.0) and got["head.bias"] == pytest.approx(1.0)
    assert got["norm.weight"] == pytest.approx(LAYER_DECAY)
    assert got["cls_token"] == pytest.approx(LAYER_DECAY ** (depth + 1))
    assert got["patch_embed.proj.weight"] == pytest.approx(LAYER_DECAY ** (depth + 1))
    assert got[f"blocks.{depth - 1}.mlp.fc2.weight"] == pytest.approx(LAYER_DECAY)
    # a group mixes neither layers nor decay settings: one (lr_scale, weight_decay) per group
    assert len({(g["lr_scale"], g["weight_decay"]) for g in group.values()}) == len(
        {id(g) for g in group.values()})


def test_frozen_parameters_are_left_out_and_the_rest_keep_their_layers(make_cfg):
    """model.freeze=last_k with one trainable block: only that block, the final norm and the
    head are in the optimizer, at the lr_scale of their layer in the whole model (freezing the
    lower layers does not renumber the upper ones), with the same weight-decay exemptions."""
    name = "test_vit_cifar"
    model = create_model(name, 10)
    apply_freeze(model, "last_k", trainable_blocks=1)
    depth = len(model.blocks)
    group = _group_of(_optimizer(make_cfg, name, model, LAYER_DECAY), model)  # (frozen: absent)
    assert {n.split(".")[0] for n in group} == {"blocks", "norm", "head"}
    assert not any(n.startswith(f"blocks.{i}.") for n in group for i in range(depth - 1))
    assert "cls_token" not in group and "pos_embed" not in group
    for n, g in group.items():
        assert g["lr_scale"] == pytest.approx(LAYER_DECAY ** (depth + 1 - _expected_layer(n, depth))), n
        assert g["weight_decay"] == _expected_decay(model, n), n


def test_without_layer_decay_every_group_trains_at_the_scheduled_rate(make_cfg):
    """For contrast: without model.layer_decay nothing is scaled (the step applies lr_scale,
    default 1), and model.layer_decay=1 gives every layer the full rate too."""
    name = "test_vit_cifar"
    model = create_model(name, 10)
    plain = _optimizer(make_cfg, name, model, None)
    assert all(g.get("lr_scale", 1.0) == 1.0 for g in plain.param_groups)
    flat = _group_of(_optimizer(make_cfg, name, model, 1.0), model)
    assert {g["lr_scale"] for g in flat.values()} == {1.0}
