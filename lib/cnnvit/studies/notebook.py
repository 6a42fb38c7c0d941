"""A study notebook's set-up in one call: logging, the parameter file of the chosen profile,
the check of every run's inputs before any training, and the opening lines the notebook shows."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .core import Study, project_root
from .study import check_study_inputs, load_study
from .tables import shown_path

LOG_FORMAT = "%(asctime)s %(name)s: %(message)s"


def open_study(params_file: str | Path, *, expect: str, out_dir: Optional[str | Path] = None,
               data_dir: Optional[str | Path] = None, partial: bool = False) -> Study:
    """The study of ``params_file`` (relative to the project root), as its notebook opens it:
    INFO logging to the notebook, the file checked to be study ``expect``'s, and every run's
    data set, device and weights checked now, before any training (with ``partial``, the runs
    that cannot train here are left out, as :func:`~.study.check_study_inputs` says; that check
    is kept on the study, so the first :func:`~.study.run_study` that follows does not repeat it)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, force=True)
    path = Path(params_file)
    study = load_study(path if path.is_absolute() else project_root() / path, out_dir=out_dir,
                       data_dir=data_dir, expect=expect)
    study.inputs_checked = (partial, check_study_inputs(study, partial))
    return study


def opening(study: Study) -> str:
    """The Markdown a notebook shows after its set-up: profile, parameter file, runs folder, notes."""
    return (f"**Profile: `{study.profile}`** — parameters from `{shown_path(study.source)}`, "
            f"runs in `{shown_path(study.out_dir)}`.\n\n{study.notes}")
