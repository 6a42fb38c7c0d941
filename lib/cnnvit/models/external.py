"""Every model of timm and torchvision by name, beside the curated registry.

Names: a timm model by its timm name (``vit_tiny_patch16_224``), with a weights tag where timm
publishes several (``vit_tiny_patch16_224.augreg_in21k``), or as ``timm:NAME``, which always
means timm's model even where a curated model has the same name (``test_vit``, ``resnet18``);
torchvision's classification models as ``torchvision:NAME`` (``torchvision:mobilenet_v3_small``).

A library model's :class:`ModelInfo` is built on first use and cached: its input size and
whether it is fixed come from its published configuration (timm's ``pretrained_cfg``;
torchvision's default weights), and what options it takes (stochastic depth, timm's
``group_matcher``, blocks to count for ``freeze=last_k``, a linear classifier for
``freeze=head``) from the model itself, built on the meta device: no memory is allocated and no
weights are fetched. :func:`search_models` lists the models matching a pattern without building
any.
"""
from __future__ import annotations

import fnmatch
import functools
import logging
import warnings
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ModelError
from .info import Hub, ModelInfo

log = logging.getLogger(__name__)

TIMM = "timm:"
TORCHVISION = "torchvision:"
DEFAULT_SIZE = 224  # torchvision's input size where its weights say none
# torchvision's classification models that take one input size only (a position embedding, or
# MaxViT's fixed windows): its ViTs and MaxViT
TORCHVISION_FIXED = ("vit_", "maxvit_")


def split_library(name: str) -> tuple[Optional[str], str]:
    """(``"timm"``, ``"torchvision"`` or None, the name without its prefix)."""
    for prefix in (TIMM, TORCHVISION):
        if name.startswith(prefix):
            return prefix[:-1], name[len(prefix):]
    return None, name


def _torchvision_names() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)  # classification only


def _timm_lookup(timm_name: str) -> tuple[bool, Optional[Any]]:
    """(whether timm has the model ``timm_name``, its pretrained config: a tag picks one of its
    weights); a tag timm does not know raises :class:`ModelError` listing the model's tags."""
    import timm
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg, split_model_name_tag

    arch, tag = split_model_name_tag(timm_name)
    if not timm.is_model(arch):
        return False, None
    try:
        return True, get_pretrained_cfg(timm_name)
    except RuntimeError:  # timm: "Invalid pretrained tag"
        tags = [k.split(".", 1)[1] for k in get_arch_pretrained_cfgs(arch) if "." in k]
        raise ModelError(f"model.name: timm has no weights tagged {tag!r} for {arch}; its tags: "
                         f"{', '.join(tags) or 'none'}") from None


def _torchvision_default_weights(tv_name: str) -> Optional[Any]:
    import torchvision

    try:
        return torchvision.models.get_model_weights(tv_name).DEFAULT
    except (ValueError, AttributeError):  # a builder without published weights
        return None


def _torchvision_size(weights: Optional[Any]) -> int:
    """The crop size of the default weights' transforms (what they were trained at), else 224."""
    crop = getattr(weights.transforms(), "crop_size", None) if weights is not None else None
    return int(crop[0]) if crop else DEFAULT_SIZE


@functools.lru_cache(maxsize=None)
def library_model_info(name: str) -> Optional[ModelInfo]:
    """The :class:`ModelInfo` of timm's or torchvision's model ``name`` (see the module's
    docstring for names); None where no library has such a model."""
    library, bare = split_library(name)
    if library == "torchvision":
        return _torchvision_info(name, bare) if bare in _torchvision_names() else None
    known, cfg = _timm_lookup(bare)
    return _timm_info(name, bare, cfg) if known else None


def _probe(build: Any) -> tuple[Any, bool]:
    """Build a model on the meta device (no memory, no weights): ``(model, took_drop_path)``,
    where ``build(drop_path)`` builds it; a model whose class takes no ``drop_path_rate`` is built
    again without it."""
    import torch

    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libraries' deprecation notes, not the user's business here
        try:
            return build(0.1), True
        except TypeError as exc:
            if "drop_path_rate" not in str(exc):
                raise
            return build(0.0), False


def _structure(model: Any) -> dict[str, bool]:
    """What the options need of a built model: timm's ``group_matcher`` (layer decay), blocks that
    the freeze code can count (last_k), a linear classifier (head)."""
    from . import structure

    def works(fn: Any) -> bool:
        try:
            fn(model)
            return True
        except structure.WeightsError:
            return False

    return {"layer_decay": hasattr(model, "group_matcher"),
            "freeze_last_k": works(structure.count_blocks),
            "freeze_head": works(structure.classifier_prefixes)}


def _timm_info(name: str, timm_name: str, cfg: Optional[Any]) -> ModelInfo:
    from .libraries import build_timm

    has_weights = cfg is not None and bool(cfg.has_weights)
    size = int(cfg.input_size[-1]) if cfg is not None else DEFAULT_SIZE
    fixed = bool(cfg is not None and cfg.fixed_input_size)
    try:
        model, drop_path = _probe(lambda rate: build_timm(timm_name, 1000, drop_path=rate))
        structure = _structure(model)
        # a ViT built to resample its position embedding takes any size whatever its config says
        fixed = fixed and not getattr(model, "dynamic_img_size", False)
    except Exception as exc:  # a model that cannot be built on the meta device: allow no option
        log.warning("could not inspect timm's %s on the meta device (%s); its options "
                    "drop_path, layer_decay and freeze are refused", timm_name, exc)
        drop_path, structure = False, {"layer_decay": False, "freeze_last_k": False, "freeze_head": False}
    tag = f", weights {cfg.tag}" if has_weights and cfg.tag else ""
    return ModelInfo(
        name=name, builder=functools.partial(build_timm, timm_name), family="timm", native_size=size,
        fixed_size=fixed, hub=Hub("timm", timm_name) if has_weights else None, drop_path=drop_path,
        description=f"timm's {timm_name} ({size} px{tag})", **structure)


def _torchvision_info(name: str, tv_name: str) -> ModelInfo:
    from .libraries import build_torchvision

    default = _torchvision_default_weights(tv_name)
    size = _torchvision_size(default)
    builder = functools.partial(build_torchvision, tv_name, size)
    model, _ = _probe(lambda rate: builder(1000))  # torchvision's models take no drop_path_rate
    ident = f"{type(default).__name__}.{default.name}" if default is not None else None
    return ModelInfo(
        name=name, builder=builder, family="torchvision", native_size=size,
        fixed_size=tv_name.startswith(TORCHVISION_FIXED), hub=Hub("torchvision", ident) if ident else None,
        drop_path=False, description=f"torchvision's {tv_name} ({size} px"
        + (f", weights {ident})" if ident else ")"), **_structure(model))


def close_matches(name: str, curated: list[str], n: int = 4) -> list[str]:
    """Up to ``n`` known names closest to ``name``, each written as it is to be used: a curated
    name, else timm's, else ``torchvision:NAME`` (``timm:``/``torchvision:`` in ``name`` keeps to
    that library)."""
    import difflib

    import timm

    library, bare = split_library(name)
    spelled: dict[str, str] = {}  # a bare name -> how to write the model it means
    if library is None:
        spelled.update((c, c) for c in curated)
    if library in (None, "timm"):
        for t in timm.list_models():
            spelled.setdefault(t, TIMM + t if library else t)
    if library in (None, "torchvision"):
        for v in _torchvision_names():
            spelled.setdefault(v, TORCHVISION + v)
    return [spelled[m] for m in difflib.get_close_matches(bare.split(".")[0], list(spelled), n=n)]


@dataclass(frozen=True)
class LibraryModel:
    """One line of :func:`search_models`: the name to use, its library, input size, whether it
    takes that size only (as timm's config says: the few of its ViTs built with a resampled
    position embedding take any size, which :func:`library_model_info` finds), and its published
    weights (timm's tags, torchvision's identifier)."""

    name: str
    library: str
    size: int
    fixed_size: bool
    weights: tuple[str, ...]


def search_models(pattern: str, curated: list[str]) -> list[LibraryModel]:
    """timm's and torchvision's models whose name matches ``pattern`` (fnmatch style, e.g.
    ``*vit_tiny*``; one without wildcards matches anywhere in a name; a ``timm:`` or
    ``torchvision:`` prefix searches that library only). Builds nothing."""
    import timm
    from timm.models import get_arch_pretrained_cfgs, get_pretrained_cfg

    library, bare = split_library(pattern)
    if not any(ch in bare for ch in "*?["):
        bare = f"*{bare}*"
    found = []
    if library in (None, "timm"):
        for arch in timm.list_models(bare):
            cfg = get_pretrained_cfg(arch)
            tags = tuple(k.split(".", 1)[1] for k, c in get_arch_pretrained_cfgs(arch).items()
                         if "." in k and c.has_weights)
            found.append(LibraryModel(TIMM + arch if arch in curated else arch, "timm",
                                      int(cfg.input_size[-1]) if cfg else DEFAULT_SIZE,
                                      bool(cfg and cfg.fixed_input_size), tags))
    if library in (None, "torchvision"):
        for tv_name in fnmatch.filter(_torchvision_names(), bare):
            default = _torchvision_default_weights(tv_name)
            found.append(LibraryModel(TORCHVISION + tv_name, "torchvision", _torchvision_size(default),
                                      tv_name.startswith(TORCHVISION_FIXED),
                                      (f"{type(default).__name__}.{default.name}",) if default else ()))
    return found
