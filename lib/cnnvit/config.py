"""Typed run configuration: the one place where defaults live.

A config is built from defaults, then a YAML file, then ``key=value`` overrides, and validated
at every step: an unknown key or a value of the wrong type raises :class:`ConfigError` naming
the key (and the file it came from) before any data is loaded or any model is built.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from . import datasets
from .errors import CnnvitError, ConfigError  # noqa: F401 (re-exported)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of a parameter file gives one key twice."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 and people do, and
    refuses a key given twice in one mapping (PyYAML keeps the last one silently: a second
    ``train:`` would drop the first one's settings back to their defaults)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # '<<:' merges, it is no key
                continue
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise DuplicateKeyError(f"line {key_node.start_mark.line + 1}: {key!r} is given twice in "
                                        f"one mapping (first on line {seen[key].start_mark.line + 1}); "
                                        "keep one (PyYAML would silently keep the last)")
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


@dataclass
class DataConfig:
    name: str = "synthetic"  # a registered data set: synthetic | cifar10 | cifar100 | tiny-imagenet |
    # celeba | imagefolder (a train/<class>/* tree of one's own)
    root: Optional[str] = None  # folder holding the data set; None: ~/.cache/cnnvit-data/<name>
    download: bool = False  # fetch from the official source when missing (needs internet)
    train_subset: Optional[int] = None  # stratified subset of the training split
    test_subset: Optional[int] = None  # stratified subset of the test split
    classes: Optional[int] = None  # keep only the first N classes (data set's order), both splits
    coarse_labels: bool = False  # cifar100: its 20 superclasses instead of the 100 fine classes
    decode_size: Optional[int] = None  # resize every image to N x N once, when decoding (imagefolder,
    # celeba); None: keep the files' size (an image folder's images must then share one size)
    test_fraction: float = 0.2  # imagefolder without a test/ tree: stratified share held out as test
    on_device: Union[bool, str] = "auto"  # the training split on the GPU (true), in host memory with
    # each batch copied ahead of compute (false), or chosen from its size and the free GPU memory
    class_ratio: Optional[list[float]] = None  # subsample every split to these class proportions
    # stratified share of the training split held out as validation; None: the data set's own
    # protocol (its DatasetSpec.val_fraction), resolved when the config is built
    val_fraction: Optional[float] = None
    synthetic_train: int = 2000  # size of the generated set (data.name=synthetic only)
    synthetic_test: int = 500
    synthetic_size: int = 32  # image side of the generated set, in pixels
    synthetic_classes: int = 10
    task: str = "binary"  # celeba: binary | hair5 (5 hair colours) | multilabel
    attribute: str = "Eyeglasses"  # celeba, task=binary: the attribute to predict
    attributes: str = "all"  # celeba, task=multilabel: comma-separated attributes, or all
    first_images: Optional[int] = None  # celeba: only the first N images the attribute file lists
    # (000001.jpg ...), before the 8:1:1 split; only those are decoded. None: all of them
    image_size: Optional[int] = None  # resize on the device to this size (None: native size)
    resize_mode: str = "bilinear"  # bilinear | bicubic (the resize on the device)
    normalize: bool = True  # subtract the data set's mean, divide by its std
    mean: Optional[list[float]] = None  # per-channel constants to normalise with; None: the training split's
    std: Optional[list[float]] = None  # (e.g. a seed's published constants, or ImageNet's for hub weights)
    crop_padding: int = 0  # random crop with this much zero padding (0: off)
    random_resized_crop: bool = False  # torchvision-style random resized crop, on the device
    rrc_min_scale: float = 0.08  # smallest crop area as a fraction of the image (ratio 3/4-4/3)
    flip: bool = False  # random horizontal flip
    policy: str = "none"  # none | autoaugment | randaugment, on the device
    policy_group: int = 16  # images sharing one sampled policy op or jitter (device batching)
    color_jitter: float = 0.0  # torchvision ColorJitter(s, s, s, s/2) strength (0: off)
    random_erasing: float = 0.0  # probability of timm's per-image random erasing


@dataclass
class ModelConfig:
    name: str = "resnet18_cifar"
    pretrained: bool = False  # start from the published (hub) weights; a new head for the classes
    pretrained_path: Optional[str] = None  # start from a local checkpoint or run folder instead
    freeze: str = "none"  # none (full fine-tuning) | head (linear probe) | last_k (last blocks)
    trainable_blocks: int = 1  # freeze=last_k: how many of the last blocks train
    layer_decay: Optional[float] = None  # layer-wise learning-rate decay factor (timm models)
    drop_path: float = 0.0  # stochastic depth (timm models)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    grad_accum: int = 1  # optimizer step every N batches (effective batch = N x batch_size)
    grad_clip: Optional[float] = None  # clip the global gradient norm to this value
    label_smoothing: float = 0.0
    mixup: float = 0.0  # Mixup alpha (timm), 0: off
    cutmix: float = 0.0  # CutMix alpha (timm), 0: off
    amp: Union[bool, str] = "auto"  # bf16 autocast of the training steps. auto: on CUDA, and on a CPU
    # with native bf16 (AVX-512 BF16, AMX) unless the model trains slower in it there (measured:
    # its registry entry's cpu_bf16); true: wherever the device has native bf16; false: fp32
    channels_last: bool = True  # channels-last memory format (faster convolutions, CUDA and CPU)
    compile: bool = False  # torch.compile the model (on a 2-core CPU: +10% for small CNNs after a
    # 20-40 s compile, too little for minutes-long runs; see README, "Speed on a CPU")
    eval_every: int = 1  # evaluate on the test split every N epochs (and after the last)
    eval_batch_size: int = 500
    eval_flip: bool = False  # evaluate (validation, test, predict) on each image and its mirror,
    # averaging the logits: flip test-time augmentation (Jordan 2024, airbench), twice the cost
    aug_seed: Optional[int] = None  # seed of the augmentation stream (None: derived from seed)
    class_weights: bool = False  # weight the loss by inverse class frequency (imbalanced labels);
    # multi-label: each label's positives weigh negatives/positives (BCE pos_weight)
    balanced_sampling: bool = False  # draw training batches with every class equally likely
    # (with replacement; single-label tasks)
    val_every_steps: Optional[int] = None  # also evaluate the validation split every N optimizer
    # steps (loss and accuracy, in val_steps.csv); None: once per evaluated epoch only
    keep_epoch_weights: bool = False  # also keep each epoch's weights (<run>/epochs/NNN.pt);
    # checkpoint.pt (for resuming) always holds the latest epoch only
    tensorboard: bool = True  # write TensorBoard event files into <run>/tensorboard
    wandb: bool = False  # also log to Weights & Biases, offline (needs the wandb package)
    model_ema: Optional[float] = None  # decay of an exponential moving average of the weights
    # (timm's ModelEmaV3); when set, the average is what is evaluated and saved
    early_stop_patience: Optional[int] = None  # stop after N evaluations without a better val
    # accuracy, and test the best epoch's weights (needs data.val_fraction > 0)
    nproc: int = 1  # processes (one GPU each) with DistributedDataParallel; >1 starts torchrun
    nnodes: int = 1  # machines, each running train.nproc processes (torchrun, c10d rendezvous)
    rdzv_endpoint: Optional[str] = None  # host:port the machines meet at (train.nnodes > 1)
    rdzv_id: Optional[str] = None  # the job's name at the rendezvous; None: a hash of the run's config
    sync_bn: bool = False  # SyncBatchNorm across processes (CUDA only; nproc > 1)
    stop_on_nan: bool = True  # false: a run whose loss turns NaN ends there, recorded as diverged


@dataclass
class OptimConfig:
    name: str = "adam"  # sgd | adam | adamw
    lr: float = 1.0e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    beta1: float = 0.9  # adam/adamw
    beta2: float = 0.999


@dataclass
class SchedConfig:
    name: str = "cosine"  # constant | cosine | onecycle | step
    warmup_epochs: float = 0.0  # linear warmup (cosine, constant)
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of optim.lr
    step_epochs: int = 30  # step: decay every N epochs
    gamma: float = 0.1  # step: decay factor
    pct_start: float = 0.25  # onecycle: fraction of steps spent rising


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
            "optim": OptimConfig, "sched": SchedConfig}


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_value(key: str, value: Any, typ: Any, where: str) -> Any:
    """Return ``value`` coerced to ``typ`` (int to float only), or raise ConfigError."""
    origin = typing.get_origin(typ)
    if origin is typing.Union:  # Optional[X], or one of several types (bool | str)
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(typ)):
            return None
        for arg in args[:-1]:
            try:
                return _check_value(key, value, arg, where)
            except ConfigError:
                pass
        return _check_value(key, value, args[-1], where)
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(typ)
            return [_check_value(f"{key}[{i}]", v, item, where) for i, v in enumerate(value)]
    else:  # pragma: no cover - a new field type must be handled above
        raise TypeError(f"unsupported config type {typ} for {key}")
    name = getattr(typ, "__name__", str(typ))
    raise ConfigError(f"{key}: expected {name}, got {value!r} ({type(value).__name__}){where}")


def _known_keys() -> list[str]:
    keys = [f"{s}.{f}" for s, cls in SECTIONS.items() for f in _field_types(cls)]
    return keys + ["seed", "device"]


def _unknown(key: str, where: str) -> ConfigError:
    import difflib

    hint = difflib.get_close_matches(key, _known_keys(), n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    return ConfigError(f"unknown config key {key!r}{where}{suggestion}")


def apply(cfg: Config, updates: dict[str, Any], source: str | None = None) -> Config:
    """Apply a nested dict of updates to ``cfg`` in place, validating every key and type."""
    where = f" (in {source})" if source else ""
    if not isinstance(updates, dict):
        raise ConfigError(f"expected a mapping of config keys{where}, got {type(updates).__name__}")
    top_types = _field_types(Config)
    for key, value in updates.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a mapping of {key}.* keys{where}, got {value!r}")
            section = getattr(cfg, key)
            types = _field_types(SECTIONS[key])
            for sub, subval in value.items():
                full = f"{key}.{sub}"
                if sub not in types:
                    raise _unknown(full, where)
                setattr(section, sub, _check_value(full, subval, types[sub], where))
        elif key in ("seed", "device"):
            setattr(cfg, key, _check_value(key, value, top_types[key], where))
        else:
            raise _unknown(str(key), where)
    return cfg


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``"optim.lr=0.1"`` into ``{"optim": {"lr": 0.1}}``; the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = _yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: not a valid YAML value: {exc}") from exc
    parts = key.split(".")
    if len(parts) == 1:
        return {key: value}
    if len(parts) == 2:
        return {parts[0]: {parts[1]: value}}
    raise _unknown(key, " (in --set)")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file not found: {path}")
    try:
        data = _yaml_load(path.read_text()) or {}
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}, {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def build(*layers: dict[str, Any] | tuple[dict[str, Any], str], overrides: list[str] = ()) -> Config:
    """Defaults, then each layer (a dict, or ``(dict, source_name)``), then ``key=value`` overrides."""
    cfg = Config()
    for layer in layers:
        data, source = layer if isinstance(layer, tuple) else (layer, None)
        apply(cfg, data, source)
    for text in overrides:
        apply(cfg, parse_override(text), "--set")
    resolve_data_defaults(cfg)
    validate(cfg)
    return cfg


def resolve_data_defaults(cfg: Config) -> Config:
    """Fill the data keys whose default depends on the data set (``data.val_fraction``)."""
    if cfg.data.val_fraction is None:
        cfg.data.val_fraction = datasets.default_val_fraction(cfg.data.name)
    return cfg


CHOICES = {  # data.name: the registered data sets (cnnvit.datasets.names())
    "data.task": ("binary", "hair5", "multilabel"),
    "data.policy": ("none", "autoaugment", "randaugment"),
    "optim.name": ("sgd", "adam", "adamw"),
    "model.freeze": ("none", "head", "last_k"),
    "data.resize_mode": ("bilinear", "bicubic"),
    "data.on_device": (True, False, "auto"),
    "train.amp": (True, False, "auto"),
    "sched.name": ("constant", "cosine", "onecycle", "step"),
}


def validate(cfg: Config) -> None:
    """Check values that a type alone cannot (choices, ranges). The model section is checked
    against the model registry by ``cnnvit.models.check_model_config``, so that this needs no torch."""
    flat = flatten(cfg.to_dict())
    for key, choices in {"data.name": tuple(datasets.names()), **CHOICES}.items():
        if flat[key] not in choices:
            raise ConfigError(f"{key}: {flat[key]!r} is not one of {', '.join(map(_yaml_scalar, choices))}")
    positive = ["train.epochs", "train.batch_size", "train.grad_accum", "train.eval_every",
                "train.eval_batch_size", "data.synthetic_train", "data.synthetic_test", "data.synthetic_size",
                "data.policy_group", "train.nproc", "train.nnodes", "model.trainable_blocks"]
    for key in positive:
        if flat[key] <= 0:
            raise ConfigError(f"{key}: must be positive, got {flat[key]}")
    for key in ("data.train_subset", "data.test_subset", "data.image_size", "data.decode_size"):
        if flat[key] is not None and flat[key] <= 0:
            raise ConfigError(f"{key}: must be positive or null, got {flat[key]}")
    ratio = flat["data.class_ratio"]
    if ratio is not None and (len(ratio) < 2 or min(ratio) <= 0):
        raise ConfigError(f"data.class_ratio: one positive weight per class, got {ratio}")
    for key in ("data.mean", "data.std"):
        if flat[key] is not None and len(flat[key]) != 3:
            raise ConfigError(f"{key}: expected 3 values (red, green, blue), got {flat[key]}")
    if flat["data.std"] is not None and min(flat["data.std"]) <= 0:
        raise ConfigError(f"data.std: every value must be positive, got {flat['data.std']}")
    if flat["data.classes"] is not None and flat["data.classes"] < 2:
        raise ConfigError(f"data.classes: must be at least 2 or null, got {flat['data.classes']}")
    if flat["optim.lr"] <= 0:
        raise ConfigError(f"optim.lr: must be positive, got {flat['optim.lr']}")
    for key in ("train.label_smoothing", "data.random_erasing", "sched.pct_start", "sched.min_lr_ratio"):
        if not 0.0 <= flat[key] <= 1.0:
            raise ConfigError(f"{key}: must lie in [0, 1], got {flat[key]}")
    if datasets.get_dataset(cfg.data.name).multilabel(cfg.data):
        for key in ("train.mixup", "train.cutmix", "train.label_smoothing", "train.balanced_sampling",
                    "data.class_ratio"):
            if flat[key]:
                raise ConfigError(f"{key}: not with data.task=multilabel (it assumes one class per image)")
    if flat["train.balanced_sampling"] and flat["train.class_weights"]:
        raise ConfigError("train.balanced_sampling and train.class_weights both correct for imbalance; "
                          "choose one")
    if flat["train.val_every_steps"] is not None and (flat["train.val_every_steps"] < 1
                                                       or not _has_val_split(cfg)):
        raise ConfigError(f"train.val_every_steps: needs a positive number of steps and a validation "
                          f"split (data.val_fraction > 0, or CelebA's own); got {flat['train.val_every_steps']} "
                          f"with data.val_fraction={flat['data.val_fraction']}")
    datasets.get_dataset(cfg.data.name).validate(cfg.data)  # the data set's own rules
    if not 0.0 <= flat["data.color_jitter"] <= 0.5:
        raise ConfigError(f"data.color_jitter: must lie in [0, 0.5], got {flat['data.color_jitter']}")
    patience = flat["train.early_stop_patience"]
    if patience is not None and (patience < 1 or not _has_val_split(cfg)):
        raise ConfigError(f"train.early_stop_patience: needs a positive number of evaluations and a "
                          f"validation split (data.val_fraction > 0); got {patience} with "
                          f"data.val_fraction={flat['data.val_fraction']}")
    if flat["train.class_weights"] and (flat["train.mixup"] or flat["train.cutmix"]):
        raise ConfigError("train.class_weights: not with mixup or cutmix (their soft targets mix classes)")
    if flat["train.model_ema"] is not None and not 0.0 < flat["train.model_ema"] < 1.0:
        raise ConfigError(f"train.model_ema: a decay in (0, 1), got {flat['train.model_ema']}")
    if flat["model.layer_decay"] is not None and not 0.0 < flat["model.layer_decay"] <= 1.0:
        raise ConfigError(f"model.layer_decay: must lie in (0, 1], got {flat['model.layer_decay']}")
    if not 0.0 < flat["data.rrc_min_scale"] <= 1.0:
        raise ConfigError(f"data.rrc_min_scale: must lie in (0, 1], got {flat['data.rrc_min_scale']}")
    if flat["data.synthetic_classes"] < 2:
        raise ConfigError(f"data.synthetic_classes: must be at least 2, got {flat['data.synthetic_classes']}")
    world = flat["train.nproc"] * max(1, flat["train.nnodes"])
    if flat["train.batch_size"] % world:
        among = (f"train.nproc={flat['train.nproc']} processes" if flat["train.nnodes"] == 1 else
                 f"the {world} processes of train.nnodes={flat['train.nnodes']} x train.nproc={flat['train.nproc']}")
        raise ConfigError(f"train.batch_size ({flat['train.batch_size']}) is the global batch and must "
                          f"divide evenly among {among}")
    if flat["train.sync_bn"] and cfg.device == "cpu":
        raise ConfigError("train.sync_bn: SyncBatchNorm runs on CUDA only; set device=cuda or "
                          "train.sync_bn=false")
    _validate_sources(cfg, flat)
    if not 0.0 <= flat["data.val_fraction"] < 1.0:
        raise ConfigError(f"data.val_fraction: must lie in [0, 1), got {flat['data.val_fraction']}")
    dev = cfg.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"device: {dev!r} is not one of auto, cpu, cuda, cuda:N")


def _validate_sources(cfg: Config, flat: dict[str, Any]) -> None:
    """The keys that say where data and processes come from: a data set's own options
    (decode size, CelebA's first images, coarse labels, test share) and the machines of a
    multi-node run."""
    if not 0.0 < flat["data.test_fraction"] < 1.0:
        raise ConfigError(f"data.test_fraction: must lie in (0, 1), got {flat['data.test_fraction']}")
    if flat["data.decode_size"] and not datasets.get_dataset(cfg.data.name).decodes:
        raise ConfigError(f"data.decode_size: {cfg.data.name} has images of one size already (it applies to "
                          f"data sets decoded from files of any size: "
                          f"{', '.join(s.name for s in datasets.registered() if s.decodes)}); use "
                          f"data.image_size to resize on the device")
    if flat["data.first_images"] is not None and cfg.data.name != "celeba":
        raise ConfigError(f"data.first_images: only CelebA selects its first listed images (data.name=celeba), "
                          f"not {cfg.data.name}; use data.train_subset / data.test_subset")
    if flat["data.coarse_labels"] and cfg.data.name != "cifar100":
        raise ConfigError(f"data.coarse_labels: only CIFAR-100 has coarse labels (data.name=cifar100), "
                          f"not {cfg.data.name}")
    if flat["train.nnodes"] > 1 and not _is_endpoint(flat["train.rdzv_endpoint"]):
        raise ConfigError(f"train.rdzv_endpoint: train.nnodes={flat['train.nnodes']} needs the host:port "
                          f"every machine meets at (e.g. node01:29400), got {flat['train.rdzv_endpoint']!r}")


def _is_endpoint(value: Optional[str]) -> bool:
    host, _, port = (value or "").rpartition(":")
    return bool(host) and port.isdigit()


def _has_val_split(cfg: Config) -> bool:
    return datasets.get_dataset(cfg.data.name).has_own_validation(cfg.data) or bool(cfg.data.val_fraction)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def non_defaults(cfg: Config) -> dict[str, tuple[Any, Any]]:
    """``{key: (value, default)}`` for every key that differs from its default."""
    base = Config()
    base.data.name = cfg.data.name  # a data set's own defaults are not changes
    now, default = flatten(cfg.to_dict()), flatten(resolve_data_defaults(base).to_dict())
    return {k: (v, default[k]) for k, v in now.items() if v != default[k]}


def _yaml_scalar(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def dump(cfg: Config) -> str:
    """YAML text of the resolved config; lines that differ from the defaults carry ``# default: X``."""
    changed = non_defaults(cfg)
    lines = ["# resolved cnnvit config; '# default: X' marks a value that differs from its default"]
    for key, value in cfg.to_dict().items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for sub, subval in value.items():
                line = f"  {sub}: {_yaml_scalar(subval)}"
                if f"{key}.{sub}" in changed:
                    line += f"  # default: {_yaml_scalar(changed[f'{key}.{sub}'][1])}"
                lines.append(line)
        else:
            line = f"{key}: {_yaml_scalar(value)}"
            if key in changed:
                line += f"  # default: {_yaml_scalar(changed[key][1])}"
            lines.append(line)
    return "\n".join(lines) + "\n"


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config saved by :func:`dump` (or ``to_dict``)."""
    return build((data, "saved config"))


# ------------------------------------------------------------------ what the study files read

def params_dir() -> Path:
    """The checkout's ``params/`` folder (``lib/cnnvit`` two levels down)."""
    return Path(__file__).resolve().parents[2] / "params"


def needed_by_studies(folder: Optional[Path] = None) -> Optional[dict[str, list[str]]]:
    """Which data sets the studies read: ``{data.name: [study, ...]}`` from every study file
    under ``folder`` (default :func:`params_dir`; every profile), each run's ``data.name`` over
    its ``base:``, leaving out the sets a file generates (``generated:``). None when there are
    no study files to read (cnnvit installed without its checkout): then every set counts.
    Read from the YAML alone: no run's config is built."""
    files = sorted((folder or params_dir()).glob("*/*.yaml"))
    needed: dict[str, list[str]] = {}
    for path in files:
        raw = load_yaml(path)
        if not isinstance(raw.get("runs"), dict):  # a plain config, not a study file
            continue
        study = str(raw.get("study", path.stem))
        base = ((raw.get("base") or {}).get("data") or {}).get("name", DataConfig.name)
        for run in raw["runs"].values():
            data = ((run or {}).get("config") or {}).get("data") or {}
            name = data.get("name", base)
            if name not in (raw.get("generated") or {}) and study not in needed.setdefault(name, []):
                needed[name].append(study)
    return needed if files else None
