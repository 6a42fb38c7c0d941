"""Config: defaults, layering, validation with errors that name the key and the file, dump."""
from __future__ import annotations

import yaml
import pytest

from cnnvit import config
from cnnvit.config import Config, ConfigError, OptimConfig

DEFAULT_LR = OptimConfig().lr

REQUIRED_KEYS = ["data.name", "data.root", "data.train_subset", "data.test_subset", "model.name",
                 "train.epochs", "train.batch_size", "optim.name", "optim.lr", "seed", "device"]


def test_defaults_build_and_validate():
    cfg = config.build()
    assert isinstance(cfg, Config)
    assert cfg == config.resolve_data_defaults(Config())
    assert cfg.data.name == "synthetic"
    assert cfg.model.name == "resnet18_cifar"
    assert cfg.optim.name in ("sgd", "adam", "adamw") and cfg.optim.lr > 0
    assert cfg.seed == 0 and cfg.device == "auto"
    assert config.non_defaults(cfg) == {}


def test_required_keys_exist():
    flat = config.flatten(Config().to_dict())
    missing = [k for k in REQUIRED_KEYS if k not in flat]
    assert not missing


def test_yaml_layer_then_overrides(tmp_path):
    path = tmp_path / "file.yaml"
    path.write_text("data: {name: synthetic, train_subset: 100}\n"
                    "model: {name: test_vit}\n"
                    "train: {epochs: 3, batch_size: 32}\n"
                    "optim: {name: adamw, lr: 0.002}\n"
                    "seed: 5\n")
    data = config.load_yaml(path)
    cfg = config.build((data, str(path)), overrides=["optim.lr=0.01", "seed=7", "device=cpu",
                                                     "data.root=/some/where"])
    assert cfg.optim.lr == 0.01  # override beats the file
    assert cfg.optim.name == "adamw"  # the file beats the default
    assert cfg.train.epochs == 3 and cfg.train.batch_size == 32
    assert cfg.model.name == "test_vit"
    assert cfg.data.train_subset == 100 and cfg.data.test_subset is None
    assert cfg.seed == 7 and cfg.device == "cpu"
    assert cfg.data.root == "/some/where"
    assert cfg.train.grad_accum == 1  # untouched default


def test_later_layers_win():
    cfg = config.build({"optim": {"lr": 0.5}}, ({"optim": {"lr": 0.25}}, "second"))
    assert cfg.optim.lr == 0.25


def test_override_value_is_parsed_as_yaml():
    cfg = config.build(overrides=["data.train_subset=null", "data.flip=true", "optim.lr=1.0e-3",
                                  "train.grad_clip=1"])
    assert cfg.data.train_subset is None
    assert cfg.data.flip is True
    assert cfg.optim.lr == pytest.approx(1e-3)
    assert cfg.train.grad_clip == 1.0 and isinstance(cfg.train.grad_clip, float)


@pytest.mark.parametrize("text", ["optim.lr=1e-3", "optim.lr=5e-4"])
def test_override_accepts_exponent_without_dot(text):
    cfg = config.build(overrides=[text])
    assert cfg.optim.lr == pytest.approx(float(text.split("=")[1]))


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    path = tmp_path / "file.yaml"
    path.write_text("optim: {lrr: 0.01}\n")
    with pytest.raises(ConfigError) as exc:
        config.build((config.load_yaml(path), str(path)))
    msg = str(exc.value)
    assert "optim.lrr" in msg
    assert "file.yaml" in msg
    assert "optim.lr'" in msg  # the suggestion


def test_unknown_key_in_override_names_key():
    with pytest.raises(ConfigError, match=r"optim\.lrr.*--set"):
        config.build(overrides=["optim.lrr=0.01"])


@pytest.mark.parametrize("layer, key", [
    ({"optimm": {"lr": 0.1}}, "optimm"),
    ({"sed": 1}, "sed"),
    ({"train": {"epoch": 3}}, "train.epoch"),
])
def test_unknown_keys_rejected(layer, key):
    with pytest.raises(ConfigError) as exc:
        config.build((layer, "layer.yaml"))
    assert key in str(exc.value) and "layer.yaml" in str(exc.value)


def test_deep_override_key_rejected():
    with pytest.raises(ConfigError, match=r"optim\.lr\.x"):
        config.build(overrides=["optim.lr.x=1"])


def test_override_without_equals_rejected():
    with pytest.raises(ConfigError, match="optim.lr"):
        config.build(overrides=["optim.lr"])


def test_section_must_be_mapping():
    with pytest.raises(ConfigError, match="optim"):
        config.build(({"optim": 0.1}, "f.yaml"))


@pytest.mark.parametrize("override", ["train.epochs=ten", "train.epochs=1.5", "train.epochs=true"])
def test_wrong_type_for_int_names_key(override):
    with pytest.raises(ConfigError) as exc:
        config.build(overrides=[override])
    assert "train.epochs" in str(exc.value)
    assert "int" in str(exc.value)


def test_wrong_type_in_file_names_key_and_file():
    with pytest.raises(ConfigError) as exc:
        config.build(({"train": {"epochs": "ten"}}, "params/x.yaml"))
    assert "train.epochs" in str(exc.value) and "params/x.yaml" in str(exc.value)


@pytest.mark.parametrize("layer, key", [
    ({"optim": {"lr": "fast"}}, "optim.lr"),
    ({"optim": {"lr": True}}, "optim.lr"),  # bool is not a float either
    ({"data": {"flip": 1}}, "data.flip"),  # nor is 1 a bool
    ({"data": {"flip": "yes please"}}, "data.flip"),
    ({"model": {"name": 18}}, "model.name"),
    ({"data": {"train_subset": 1.5}}, "data.train_subset"),  # Optional[int]
    ({"seed": "0"}, "seed"),
])
def test_wrong_types_rejected(layer, key):
    with pytest.raises(ConfigError) as exc:
        config.build(layer)
    assert key in str(exc.value)


def test_int_accepted_for_float():
    cfg = config.build({"optim": {"lr": 1, "weight_decay": 0}, "sched": {"warmup_epochs": 2}})
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert isinstance(cfg.optim.weight_decay, float)
    assert isinstance(cfg.sched.warmup_epochs, float) and cfg.sched.warmup_epochs == 2.0


def test_unknown_model_name_rejected_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    """The config does not know the models (that would import torch): the model registry's check
    rejects an unknown name, naming it, in ``cnnvit train`` and when a study is loaded, before
    any data set is read (here one that is not there, which would fail next)."""
    import logging

    from cnnvit.__main__ import main
    from cnnvit.errors import ModelError
    from cnnvit.models import check_model_config
    from cnnvit.studies import load_study

    cfg = config.build(overrides=["model.name=resnet19"])
    with pytest.raises(ModelError) as exc:
        check_model_config(cfg.model)
    msg = str(exc.value)
    assert "model.name" in msg and "resnet19" in msg
    assert "resnet18" in msg  # suggestion / known list
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: None)
    out = tmp_path / "run"
    assert main(["train", "--set", "model.name=resnet19", "data.name=cifar10",
                 f"data.root={tmp_path / 'nothing here'}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model.name: unknown model 'resnet19'")
    assert not out.exists()
    params = tmp_path / "study.yaml"
    params.write_text(yaml.safe_dump({"study": "s", "profile": "smoke", "base": {"data": {"name": "cifar10"}},
                                      "runs": {"a": {}, "b": {"config": {"model": {"name": "resnet19"}}}}}))
    with pytest.raises(ConfigError) as exc:
        load_study(params, out_dir=tmp_path / "study", data_dir=tmp_path / "nothing here")
    assert "runs.b" in str(exc.value) and "'resnet19'" in str(exc.value)


def test_building_and_validating_a_config_imports_no_torch(tmp_path):
    import subprocess
    import sys

    (tmp_path / "run.yaml").write_text("model: {name: vit_base_patch16_224, drop_path: 0.1}\n"
                                       "data: {image_size: 224}\n")
    code = ("import sys; from cnnvit import config; "
            f"cfg = config.build(config.load_yaml({str(tmp_path / 'run.yaml')!r}), overrides=['seed=1']); "
            "config.validate(cfg); config.from_dict(cfg.to_dict()); config.dump(cfg); "
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'torchvision')); "
            "assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("override, key", [
    ("optim.name=rmsprop", "optim.name"),
    ("sched.name=linear", "sched.name"),
    ("data.name=imagenet", "data.name"),
    ("data.policy=trivialaugment", "data.policy"),
])
def test_bad_choice_rejected(override, key):
    with pytest.raises(ConfigError) as exc:
        config.build(overrides=[override])
    assert key in str(exc.value)
    assert override.split("=")[1] in str(exc.value)


@pytest.mark.parametrize("override, key", [
    ("train.epochs=0", "train.epochs"),
    ("train.batch_size=-1", "train.batch_size"),
    ("data.train_subset=0", "data.train_subset"),
    ("optim.lr=0", "optim.lr"),
    ("train.label_smoothing=1.5", "train.label_smoothing"),
    ("data.random_erasing=-0.1", "data.random_erasing"),
    ("device=gpu", "device"),
    ("device=cuda:x", "device"),
])
def test_range_checks(override, key):
    with pytest.raises(ConfigError) as exc:
        config.build(overrides=[override])
    assert key in str(exc.value)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1"])
def test_device_names_accepted(device):
    assert config.build(overrides=[f"device={device}"]).device == device


def test_load_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        config.load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        config.load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml"):
        config.load_yaml(lst)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert config.load_yaml(empty) == {}


def test_dump_marks_non_defaults():
    cfg = config.build(overrides=["optim.lr=0.0123", "train.epochs=3", "device=cpu",
                                  "data.train_subset=500"])
    text = config.dump(cfg)
    lines = text.splitlines()
    marked = [ln for ln in lines[1:] if "# default:" in ln]  # line 0 is the header comment
    assert len(marked) == 4
    lr_line = next(ln for ln in lines if ln.strip().startswith("lr:"))
    assert lr_line.split("#")[0].strip() == "lr: 0.0123"
    assert yaml.safe_load(lr_line.split("# default:")[1]) == DEFAULT_LR
    epochs_line = next(ln for ln in lines if ln.strip().startswith("epochs:"))
    assert epochs_line.endswith("# default: 10")
    assert next(ln for ln in lines if ln.startswith("device:")).endswith("# default: auto")
    assert next(ln for ln in lines if "train_subset" in ln).endswith("# default: null")
    # unchanged values carry no marker
    bs_line = next(ln for ln in lines if ln.strip().startswith("batch_size:"))
    assert "#" not in bs_line


def test_dump_of_defaults_has_no_markers():
    lines = config.dump(config.build()).splitlines()
    assert lines[0].startswith("#")
    assert not any("# default:" in ln for ln in lines[1:])


@pytest.mark.parametrize("layer", [
    {},
    {"optim": {"lr": 0.01}, "train": {"epochs": 3}, "device": "cpu",
     "data": {"train_subset": 500}, "seed": 3},
    {"data": {"root": "/tmp/my data: x #1", "image_size": 64, "policy": "autoaugment"},
     "model": {"name": "test_vit"}, "train": {"grad_clip": 0.5}, "sched": {"name": "onecycle"},
     "optim": {"lr": 1e-05}},
    {"data": {"root": "123"}, "train": {"aug_seed": 11}, "optim": {"beta2": 0.98}},
    {"data": {"root": "yes"}},
    {"data": {"root": "null"}},
    {"data": {"root": "~/data/" + "long folder name " * 8}},
])
def test_dump_round_trips(layer):
    cfg = config.build(layer)
    text = config.dump(cfg)
    back = config.from_dict(yaml.safe_load(text))
    assert back == cfg
    # and the round trip is a fixed point
    assert config.dump(back) == text


def test_to_dict_round_trips():
    cfg = config.build(overrides=["optim.name=adamw", "model.drop_path=0.1"])
    assert config.from_dict(cfg.to_dict()) == cfg


def test_non_defaults():
    cfg = config.build(overrides=["optim.lr=0.0123", "seed=2"])
    assert config.non_defaults(cfg) == {"optim.lr": (0.0123, DEFAULT_LR), "seed": (2, 0)}


@pytest.mark.parametrize("overrides, expected", [
    (["data.name=tiny-imagenet"], 0.2),  # the seed's protocol for Tiny-ImageNet
    (["data.name=tiny-imagenet", "data.val_fraction=0"], 0.0),  # an explicit value wins
    (["data.name=cifar10"], 0.0),
])
def test_validation_share_defaults_to_the_data_sets_protocol(overrides, expected):
    cfg = config.build(overrides=overrides)
    assert cfg.data.val_fraction == expected
    assert "data.val_fraction" not in config.non_defaults(cfg) or expected == 0.0 and "tiny" in overrides[0]
