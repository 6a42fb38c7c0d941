# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.datasets.fetch`; this module re-exports what other modules and tests import."""
from .datasets.fetch import (CONNECT_TIMEOUT, FetchError, FetchSpec, Source, Status,  # noqa: F401
                             check_dataset, dataset_specs, fetch_dataset, fetch_into, resolve)
