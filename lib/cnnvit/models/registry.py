"""The model registry: every model is described once, beside its builder, as in timm.

A builder is a function ``fn(num_classes, ...)`` decorated with :func:`register_model`; its
function name is the model's name, and the decorator's keywords say what the model is (its
native input size, whether that size is fixed, its published weights) and which options apply
to it. A builder declares exactly the options it uses: ``pretrained`` where it has published
weights (``hub=``; it then also receives its :class:`Hub` as ``hub``, so that the library's
identifier is written once), ``drop_path`` where it has stochastic depth. An option a model
cannot use is refused with a :class:`ModelError`, not ignored; :func:`check_model_config` checks
a run's model section that way without building anything.

Beside these curated models, every model of timm (by its timm name, optionally with a weights tag
such as ``vit_tiny_patch16_224.augreg_in21k``, or as ``timm:NAME``) and torchvision's
classification models (as ``torchvision:NAME``) are known by name: :mod:`.external` describes them
on first use. A curated name takes precedence over timm's model of the same name.

This module imports neither torch nor the model libraries at import time: it holds metadata only
(a library model's metadata is looked up, lazily, in :mod:`.external`).
"""
from __future__ import annotations

import inspect
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import ModelError
from .info import Hub, ModelInfo  # noqa: F401 (re-exported: what the registry holds)

if TYPE_CHECKING:
    from torch import nn

    from ..config import ModelConfig

OPTIONS = ("pretrained", "drop_path")  # what create_model passes on to a builder that takes it


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(*, native_size: int, fixed_size: bool = False, hub: Optional[Hub] = None,
                   drop_path: bool = False, layer_decay: bool = False,
                   freeze_last_k: bool = False, cpu_bf16: bool = True) -> Callable:
    """Decorator: register a builder under its function name, with the model's metadata.
    The builder's arguments must match the metadata (``hub`` and ``pretrained`` exactly when
    ``hub`` is given, ``drop_path`` exactly when ``drop_path``), so that neither can drift."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__
        if name in _REGISTRY:
            raise TypeError(f"register_model: {name} is registered twice")
        expected = {"num_classes"} | ({"hub", "pretrained"} if hub else set()) | (
            {"drop_path"} if drop_path else set())
        arguments = set(inspect.signature(fn).parameters)
        if arguments != expected:
            raise TypeError(f"register_model: {name} takes {sorted(arguments)} but its metadata "
                            f"asks for {sorted(expected)}")
        doc = inspect.getdoc(fn) or ""
        _REGISTRY[name] = ModelInfo(
            name=name, builder=fn, family=fn.__module__.rsplit(".", 1)[-1], native_size=native_size,
            fixed_size=fixed_size, hub=hub if hub is None or hub.ident else replace(hub, ident=name),
            drop_path=drop_path, layer_decay=layer_decay,
            freeze_last_k=freeze_last_k, cpu_bf16=cpu_bf16,
            description=" ".join(doc.split("\n\n")[0].split()))
        return fn
    return wrap


def unregister_model(name: str) -> None:
    """Forget a registered model (tests register their own for a while)."""
    _REGISTRY.pop(name, None)


def list_models() -> list[str]:
    """Names of the registered (curated) models, sorted; timm's and torchvision's models are
    searched with :func:`cnnvit.models.external.search_models`."""
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """The registry's entry for ``name``, else timm's or torchvision's model of that name
    (described on first use, then cached); an unknown name raises :class:`ModelError` with the
    closest known names."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    from .external import close_matches, library_model_info  # imports timm and torchvision

    info = library_model_info(name)
    if info is not None:
        return info
    hints = close_matches(name, list_models())
    raise ModelError(f"model.name: unknown model {name!r}"
                     + (f"; did you mean {hints[0]!r}?" if hints else "")
                     + (f" (also close: {', '.join(map(repr, hints[1:]))})" if hints[1:] else "")
                     + f". Curated models: {', '.join(list_models())}; besides them any timm model "
                     f"by its name (timm:NAME for timm's own where a curated model has that name) and "
                     f"torchvision's as torchvision:NAME; search with `python -m cnnvit models --all PATTERN`")


def native_size(name: str) -> int:
    """Input resolution a model is built for (a ViT's position embedding fixes it)."""
    return model_info(name).native_size


def is_fixed_size(name: str) -> bool:
    """Whether the model accepts only its native input size."""
    return model_info(name).fixed_size


def hub_weights(name: str) -> Optional[tuple[str, str]]:
    """("timm", Hugging Face repo) or ("torchvision", URL) of a model's published weights."""
    hub = model_info(name).hub
    return (hub.library, hub.location()) if hub else None


def check_input_size(name: str, image_size: int) -> None:
    """ViTs fix their input size through the position embedding: fail before training starts."""
    info = model_info(name)
    if info.fixed_size and image_size != info.native_size:
        raise ModelError(f"model {name} takes {info.native_size} px inputs but the data arrive at "
                         f"{image_size} px; set data.image_size={info.native_size}")


def _check_options(info: ModelInfo, *, pretrained: bool = False, drop_path: float = 0.0,
                   layer_decay: Optional[float] = None, freeze: str = "none") -> None:
    """Refuse each option set to a value that ``info``'s model cannot use."""
    name = info.name
    if drop_path and not info.drop_path:
        raise ModelError(f"model.drop_path: {name} has no stochastic depth (timm's drop_path_rate); "
                         f"leave model.drop_path at 0")
    if layer_decay is not None and not info.layer_decay:
        raise ModelError(f"model.layer_decay: {name} does not say how its layers group (timm's "
                         f"group_matcher); leave model.layer_decay unset")
    if freeze == "last_k" and not info.freeze_last_k:
        raise ModelError(f"model.freeze: {name} has neither transformer blocks nor ResNet stages "
                         f"to count for last_k; use model.freeze=none"
                         + (" or head" if info.freeze_head else ""))
    if freeze == "head" and not info.freeze_head:
        raise ModelError(f"model.freeze: {name} has no linear classifier to train alone for head; "
                         f"use model.freeze=none")
    if pretrained and not info.pretrained:
        raise ModelError(f"model.pretrained: {name} has no published weights; train it from scratch "
                         f"(model.pretrained=false), or give a checkpoint with model.pretrained_path=FILE")


def check_model_config(model_cfg: ModelConfig, image_size: Optional[int] = None) -> None:
    """Check a run's model section before any work, without data and without building the model:
    the name is known (else the closest names), every option set applies to the model, the input
    size ``image_size`` (None: not known yet) is one it takes, and hub weights exist where
    ``model.pretrained`` asks for them. Raises :class:`ModelError` naming the problem."""
    info = model_info(model_cfg.name)
    _check_options(info, drop_path=model_cfg.drop_path, layer_decay=model_cfg.layer_decay,
                   freeze=model_cfg.freeze)
    if image_size is not None:
        check_input_size(info.name, image_size)
    # a local checkpoint replaces the hub weights (the model is then built without them)
    _check_options(info, pretrained=model_cfg.pretrained and not model_cfg.pretrained_path)


def create_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build a registered model with a ``num_classes``-way head. ``options``: ``pretrained``
    (the published weights) and ``drop_path`` (stochastic depth rate); one the model cannot use
    raises :class:`ModelError`, unless it is left at its "off" value."""
    info = model_info(name)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ModelError(f"create_model: unknown option(s) {', '.join(unknown)}; options: "
                         f"{', '.join(OPTIONS)}")
    _check_options(info, **options)
    # register_model checked that a builder takes exactly what its metadata says
    kwargs: dict[str, Any] = {}
    if info.drop_path:
        kwargs["drop_path"] = options.get("drop_path", 0.0)
    if info.hub:
        kwargs.update(hub=info.hub, pretrained=options.get("pretrained", False))
    return info.builder(num_classes=num_classes, **kwargs)
