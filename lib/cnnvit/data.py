# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.datasets`; this module re-exports what other modules and tests import."""
from .datasets import (Dataset, DatasetError, dataset_from_config, decode_images, default_data_dir,  # noqa: F401
                       default_root, hold_out_validation, load_dataset, locate_dataset, prepare_dataset,
                       stratified_indices)
from .datasets.synthetic import synthetic  # noqa: F401
