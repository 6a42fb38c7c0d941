"""The project is self-contained: the studies' sources are cited by name from docs/references.md
(which the report carries as its closing section), and nothing points to a folder outside the
repository."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from cnnvit.report import render

REPO = Path(__file__).resolve().parents[1]
REFERENCES = REPO / "docs" / "references.md"
STUDIES = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
OUTSIDE = ("../" + "shared", "/work/" + "shared")  # split: this file must not match itself


def tracked_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                               capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the project's own folders
        names = [str(p.relative_to(REPO)) for d in ("lib", "notebooks", "params", "docs", "tests", "outputs/paper")
                 for p in (REPO / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        names += ["README.md", "Makefile"]
    return [REPO / n for n in names if (REPO / n).is_file()]


def test_nothing_refers_to_a_folder_outside_the_repository():
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found += [f"{path.relative_to(REPO)}: {needle}" for needle in OUTSIDE if needle in text]
    assert not found, "paths outside the repository: " + "; ".join(found)


def test_references_describe_every_study():
    text = REFERENCES.read_text(encoding="utf-8")
    headings = re.findall(r"^## Study (\d) — ", text, flags=re.M)
    assert headings == [str(i) for i in range(1, len(STUDIES) + 1)]
    for part in ("**Source.**", "**What it measured.**", "**Setting.**", "**Reported"):
        assert text.count(part) == len(STUDIES), f"each study's entry states its {part.strip('*.')}"
    assert "Vision Transformers in 2022: An Update on Tiny ImageNet" in text and "arXiv:2205.10660" in text


@pytest.mark.parametrize("study", STUDIES)
def test_notebook_and_paper_parameters_cite_the_seed_by_name(study):
    intro = nbformat.read(REPO / "notebooks" / f"{study}.ipynb", as_version=4).cells[0].source
    seed = intro[intro.index("**Seed**"):][:300]  # the citation opens the paragraph
    assert re.search(r'\(.*"[^"]{12,}".*`docs/references.md`\)', seed, flags=re.S), \
        "the seed is cited by its title, pointing to the references"
    params = (REPO / "params" / "paper" / f"{study}.yaml").read_text(encoding="utf-8")
    assert re.search(r"^#.*Seed: .*", params, flags=re.M) and "docs/references.md" in params


def test_report_closes_with_the_references():
    page = render.assemble_html({"Profile": "paper"}, [], pd.DataFrame(),
                                references=render.references_html(REFERENCES))
    assert '<a class="toc-link" href="#references">References</a>' in page
    section = page[page.index('<section class="references" id="references">'):]
    assert "<h1>References</h1>" in section and "Study 3 — " in section
    assert "<h1>References</h1>\n<h1>" not in section  # the document's own title is dropped
    assert render.references_html(REPO / "no-such-file.md") == ""
