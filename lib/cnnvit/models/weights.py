"""Pretrained weights and what to train of them: hub weights (timm, torchvision) or a local
checkpoint, a report of what loaded, freeze policies and layer-wise learning-rate decay.

A local checkpoint may be a timm/torchvision state dict (``.pth``, ``.pt``, ``.bin``,
``.safetensors``), a dict holding one under ``model``/``state_dict``, or a run folder of this
project (its ``model.pt``; the run's ``config.yaml`` then says what it was trained on). Tensors
whose shapes do not fit (the old classifier) are left out and reported; the model keeps its new
head for the task's classes.

Where a run's starting weights came from is data, not a sentence: :func:`prepare_model` returns
a :class:`~cnnvit.records.WeightsOrigin` (``{kind, source, data, model, run, label}`` in
metrics.json; see :func:`weights_origin`).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..config import Config, ModelConfig
from ..errors import WeightsError
from ..records import WeightsKind, WeightsOrigin
from .registry import hub_weights
from .structure import blocks_of, classifier_prefixes, count_blocks, submodule  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

FREEZE_POLICIES = ("none", "head", "last_k")  # full fine-tuning, linear probe, last k blocks
HUB_HOSTS = {"timm": ("huggingface.co", 443), "torchvision": ("download.pytorch.org", 443)}


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did: tensors loaded, and those left at their initial values."""

    source: str
    loaded: int
    missing: list[str] = field(default_factory=list)  # in the model, not in the file
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    mismatched: list[str] = field(default_factory=list)  # in both, other shapes (e.g. the head)

    def summary(self) -> str:
        parts = [f"{self.loaded} tensors loaded from {self.source}"]
        for label, names in (("left out, other shape", self.mismatched),
                             ("missing from the file", self.missing),
                             ("unused from the file", self.unexpected)):
            if names:
                parts.append(f"{len(names)} {label} ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
        return "; ".join(parts)


def checkpoint_file(path: str | Path) -> Path:
    """The weights file behind ``path`` (a file, or a run folder holding ``model.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "model.pt"
    if not p.is_file():
        raise WeightsError(f"model.pretrained_path: no weights file at {p}")
    return p


def weights_origin(kind: WeightsKind, source: Optional[str] = None, *, label: str, data: Optional[str] = None,
                   model: Optional[str] = None, run: Optional[str] = None) -> WeightsOrigin:
    """Where a run's starting weights came from, as data (what metrics.json stores as ``weights``):
    ``kind`` is scratch, hub, file or run; ``source`` the hub weights, file or run folder;
    ``data``, ``model`` and ``run`` what a run of this project was (None otherwise); ``label``
    says it in words, for display only."""
    return WeightsOrigin(kind=WeightsKind(kind), source=source, data=data, model=model, run=run, label=label)


def scratch_origin() -> WeightsOrigin:
    """The origin of a model trained from its random initialisation."""
    return WeightsOrigin.scratch()


def hub_origin(library: str, ident: str) -> WeightsOrigin:
    """The origin of published weights: ``ident`` is their Hugging Face repository or URL."""
    return weights_origin(WeightsKind.HUB, ident, label=f"pretrained: {library} weights {ident}")


def checkpoint_origin(path: str | Path) -> WeightsOrigin:
    """The origin of the weights at ``path``: a run of this project (its folder holds the run's
    config, naming its data set and model) or a file."""
    p = checkpoint_file(path)
    cfg_file = p.parent / "config.yaml"
    if cfg_file.exists():
        import yaml

        saved = yaml.safe_load(cfg_file.read_text()) or {}
        data = (saved.get("data") or {}).get("name")
        model = (saved.get("model") or {}).get("name")
        label = f"pretrained on {data or '?'} by this project ({model or '?'}, run {p.parent.name})"
        return weights_origin(WeightsKind.RUN, str(p.parent), label=label, data=data, model=model,
                              run=p.parent.name)
    return weights_origin(WeightsKind.FILE, str(p), label=f"pretrained weights from {p}")


def describe_source(path: str | Path) -> str:
    """Where weights come from, in words; a run of this project names its data set and model."""
    return checkpoint_origin(path).label


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file, unwrapped from ``model``/``state_dict`` and from
    DistributedDataParallel's ``module.`` prefix."""
    p = checkpoint_file(path)
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(p))
        else:
            state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign files fail in many ways
        raise WeightsError(f"model.pretrained_path: cannot read {p}: {exc}") from exc
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"model.pretrained_path: {p} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_checkpoint(model: nn.Module, path: str | Path) -> LoadReport:
    """Load what fits of a checkpoint into ``model``; raise if most of the model stays untouched
    (the file is for another architecture)."""
    state = read_state_dict(path)
    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    report = LoadReport(str(checkpoint_file(path)), len(fitting),
                        missing=[k for k in own if k not in state],
                        unexpected=[k for k in state if k not in own],
                        mismatched=[k for k in state if k in own and own[k].shape != state[k].shape])
    if len(fitting) < len(own) / 2:
        raise WeightsError(f"model.pretrained_path: {report.source} does not fit this model: only "
                           f"{len(fitting)} of its {len(own)} tensors match. {report.summary()}")
    model.load_state_dict(fitting, strict=False)
    log.info("weights: %s", report.summary())
    return report


def _hub_cached(library: str, ident: str) -> bool:
    if library == "timm" and not ident.startswith(("https://", "http://")):  # (else: timm by URL)
        from huggingface_hub import try_to_load_from_cache

        return any(isinstance(try_to_load_from_cache(ident, f), str)
                   for f in ("model.safetensors", "pytorch_model.bin"))
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(ident)
    return cached.exists()


def _online(library: str, timeout: float = 3.0) -> bool:
    if library == "timm" and os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        with socket.create_connection(HUB_HOSTS[library], timeout=timeout):
            return True
    except OSError:
        return False


def check_pretrained(cfg: Config) -> WeightsOrigin:
    """Before any work: the weights a run starts from can be had. Returns their origin (see
    :func:`weights_origin`); raises :class:`WeightsError` saying which weights are needed and how
    to provide them."""
    m = cfg.model
    if m.pretrained_path:
        return checkpoint_origin(m.pretrained_path)
    if not m.pretrained:
        return scratch_origin()
    source = hub_weights(m.name)
    if source is None:
        raise WeightsError(f"model.pretrained: {m.name} has no published weights; train it from "
                           f"scratch, or give a checkpoint with model.pretrained_path=FILE")
    library, ident = source
    if _hub_cached(library, ident) or _online(library):
        return hub_origin(library, ident)
    where = ("the Hugging Face hub (cache: $HF_HOME, default ~/.cache/huggingface)" if library == "timm"
             else f"download.pytorch.org (cache: {torch.hub.get_dir()}/checkpoints)")
    raise WeightsError(
        f"model.pretrained: {m.name} needs the {library} weights {ident} from {where}, which are not "
        f"in the local cache and cannot be downloaded (offline). Provide them as a file with "
        f"model.pretrained_path=FILE (a timm/torchvision checkpoint, or a run folder of this "
        f"project), or copy them into that cache on a machine that is online.")


# --------------------------------------------------------------------------- what trains

def apply_freeze(model: nn.Module, policy: str, trainable_blocks: int = 1) -> list[str]:
    """Freeze what ``policy`` keeps fixed: ``head`` trains the classifier only (a linear probe),
    ``last_k`` the last ``trainable_blocks`` blocks and everything after them, ``none`` all.
    Frozen BatchNorm layers also stop updating their statistics (timm's ``freeze``).
    Returns the frozen parts' names (prefixes of parameter names)."""
    if policy == "none":
        return []
    from timm.utils.model import freeze

    if policy == "head":
        heads = classifier_prefixes(model)
        frozen = [n for n, _ in model.named_parameters() if not any(n.startswith(h + ".") for h in heads)]
    elif policy == "last_k":
        stem, blocks = blocks_of(model)
        if not 1 <= trainable_blocks <= len(blocks):
            raise WeightsError(f"model.trainable_blocks: {trainable_blocks} is not between 1 and the "
                               f"model's {len(blocks)} blocks")
        frozen = stem + blocks[:-trainable_blocks]
    else:
        raise WeightsError(f"model.freeze: {policy!r} is not one of {', '.join(FREEZE_POLICIES)}")
    for name, p in model.named_parameters():
        if any(name == f or name.startswith(f + ".") for f in frozen):
            p.requires_grad_(False)
    # BatchNorm inside frozen modules: fixed statistics too (a parameter name is not a module)
    modules = {n.rsplit(".", 1)[0] if policy == "head" else n for n in frozen}
    modules = [n for n in modules if n and isinstance(submodule(model, n), nn.Module)]
    with_bn = [n for n in modules if any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                         for m in model.get_submodule(n).modules())]
    if with_bn:  # (timm's freeze treats an empty list as "the whole model")
        freeze(model, with_bn)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("freeze=%s: %d of %d parameters train", policy, n_train,
             sum(p.numel() for p in model.parameters()))
    return frozen


def prepare_model(model: nn.Module, model_cfg: ModelConfig,
                  load_weights: bool = True) -> tuple[nn.Module, WeightsOrigin]:
    """Load ``model.pretrained_path`` into a freshly built model (when ``load_weights``) and apply
    the freeze policy; returns the model and the origin of its starting weights (see
    :func:`weights_origin`; a checkpoint's label also says what loaded)."""
    origin = scratch_origin()
    if model_cfg.pretrained_path and load_weights:
        report = load_checkpoint(model, model_cfg.pretrained_path)
        origin = checkpoint_origin(model_cfg.pretrained_path)
        origin = dataclasses.replace(origin, label=f"{origin.label}: {report.summary()}")
    elif model_cfg.pretrained:
        origin = hub_origin(*(hub_weights(model_cfg.name) or ("hub", "weights")))
    apply_freeze(model, model_cfg.freeze, model_cfg.trainable_blocks)
    return model, origin


def layer_decay_groups(model: nn.Module, weight_decay: float, layer_decay: float) -> list[dict[str, Any]]:
    """Parameter groups with layer-wise learning-rate decay (timm's; each group's ``lr_scale``
    multiplies the scheduled learning rate). Needs a timm model with ``group_matcher``."""
    from timm.optim import param_groups_layer_decay

    if not hasattr(model, "group_matcher"):
        raise WeightsError(f"model.layer_decay: {type(model).__name__} does not say how its layers "
                           f"group (timm's group_matcher); leave model.layer_decay unset")
    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    return param_groups_layer_decay(model, weight_decay=weight_decay, no_weight_decay_list=skip,
                                    layer_decay=layer_decay)
