"""How a model is built, as the freeze policies see it: its stem and blocks in order (what
``model.freeze=last_k`` counts) and its classifier (what ``model.freeze=head`` trains). Pure
inspection of a built model (on any device, the meta device included)."""
from __future__ import annotations

from typing import Optional

from torch import nn

from ..errors import WeightsError

# where models keep their sequence of blocks, besides ``blocks`` and a ResNet's layer1-4: timm's
# staged CNNs and hybrids (ConvNeXt, MaxViT, ...) and torchvision's ViTs
BLOCK_CONTAINERS = ("stages", "encoder.layers")


def _preceding(model: nn.Module, path: str) -> list[str]:
    """Names of the parameters and modules registered before the module at ``path`` (at each level
    of the path: the module's own parameters, then its children before the next part): what
    comes ahead of a model's blocks, its stem."""
    names: list[str] = []
    module, prefix = model, ""
    for part in path.split("."):
        names += [prefix + n for n, p in module.named_parameters(recurse=False)]
        for n, _ in module.named_children():
            if n == part:
                break
            names.append(prefix + n)
        module, prefix = getattr(module, part), f"{prefix}{part}."
    return names


def blocks_of(model: nn.Module) -> tuple[list[str], list[str]]:
    """(stem prefixes, block prefixes in order) of a transformer (``blocks``; timm's EfficientNets
    keep their stages there too), a ResNet, or a model with blocks in one of
    :data:`BLOCK_CONTAINERS` (each of its entries counts as one block)."""
    if isinstance(getattr(model, "blocks", None), nn.Sequential | nn.ModuleList):
        stem = [n for n in ("patch_embed", "tokens_to_token", "cls_token", "pos_embed", "dist_token",
                            "reg_token", "norm_pre") if hasattr(model, n)]
        stem += [n for n in _preceding(model, "blocks") if n not in stem]  # a CNN's conv_stem, ...
        return stem, [f"blocks.{i}" for i in range(len(model.blocks))]
    if all(hasattr(model, f"layer{i}") for i in range(1, 5)):
        stages = [f"layer{i}.{j}" for i in range(1, 5) for j in range(len(getattr(model, f"layer{i}")))]
        return ["conv1", "bn1"], stages
    for path in BLOCK_CONTAINERS:
        container = submodule(model, path)
        if isinstance(container, nn.Sequential | nn.ModuleList) and len(container):
            return _preceding(model, path), [f"{path}.{i}" for i in range(len(container))]
    raise WeightsError(f"model.freeze: {type(model).__name__} has neither transformer blocks nor "
                       f"ResNet stages; use model.freeze=none or head")


def count_blocks(model: nn.Module) -> int:
    """How many blocks ``model.freeze=last_k`` counts in ``model``; :class:`WeightsError` where it
    finds none."""
    return len(blocks_of(model)[1])


def classifier_prefixes(model: nn.Module) -> list[str]:
    """Names of the modules that map features to classes (what a linear probe trains): timm's
    ``get_classifier()`` (both heads of a distilled DeiT), else ``fc``/``head``/``classifier``,
    else the last linear layer (``classifier.6`` of torchvision's AlexNet and VGG)."""
    if hasattr(model, "get_classifier"):
        heads = model.get_classifier()
        heads = heads if isinstance(heads, tuple) else (heads,)
        names = [n for n, module in model.named_modules() if any(module is h for h in heads)]
        if names:
            return names
    for name in ("fc", "head", "classifier"):
        if isinstance(getattr(model, name, None), nn.Linear):
            return [name]
    linears = [n for n, mod in model.named_modules() if isinstance(mod, nn.Linear)]
    if not linears:
        raise WeightsError(f"{type(model).__name__} has no linear classifier to train")
    return linears[-1:]


def submodule(model: nn.Module, name: str) -> Optional[nn.Module]:
    """The module of ``model`` named ``name``, or None."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None
