"""The data sets: one module per data set (``synthetic``, ``cifar10``, ``cifar100``,
``tiny_imagenet``, ``celeba``, ``imagefolder``), each registering a :class:`DatasetSpec` that
describes it once; shared primitives in ``base``; image decoding and the decoded-data cache in
``cache``; downloads and checks in ``fetch``.

Adding a data set: write a module that builds its :class:`Dataset` and calls
:func:`register_dataset` (its own ``data.*`` keys, if any, as a frozen options dataclass of
:func:`option` fields), and import it below. Importing this package imports no torch.
"""
from ..errors import DatasetError, FetchError
from .base import (DataSource, Dataset, DatasetSpec, FetchSpec, NoOptions, Source, channel_stats, check_options,
                   dataset_from_config, option, option_types, options, reset_options,
                   decode_images, default_data_dir, default_root, default_val_fraction,
                   find_marked_folder, generators, get_dataset, hold_out_validation, load_dataset, locate_dataset,
                   names, prepare_dataset, register_dataset, registered, stratified_indices,
                   take_few, take_subsets, unregister_dataset)
from .fetch import CONNECT_TIMEOUT, Status, check_dataset, dataset_specs, fetch_dataset, resolve
# registration order is the order of data.name's choices and of `cnnvit data fetch all`
from . import synthetic, cifar10, cifar100, tiny_imagenet, celeba, imagefolder  # noqa: E402,I001

__all__ = [
    "CONNECT_TIMEOUT", "DataSource", "Dataset", "NoOptions", "check_options", "option", "option_types", "options",
    "reset_options", "cifar100", "imagefolder", "DatasetError", "DatasetSpec", "FetchError", "FetchSpec", "Source",
    "Status", "celeba", "channel_stats", "check_dataset", "cifar10", "dataset_from_config",
    "dataset_specs", "decode_images", "default_data_dir", "default_root", "default_val_fraction",
    "fetch_dataset", "find_marked_folder", "generators", "get_dataset", "hold_out_validation",
    "load_dataset", "locate_dataset", "names", "prepare_dataset", "register_dataset", "registered",
    "resolve", "stratified_indices", "synthetic", "take_few", "take_subsets", "tiny_imagenet",
    "unregister_dataset",
]
