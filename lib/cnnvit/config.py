"""Typed run configuration: the one place where defaults live (a data set's own options keep
theirs beside its loader, in its module: :class:`~cnnvit.datasets.DataSource`).

A config is built from defaults, then a YAML file, then ``key=value`` overrides, and validated
at every step: an unknown key or a value of the wrong type raises :class:`ConfigError` naming
the key (and the file it came from) before any data is loaded or any model is built.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from . import datasets
from .errors import CnnvitError, ConfigError  # noqa: F401 (re-exported)
from .rules import FRACTION, POSITIVE, Rule, scalar


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


@dataclass(eq=False, repr=False)  # DataSource's equality and repr, which see the options too
class DataConfig(datasets.DataSource):
    """The data keys: which images from where (:class:`~cnnvit.datasets.DataSource`, with every
    registered data set's own options, e.g. data.task for CelebA), then what is done to them on
    the device."""

    on_device: Union[bool, str] = "auto"  # the training split on the GPU (true), in host memory with
    # each batch copied ahead of compute (false), or chosen from its size and the free GPU memory
    image_size: Optional[int] = None  # resize on the device to this size (None: native size)
    resize_mode: str = "bilinear"  # bilinear | bicubic (the resize on the device)
    normalize: bool = True  # subtract the data set's mean, divide by its std
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
        d = dataclasses.asdict(self)
        # asdict sees the dataclass fields only; of the options, those of the run's own data set
        # (what its loader reads): another set's options change nothing, so they are no part of it
        d["data"].update(self.data.own_option_values())
        return d


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
            "optim": OptimConfig, "sched": SchedConfig}


@functools.cache  # resolving a class's type hints is slow, and they do not change
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field_types(cls: type) -> dict[str, Any]:
    hints = _type_hints(cls)
    return {**hints, **datasets.option_types()} if cls is DataConfig else hints


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


CHOICES = {  # data.name: the registered data sets; a data set's own keys: its DatasetSpec.options
    "data.policy": ("none", "autoaugment", "randaugment"),
    "optim.name": ("sgd", "adam", "adamw"),
    "model.freeze": ("none", "head", "last_k"),
    "data.resize_mode": ("bilinear", "bicubic"),
    "data.on_device": (True, False, "auto"),
    "train.amp": (True, False, "auto"),
    "sched.name": ("constant", "cosine", "onecycle", "step"),
}
_OPEN_UNIT = Rule(low=0.0, high=1.0, low_open=True, high_open=True)
RULES: dict[str, Rule] = {  # what a value may be beyond its type; null passes where the type allows it
    **{key: Rule(choices=c) for key, c in CHOICES.items()},
    **dict.fromkeys(["train.epochs", "train.batch_size", "train.grad_accum", "train.eval_every",
                     "train.eval_batch_size", "train.nproc", "train.nnodes", "model.trainable_blocks",
                     "data.policy_group", "data.train_subset", "data.test_subset", "data.image_size",
                     "data.decode_size", "data.std", "optim.lr"], POSITIVE),
    **dict.fromkeys(["train.label_smoothing", "data.random_erasing", "sched.pct_start", "sched.min_lr_ratio"],
                    FRACTION),
    "data.classes": Rule(low=2),
    "data.color_jitter": Rule(low=0.0, high=0.5),
    "data.rrc_min_scale": Rule(low=0.0, high=1.0, low_open=True),
    "data.val_fraction": Rule(low=0.0, high=1.0, high_open=True),
    "model.layer_decay": Rule(low=0.0, high=1.0, low_open=True),
    "train.model_ema": _OPEN_UNIT,
}


def choices() -> dict[str, tuple[Any, ...]]:
    """``{key: allowed values}`` of every key with a fixed set of values (data.name and the data
    sets' own options included)."""
    own = {f"data.{k}": f.metadata["rule"].choices for k, (_, f) in datasets.options().items()
           if f.metadata["rule"].choices}
    return {"data.name": tuple(datasets.names()), **CHOICES, **own}


def validate(cfg: Config) -> None:
    """Check values that a type alone cannot (choices, ranges, keys that go together): the
    table :data:`RULES`, then each section's own rules. The model section is checked against the
    model registry by ``cnnvit.models.check_model_config``, so that this needs no torch."""
    flat = flatten(cfg.to_dict())
    if cfg.data.name not in datasets.names():
        raise ConfigError(f"data.name: {cfg.data.name!r} is not one of {', '.join(datasets.names())}")
    for key, rule in RULES.items():
        if rule.problem(flat[key]):  # said again knowing whether the key may be null
            section, _, name = key.partition(".")
            nullable = type(None) in typing.get_args(_field_types(SECTIONS[section])[name])
            raise ConfigError(f"{key}: {rule.problem(flat[key], nullable)}")
    for check in (check_data, check_train, check_device):
        check(cfg)


def check_data(cfg: Config) -> None:
    """The data section's rules that tie keys together, its data set's options and own rules."""
    data, spec = cfg.data, datasets.get_dataset(cfg.data.name)
    datasets.check_options(data)
    if data.class_ratio is not None and (len(data.class_ratio) < 2 or min(data.class_ratio) <= 0):
        raise ConfigError(f"data.class_ratio: one positive weight per class, got {data.class_ratio}")
    for key in ("mean", "std"):
        if getattr(data, key) is not None and len(getattr(data, key)) != 3:
            raise ConfigError(f"data.{key}: expected 3 values (red, green, blue), got {getattr(data, key)}")
    if data.decode_size and not spec.decodes:
        raise ConfigError(f"data.decode_size: {data.name} has images of one size already (it applies to "
                          f"data sets decoded from files of any size: "
                          f"{', '.join(s.name for s in datasets.registered() if s.decodes)}); use "
                          f"data.image_size to resize on the device")
    spec.validate(data)


def check_train(cfg: Config) -> None:
    """The training section's rules that tie keys together (or to the data)."""
    t, data = cfg.train, cfg.data
    if datasets.get_dataset(data.name).multilabel(data):
        for key, value in (("train.mixup", t.mixup), ("train.cutmix", t.cutmix),
                           ("train.label_smoothing", t.label_smoothing),
                           ("train.balanced_sampling", t.balanced_sampling), ("data.class_ratio", data.class_ratio)):
            if value:
                raise ConfigError(f"{key}: not with data.task=multilabel (it assumes one class per image)")
    if t.balanced_sampling and t.class_weights:
        raise ConfigError("train.balanced_sampling and train.class_weights both correct for imbalance; choose one")
    if t.class_weights and (t.mixup or t.cutmix):
        raise ConfigError("train.class_weights: not with mixup or cutmix (their soft targets mix classes)")
    for key, what in (("val_every_steps", "steps"), ("early_stop_patience", "evaluations")):
        value = getattr(t, key)
        if value is not None and (value < 1 or not _has_val_split(cfg)):
            raise ConfigError(f"train.{key}: needs a positive number of {what} and a validation split "
                              f"(data.val_fraction > 0, or CelebA's own); got {value} with "
                              f"data.val_fraction={data.val_fraction}")
    world = t.nproc * max(1, t.nnodes)
    if t.batch_size % world:
        among = (f"train.nproc={t.nproc} processes" if t.nnodes == 1 else
                 f"the {world} processes of train.nnodes={t.nnodes} x train.nproc={t.nproc}")
        raise ConfigError(f"train.batch_size ({t.batch_size}) is the global batch and must divide evenly "
                          f"among {among}")
    if t.nnodes > 1 and not _is_endpoint(t.rdzv_endpoint):
        raise ConfigError(f"train.rdzv_endpoint: train.nnodes={t.nnodes} needs the host:port every machine "
                          f"meets at (e.g. node01:29400), got {t.rdzv_endpoint!r}")


SYNC_BN_NEEDS_CUDA = "train.sync_bn: SyncBatchNorm runs on CUDA only; set device=cuda or train.sync_bn=false"


def check_device(cfg: Config) -> None:
    """The device key, and a setting that needs CUDA on a config that asks for the CPU (with
    device=auto, ``training.check_device`` applies the same rule to the device it resolves)."""
    dev = cfg.device
    if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"device: {dev!r} is not one of auto, cpu, cuda, cuda:N")
    if cfg.train.sync_bn and dev == "cpu":
        raise ConfigError(SYNC_BN_NEEDS_CUDA)


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


def dump(cfg: Config) -> str:
    """YAML text of the resolved config; lines that differ from the defaults carry ``# default: X``."""
    changed = non_defaults(cfg)
    lines = ["# resolved cnnvit config; '# default: X' marks a value that differs from its default"]
    for key, value in cfg.to_dict().items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            for sub, subval in value.items():
                line = f"  {sub}: {scalar(subval)}"
                if f"{key}.{sub}" in changed:
                    line += f"  # default: {scalar(changed[f'{key}.{sub}'][1])}"
                lines.append(line)
        else:
            line = f"{key}: {scalar(value)}"
            if key in changed:
                line += f"  # default: {scalar(changed[key][1])}"
            lines.append(line)
    return "\n".join(lines) + "\n"


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config saved by :func:`dump` (or ``to_dict``)."""
    return build((data, "saved config"))


# ------------------------------------------------------------------ what the study files read

def params_dir() -> Path:
    """The checkout's ``params/`` folder (``lib/cnnvit`` two levels down)."""
    return Path(__file__).resolve().parents[2] / "params"


def config_layers(runs: dict[str, Any], name: str, path: str | Path) -> list[tuple[dict[str, Any], str]]:
    """The ``config:`` layers of run ``name`` of a study file's ``runs:``, each with its source
    name, to be applied over ``base:`` in this order: the farthest run of its ``from:`` chain
    first, the run's own ``config:`` last. Raises :class:`ConfigError` naming the file, the run
    and the problem for a ``from:`` that names no run, the run itself, or closes a cycle."""
    chain = [name]
    while True:
        spec = runs[chain[-1]]
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: runs.{chain[-1]}: expected a mapping")
        if "from" not in spec:
            break
        source = spec["from"]
        via = f"{' -> '.join(chain)} -> {source}: " if len(chain) > 1 else ""
        where = f"{path}: runs.{name}.from: {via}"
        if not isinstance(source, str) or not source:
            raise ConfigError(f"{where}expected the name of another run of this file, got {source!r}")
        if source == chain[-1]:
            raise ConfigError(f"{where}{source!r} is the run itself; name another run of this file")
        if source not in runs:
            raise ConfigError(f"{where}no run named {source!r}; runs: {', '.join(runs)}")
        if source in chain:
            raise ConfigError(f"{path}: runs.{name}.from: a cycle, {' -> '.join(chain + [source])}")
        chain.append(source)
    return [(runs[n].get("config") or {}, f"{path}: runs.{n}") for n in reversed(chain)]


def needed_by_studies(folder: Optional[Path] = None) -> Optional[dict[str, list[str]]]:
    """Which data sets the studies read: ``{data.name: [study, ...]}`` from every study file
    under ``folder`` (default :func:`params_dir`; every profile), each run's ``data.name`` over
    its ``from:`` chain and its ``base:``, leaving out the sets a file generates (``generated:``).
    None when there are no study files to read (cnnvit installed without its checkout): then
    every set counts.
    Read from the YAML alone: no run's config is built."""
    files = sorted((folder or params_dir()).glob("*/*.yaml"))
    needed: dict[str, list[str]] = {}
    for path in files:
        raw = load_yaml(path)
        if not isinstance(raw.get("runs"), dict):  # a plain config, not a study file
            continue
        study = str(raw.get("study", path.stem))
        base = ((raw.get("base") or {}).get("data") or {}).get("name", DataConfig.name)
        for run in raw["runs"]:  # its own data.name, else the one its from: chain gives, else base's
            names = [(layer.get("data") or {}).get("name") for layer, _ in config_layers(raw["runs"], run, path)]
            name = next((n for n in reversed(names) if n), base)
            if name not in (raw.get("generated") or {}) and study not in needed.setdefault(name, []):
                needed[name].append(study)
    return needed if files else None
