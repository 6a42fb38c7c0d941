"""The studies: loading and running a study file (:mod:`.study`), opening one in its notebook
(:func:`open_study`), which runs each conclusion compares (``groups:``, :mod:`.groups`), shared
tables and wording (:mod:`.common`, :mod:`.tables`), figures (:mod:`.plots`), and one module per
study with its groups, tables and conclusions, found by :mod:`.registry` (a module that assigns
``STUDY``). A notebook imports the shared names from here and its own study's module by name.

:mod:`.plots` (matplotlib, seaborn) loads on first use: training a study's runs, as a bare GPU
machine does, needs neither."""
import importlib
from pathlib import Path

from .common import (best_run, class_accuracy_extremes, deviations_table, diagnosis_table, distributed_table,
                     per_class_report, per_class_table, pooled_confusions, preview_preprocessing, seed_columns,
                     seed_formats, seed_notes, study_intro, summary_table, training_diagnosis,
                     weights_kind, weights_summary)
from .core import RunSpec, Study, project_root
from .dry_run import DryRun, DryRunReport, dry_run_study
from .groups import Group, check_groups
from .notebook import open_study, opening
from .registry import StudyModule, group_schema, register_study, study_module, study_modules, unregister_study
from .tables import factor_out_constants, plain, show_table, shown_path
from .study import (check_study_inputs, completed_metrics, load_study, prepare_generated_data, run_study,
                    study_config_for_run)

__all__ = [
    "DryRun", "DryRunReport", "Group", "RunSpec", "Study", "StudyModule", "best_run", "check_groups",
    "check_study_inputs", "class_accuracy_extremes", "completed_metrics", "deviations_table", "diagnosis_table",
    "distributed_table", "dry_run_study", "factor_out_constants", "group_schema", "load_study", "open_study",
    "opening", "per_class_report", "per_class_table", "plain", "plots", "pooled_confusions",
    "prepare_generated_data", "preview_preprocessing", "project_root", "register_study", "run_study",
    "seed_columns", "seed_formats", "seed_notes", "show_table", "shown_path", "study_config_for_run",
    "study_intro", "study_module", "study_modules", "summary_table", "training_diagnosis", "unregister_study",
    "weights_kind", "weights_summary",
]


def __getattr__(name: str):
    # a submodule on first use: plots (heavy), or a study's module (studies.cifar10_vit_vs_resnet)
    if not name.startswith("_") and (Path(__file__).parent / f"{name}.py").is_file():
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
