"""``make report``: execute the study notebooks (or reuse unchanged executions) and assemble
them into one HTML and PDF document. :mod:`.build` decides what to run; :mod:`.render` turns
executed notebooks into the document."""
from ..errors import ReportError
from . import render
from .build import (REPORT_ONLY, StudyEntry, build_report, discover_studies, execute_study, fingerprint,
                    left_out_studies, library_files, preflight, study_title, summary_frame)
from .render import StudyOutcome

__all__ = ["REPORT_ONLY", "ReportError", "StudyEntry", "StudyOutcome", "build_report", "discover_studies",
           "execute_study", "fingerprint", "left_out_studies", "library_files", "preflight", "render", "study_title",
           "summary_frame"]
