# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.studies` (loading and running: :mod:`cnnvit.studies.study`)."""
from .errors import StudyInputError  # noqa: F401
from .studies.common import summary_table  # noqa: F401
from .studies.core import RUN_REF, RunSpec, Study, project_root  # noqa: F401
from .studies.study import (GENERATED_DEFAULTS, GENERATORS, ROLES, RUN_KEYS, STUDY_KEYS,  # noqa: F401
                            check_study_inputs, completed_metrics, load_study, prepare_generated_data, run_study,
                            study_config_for_run)
