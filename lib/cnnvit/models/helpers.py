"""Measuring and placing a built model: parameters, FLOPs, memory format, attention kernel."""
from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import nn

log = logging.getLogger(__name__)


def count_flops(model: nn.Module, image_size: int | tuple[int, int],
                device: torch.device | str = "cpu") -> Optional[float]:
    """Floating-point operations of one forward pass on one image (torch's FLOP counter: a
    multiply-add counts 2); None, with a warning, where the counter fails on a model."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    try:
        for p in model.parameters():  # the counter's module tracker hooks tensors that need grad
            p.requires_grad_(False)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
            model(torch.zeros(1, 3, h, w, device=device))
        return float(counter.get_total_flops())
    except Exception as exc:  # an efficiency figure must never cost a finished run
        log.warning("could not count FLOPs of %s: %s", type(model).__name__, exc)
        return None
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)


def activation_bytes(model: nn.Module, image_size: int | tuple[int, int]) -> Optional[int]:
    """A lower bound of the memory one training image's activations take (bytes, fp32): the
    outputs of every leaf module in one forward pass, which backward keeps. Run on the meta device
    (``model`` built there: no memory, no arithmetic), so it costs milliseconds at any size; None
    where a model cannot run on meta tensors. Attention maps computed by functions, not modules,
    are not counted: the bound is low, good for refusing what clearly cannot fit."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        for t in (output if isinstance(output, (tuple, list)) else (output,)):
            if isinstance(t, torch.Tensor):
                total += t.numel() * 4

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        model(torch.zeros(1, 3, h, w, device="meta"))
        return total
    except Exception as exc:  # an estimate must never stop a run
        log.debug("no activation estimate for %s: %s", type(model).__name__, exc)
        return None
    finally:
        for hook in hooks:
            hook.remove()


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def parameter_count(name: str, num_classes: int = 10) -> int:
    """Parameters of the registered model ``name`` with a ``num_classes``-way head, counted
    without allocating its weights: built on PyTorch's meta device (milliseconds even for
    ViT-L), or on the CPU for a model whose builder copies data into a tensor (T2T-ViT's
    sinusoid table), which the meta device cannot hold."""
    from .registry import create_model

    try:
        with torch.device("meta"):
            return count_parameters(create_model(name, num_classes))
    except NotImplementedError:  # "Cannot copy out of meta tensor": build it for real
        return count_parameters(create_model(name, num_classes))


def set_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """The model in channels-last memory format when ``channels_last`` (faster convolutions)."""
    return model.to(memory_format=torch.channels_last) if channels_last else model


def use_explicit_attention(model: nn.Module) -> int:
    """Switch timm's attention layers from ``F.scaled_dot_product_attention`` to their explicit
    matmul-softmax-matmul form (the same function); returns how many layers were switched.

    For bf16 on the CPU: there torch's fused attention kernel is 6-7x slower in bf16 than in
    fp32 (torch 2.14, 2-core AVX-512 BF16 machine, forward and backward at 65 tokens), while the
    explicit form's matmuls gain from bf16 as the rest of the model does."""
    n = 0
    for module in model.modules():
        if getattr(module, "fused_attn", False):
            module.fused_attn = False
            n += 1
    return n
