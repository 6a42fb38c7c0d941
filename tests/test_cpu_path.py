"""The CPU path: bf16 autocast where the CPU computes bf16 natively (and the model gains from it),
fp32 elsewhere; the explicit attention form under CPU bf16; and the choice recorded in the run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnvit.models import create_model, model_info, use_explicit_attention
from cnnvit.training import device as device_mod

CPU = torch.device("cpu")


@pytest.mark.parametrize("flags, native", [
    ("fpu sse2 avx512f avx512_bf16 avx512_vnni", True),
    ("fpu sse2 avx512f amx_bf16 amx_tile", True),
    ("fpu sse2 avx2 avx512f avx512_vnni", False),  # AVX-512 without its BF16 extension
])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, native: bool) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert device_mod.cpu_has_bf16(info) is native


def test_arm_bf16_feature_counts_and_an_unreadable_file_means_none(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")
    assert device_mod.cpu_has_bf16(info)
    assert not device_mod.cpu_has_bf16(tmp_path / "missing")


@pytest.mark.parametrize("amp, native, gains, expected", [
    ("auto", True, True, "bf16"),
    ("auto", True, False, "fp32"),  # a model measured slower in bf16 on the CPU keeps fp32
    ("auto", False, True, "fp32"),  # no native bf16: emulated bf16 is slower
    (True, True, False, "bf16"),  # asked for explicitly
    (True, False, True, "fp32"),
    (False, True, True, "fp32"),
])
def test_precision_on_the_cpu(monkeypatch, amp, native: bool, gains: bool, expected: str) -> None:
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: native)
    precision, why = device_mod.choose_precision(amp, CPU, gains)
    assert precision == expected
    assert why and (native or amp is False or "no native bf16" in why)


def test_cuda_takes_bf16_unless_switched_off() -> None:
    cuda = torch.device("cuda")
    assert device_mod.choose_precision("auto", cuda, False)[0] == "bf16"
    assert device_mod.choose_precision(False, cuda, True)[0] == "fp32"


def _autocast_seen(monkeypatch, train_mod, make_cfg, tiny_ds, tmp_path: Path, native: bool, amp="auto"):
    """Train a tiny run with native bf16 simulated on or off; returns its metrics.json and
    whether the model's forward passes in training ran under CPU autocast."""
    monkeypatch.setattr(device_mod, "cpu_has_bf16", lambda: native)
    seen: list[bool] = []
    real = create_model

    def spying_create_model(*args, **kwargs):
        model = real(*args, **kwargs)
        model.register_forward_hook(lambda m, i, o: seen.append(torch.is_autocast_enabled("cpu")) if m.training
                                    else None)
        return model

    from cnnvit.training import setup
    monkeypatch.setattr(setup, "create_model", spying_create_model)
    out = train_mod.train(make_cfg({"train": {"amp": amp}}), tmp_path / f"run-{native}-{amp}",
                          dataset=tiny_ds, progress=False)
    return json.loads((out / "metrics.json").read_text()), seen


def test_a_run_records_bf16_and_trains_under_autocast_where_the_cpu_has_it(monkeypatch, train_mod, make_cfg,
                                                                            tiny_ds, tmp_path: Path) -> None:
    m, seen = _autocast_seen(monkeypatch, train_mod, make_cfg, tiny_ds, tmp_path, native=True)
    assert m["compute"]["autocast"] == "bf16" and m["compute"]["channels_last"] is True
    assert m["compute"]["compiled"] is False and m["compute"]["threads"] == torch.get_num_threads()
    assert seen and all(seen)


def test_without_native_bf16_a_run_trains_and_records_fp32(monkeypatch, train_mod, make_cfg, tiny_ds,
                                                            tmp_path: Path) -> None:
    m, seen = _autocast_seen(monkeypatch, train_mod, make_cfg, tiny_ds, tmp_path, native=False)
    assert m["compute"]["autocast"] == "fp32" and "no native bf16" in m["compute"]["why"]
    assert seen and not any(seen)


def test_amp_false_is_fp32_even_with_native_bf16(monkeypatch, train_mod, make_cfg, tiny_ds, tmp_path: Path) -> None:
    m, seen = _autocast_seen(monkeypatch, train_mod, make_cfg, tiny_ds, tmp_path, native=True, amp=False)
    assert m["compute"]["autocast"] == "fp32" and m["compute"]["why"] == "train.amp=false"
    assert seen and not any(seen)


def test_explicit_attention_is_the_same_function() -> None:
    """timm's attention without the fused kernel (what CPU bf16 runs use) computes what the
    fused one does."""
    torch.manual_seed(0)
    model = create_model("test_vit_cifar", 10).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        fused = model(x)
        assert use_explicit_attention(model) >= 1
        assert not any(getattr(m, "fused_attn", False) for m in model.modules())
        explicit = model(x)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-5)


def test_cpu_bf16_metadata_defaults_to_true() -> None:
    assert model_info("resnet10_mini_cifar").cpu_bf16 and model_info("vit_mini_cifar").cpu_bf16
