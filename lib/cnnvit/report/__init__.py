"""``make report``: execute the study notebooks (or reuse unchanged executions) and assemble
them into one HTML and PDF document. :mod:`.build` decides what to run; :mod:`.render` turns
executed notebooks into the document; :mod:`.cost` projects the GPU time of runs not run yet.

The submodules load on first use, so that :mod:`.cost` (which the GPU check imports on a bare
machine) needs none of papermill, nbformat and nbconvert that the others import."""
import importlib

from ..errors import ReportError

_FROM_BUILD = {"REPORT_ONLY", "StudyEntry", "StudyPlan", "build_report", "discover_studies", "execute_study",
               "fingerprint", "left_out_studies", "library_files", "missing_runs", "plan_study", "study_title",
               "summary_frame"}

__all__ = sorted(_FROM_BUILD | {"ReportError", "StudyOutcome", "render"})


def __getattr__(name: str):
    if name in ("build", "cost", "render"):
        return importlib.import_module(f".{name}", __name__)
    if name in _FROM_BUILD:
        return getattr(importlib.import_module(".build", __name__), name)
    if name == "StudyOutcome":
        return importlib.import_module(".render", __name__).StudyOutcome
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
