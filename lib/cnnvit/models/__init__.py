"""Models: a registry of builders with their metadata (:mod:`.registry`), the families that
register into it (:mod:`.resnet`, :mod:`.vgg`, :mod:`.classic`, :mod:`.vit` with T2T-ViT's
architecture in :mod:`.t2t_vit`, and the tiny ``test_*`` stand-ins in :mod:`.tiny`), every other
model of timm and torchvision by name (:mod:`.external`, searched with :func:`search_models`), pretrained
weights and freeze policies (:mod:`.weights`), and measures of a built model (:mod:`.helpers`).

Importing this package imports torch, not timm or torchvision (a model's builder imports its
library). :func:`check_model_config` checks a run's model section before any work.
"""
from __future__ import annotations

# the families register their models on import
from . import classic, resnet, tiny, vgg, vit  # noqa: F401
from .external import LibraryModel, search_models
from .helpers import (activation_bytes, count_flops, count_parameters, parameter_count, set_memory_format,
                      use_explicit_attention)
from .registry import (Hub, ModelInfo, check_input_size, check_model_config, create_model, hub_weights,
                       is_fixed_size, list_models, model_info, native_size, register_model,
                       unregister_model)
from .weights import (FREEZE_POLICIES, LoadReport, apply_freeze, check_pretrained, count_blocks,
                      layer_decay_groups, load_checkpoint, prepare_model)

__all__ = ["FREEZE_POLICIES", "activation_bytes", "Hub", "LibraryModel", "LoadReport", "ModelInfo", "apply_freeze",
           "check_input_size", "check_model_config", "check_pretrained", "count_blocks", "count_flops", "count_parameters", "create_model",
           "hub_weights", "is_fixed_size", "layer_decay_groups", "list_models", "load_checkpoint", "unregister_model",
           "model_info", "native_size", "parameter_count", "prepare_model", "register_model", "search_models", "set_memory_format",
           "use_explicit_attention"]
