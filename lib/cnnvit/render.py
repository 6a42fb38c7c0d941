# TEMPORARY shim (issue 12): removed at merge
"""Moved to :mod:`cnnvit.report.render`."""
from .report.render import (PAPERMILL_ERROR_TAG, REPORT_CSS, SUMMARY_COLUMNS, VERSIONED_PACKAGES,  # noqa: F401
                            StudyOutcome, assemble_html, failing_cell, git_state, hardware_summary, headings,
                            notebook_body_html, overflowing_boxes, package_versions, quiet_log, references_html,
                            report_cells, strip_ansi, study_section, summary_html, title_facts, write_pdf)
