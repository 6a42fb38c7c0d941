"""The five studies: loading and running a study file (:mod:`.study`), which runs each
conclusion compares (``groups:``, :mod:`.groups`), shared tables and wording (:mod:`.common`),
figures (:mod:`.plots`) and one module per study with its tables and conclusions. The notebooks
import what they use from here.

:mod:`.plots` (matplotlib, seaborn) loads on first use: training a study's runs, as a bare GPU
machine does, needs neither."""
import importlib

from .celeba_simple_classifier import (celeba_table, class_balance, family_table, per_label_table, roc_curves,
                                       task_runs)
from .celeba_simple_classifier import conclusions as celeba_conclusions
from .cifar10_finetune import finetune_table, seed_report
from .cifar10_finetune import conclusions as finetune_conclusions
from .cifar10_vit_vs_resnet import conclusions as cifar10_conclusions
from .common import (best_run, class_accuracy_extremes, deviations_table, diagnosis_table, distributed_table,
                     per_class_report, per_class_table, pooled_confusions, preview_preprocessing, seed_columns,
                     seed_formats, seed_notes, study_intro, summary_table, training_diagnosis,
                     weights_kind, weights_summary)
from .core import RunSpec, Study, project_root
from .dry_run import DryRun, DryRunReport, dry_run_study
from .groups import Group, check_groups
from .registry import STUDIES, group_schema
from .tables import factor_out_constants, plain, show_table, shown_path
from .study import (check_study_inputs, completed_metrics, load_study, prepare_generated_data, run_study,
                    study_config_for_run)
from .tiny_imagenet_cnn_ablations import ablation_pairs, effect_panels
from .tiny_imagenet_cnn_ablations import conclusions as tiny_imagenet_conclusions
from .tiny_imagenet_transformers import (ablation_table, batch_size_table, effective_batch, efficiency_table,
                                         optimizer_table, transformer_table)
from .tiny_imagenet_transformers import conclusions as transformers_conclusions

__all__ = [
    "DryRun", "DryRunReport", "Group", "RunSpec", "STUDIES", "Study", "ablation_pairs", "ablation_table",
    "batch_size_table", "best_run", "celeba_conclusions", "celeba_table", "check_groups", "check_study_inputs",
    "cifar10_conclusions", "class_accuracy_extremes", "class_balance", "completed_metrics", "deviations_table",
    "diagnosis_table", "distributed_table", "dry_run_study", "effect_panels", "effective_batch", "efficiency_table",
    "factor_out_constants", "family_table", "finetune_conclusions", "finetune_table", "group_schema", "load_study",
    "optimizer_table", "per_class_report", "per_class_table", "per_label_table", "plain", "plots", "pooled_confusions",
    "prepare_generated_data",
    "preview_preprocessing", "project_root", "roc_curves", "run_study", "seed_columns", "seed_formats", "seed_notes",
    "seed_report", "show_table", "shown_path", "study_config_for_run", "study_intro", "summary_table", "task_runs",
    "tiny_imagenet_conclusions",
    "training_diagnosis", "transformer_table", "transformers_conclusions", "weights_kind", "weights_summary",
]


def __getattr__(name: str):
    if name == "plots":
        return importlib.import_module(".plots", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
