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
import yaml

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


# what each ingredient of a parameter file goes back to: an identifier its primary source's
# entry carries (an arXiv id, a DOI or, for unpublished reports, the title)
SOURCES = {
    "mixup": "arXiv:1710.09412", "cutmix": "arXiv:1905.04899", "random_erasing": "arXiv:1708.04896",
    "drop_path": "arXiv:1603.09382", "label_smoothing": "arXiv:1512.00567", "layer_decay": "arXiv:2106.08254",
    "model_ema": "doi:10.1137/0330046", "nesterov": "On\n  the importance of initialization and momentum",
    "randaugment": "arXiv:1909.13719", "autoaugment": "arXiv:1805.09501", "adam": "arXiv:1412.6980",
    "adamw": "arXiv:1711.05101", "cosine": "arXiv:1608.03983", "cifar10": "Learning Multiple Layers of Features",
    "tiny-imagenet": "Tiny ImageNet Visual Recognition Challenge", "celeba": "arXiv:1411.7766",
}
MODEL_SOURCES = {  # by the start of a model's name, most specific first
    "t2t_vit": "arXiv:2101.11986", "deit": "arXiv:2012.12877", "cait": "arXiv:2103.17239",
    "swin": "arXiv:2103.14030", "vit": "arXiv:2010.11929", "resnext": "arXiv:1611.05431",
    "resnet": "arXiv:1512.03385", "vgg": "arXiv:1409.1556", "alexnet": "ImageNet Classification with Deep",
}


def _settings(node, key=None):
    """Every (key, value) of a parameter file, at any depth."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _settings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _settings(v, key)
    else:
        yield key, node


def _primary_sources() -> str:
    text = REFERENCES.read_text(encoding="utf-8")
    return text[text.index("## Primary sources"):text.index("## Data sets")]


@pytest.mark.parametrize("path", sorted((REPO / "params").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_ingredient_a_parameter_file_uses_has_its_primary_source(path):
    used = set()
    for key, value in _settings(yaml.safe_load(path.read_text(encoding="utf-8"))):
        if key in SOURCES and value not in (None, False, 0, 0.0, "none"):
            used.add(key)
        if isinstance(value, str) and value in SOURCES:  # a policy, optimizer, schedule or data set
            used.add(value)
        family = next((m for m in MODEL_SOURCES if str(value).startswith(m)), None)
        if key == "name" and family:
            used.add(family)
    sources = _primary_sources()
    missing = [u for u in sorted(used) if {**SOURCES, **MODEL_SOURCES}[u] not in sources]
    assert used and not missing, f"no primary source listed for {missing}"


def test_the_author_year_citations_of_the_parameter_files_are_in_the_references():
    entries = re.split(r"\n\s*\n|\n\* ", REFERENCES.read_text(encoding="utf-8"))
    cited = {m for p in (REPO / "params").glob("*/*.yaml")
             for m in re.findall(r"([A-Z][A-Za-z-]+)(?: et al\.| & [A-Z][A-Za-z-]+)? ((?:19|20)\d\d)\b",
                                 p.read_text(encoding="utf-8"))}
    assert ("Goyal", "2017") in cited
    missing = [f"{name} {year}" for name, year in sorted(cited)
               if not any(name in e and year in e for e in entries)]
    assert not missing, f"cited in params/ but not in docs/references.md: {missing}"
