"""The report: study discovery, caching, failure sections, the title page, the summary table and
the PDF, on a small fixture project whose notebooks train nothing."""
from __future__ import annotations

import base64
import html as html_mod
import io
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from cnnvit import config as config_mod
from cnnvit import report
from cnnvit.report import render
from cnnvit.studies import load_study, project_root

from helpers import open_in_chromium

STUDY_YAML = """study: {name}
profile: smoke
title: "{title}"
base:
  data: {{name: synthetic, synthetic_train: 64, synthetic_test: 32}}
  model: {{name: test_resnet_cifar}}
  train: {{epochs: 1}}
  device: cpu
runs:
  seed_run:
    label: "{title} seed setting"
    role: seed
    reported: 0.88
  strong_run:
    label: "{title} strong recipe"
    role: strong
"""
PARAMS_CELL = 'params_file = "params/smoke/x.yaml"\ndata_dir = None\nout_dir = None'


def _params_cell():
    return new_code_cell(PARAMS_CELL, metadata={"tags": ["parameters"]})


def write_project(root: Path) -> Path:
    """Two studies: 01_alpha succeeds, 02_beta fails in its second code cell."""
    (root / "notebooks").mkdir(parents=True)
    (root / "params" / "smoke").mkdir(parents=True)
    (root / "params" / "paper").mkdir()
    alpha = new_notebook(cells=[
        new_markdown_cell("# Alpha study\n\nQuestion: does alpha work?"),
        _params_cell(),
        new_code_cell('import sys\nprint("alpha log line", file=sys.stderr)\n'
                      'from IPython.display import Markdown, display\n'
                      'display(Markdown("alpha result **42**"))'),
        new_markdown_cell("## Results\n\nThe results."),
    ])
    beta = new_notebook(cells=[
        new_markdown_cell("# Beta study\n\nIntroduction of beta."),
        _params_cell(),
        new_code_cell('print("beta starts")'),
        new_code_cell('raise FileNotFoundError("beta data not found at /nowhere/beta")'),
        new_markdown_cell("## Results\n\nbeta results heading"),
        new_code_cell('print("never printed")'),
    ])
    for name, nb, title in (("01_alpha", alpha, "Alpha title"), ("02_beta", beta, "Beta title")):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, root / "notebooks" / f"{name}.ipynb")
        (root / "params" / "smoke" / f"{name}.yaml").write_text(STUDY_YAML.format(name=name, title=title))
    return root


def complete_run(study_file: Path, out_dir: Path, run: str, acc: float) -> None:
    """Make a run look finished, as train() leaves it: its config and metrics."""
    spec = load_study(study_file, out_dir=out_dir).runs[run]
    run_dir = out_dir / "runs" / run
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config_mod.dump(spec.config))
    (run_dir / "metrics.json").write_text(json.dumps(  # the keys every metrics.json holds
        {"run": run, "model": spec.config.model.name, "parameters": 1000, "epochs": 7, "steps": 70,
         "test_accuracy": acc, "test_top5": None, "train_time_s": 120.0, "wall_time_s": 125.0,
         "train_images_per_s": 100.0, "device": "cpu (test)", "torch": "2 (test)",
         "dataset": {"name": "synthetic", "source": "generated", "n_train": 64, "n_test": 32},
         "finished": "2026-01-01T10:00:00+0000", "test": {"accuracy": acc}}))


@pytest.fixture
def project(tmp_path):
    return write_project(tmp_path / "proj")


# ---------------------------------------------------------------------------------- discovery

def test_discover_picks_studies_by_number_or_name(project):
    assert [e.name for e in report.discover_studies(project, "smoke")] == ["01_alpha", "02_beta"]
    assert [e.name for e in report.discover_studies(project, "smoke", ["2"])] == ["02_beta"]
    assert [e.name for e in report.discover_studies(project, "smoke", ["01_alpha", "01"])] == ["01_alpha"]
    entry = report.discover_studies(project, "smoke", ["01"])[0]
    assert entry.params_rel == "params/smoke/01_alpha.yaml" and entry.params.exists()


@pytest.mark.parametrize("profile, only, message", [
    ("nope", None, "unknown profile 'nope'"),
    ("smoke", ["07"], "no study '07'; studies: 01_alpha, 02_beta"),
    ("paper", None, "study 01_alpha has no parameter file params/paper/01_alpha.yaml"),
])
def test_discover_rejects_unknown_input(project, profile, only, message):
    with pytest.raises(report.ReportError, match=re.escape(message)):
        report.discover_studies(project, profile, only)


def test_fingerprint_follows_notebook_params_library_and_parameters(project):
    entry = report.discover_studies(project, "smoke", ["01"])[0]
    params = {"params_file": entry.params_rel, "data_dir": None}
    base = report.fingerprint(project, entry, params)
    assert report.fingerprint(project, entry, dict(params)) == base
    assert report.fingerprint(project, entry, {**params, "data_dir": "/data"}) != base
    lib = project / "lib" / "cnnvit"
    lib.mkdir(parents=True)
    (lib / "train.py").write_text("x = 1\n")
    with_lib = report.fingerprint(project, entry, params)
    assert with_lib != base
    (lib / "train.py").write_text("x = 2\n")
    assert report.fingerprint(project, entry, params) != with_lib
    entry.params.write_text(entry.params.read_text() + "# touched\n")
    assert report.fingerprint(project, entry, params) not in (base, with_lib)


def test_fingerprint_ignores_the_reports_own_modules_only(project):
    """The report's package, the CLI (and the old render.py location) build the document
    around the notebooks; every other library module, in a sub-package too, can change what a
    notebook shows."""
    entry = report.discover_studies(project, "smoke", ["01"])[0]
    params = {"params_file": entry.params_rel}
    lib = project / "lib" / "cnnvit"
    for rel in ("report/__init__.py", "report/build.py", "report/render.py", "render.py", "__main__.py",
                "studies/study.py", "studies/render.py", "studies/report/x.py", "train.py"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        (lib / rel).write_text("x = 1\n")
    base = report.fingerprint(project, entry, params)
    for rel in ("report/__init__.py", "report/build.py", "report/render.py", "render.py", "__main__.py"):
        (lib / rel).write_text("x = 2\n")
        assert report.fingerprint(project, entry, params) == base, f"{rel} is the report's own"
    for rel in ("studies/study.py", "studies/render.py", "studies/report/x.py", "train.py"):
        before = report.fingerprint(project, entry, params)
        (lib / rel).write_text("x = 2\n")
        assert report.fingerprint(project, entry, params) != before, f"{rel} can change a notebook's output"
    assert [f.relative_to(lib).as_posix() for f in report.library_files(project)] == [
        "studies/render.py", "studies/report/x.py", "studies/study.py", "train.py"]


def test_the_real_fingerprint_covers_the_study_code_and_not_the_report():
    files = {f.relative_to(project_root() / "lib" / "cnnvit").as_posix() for f in report.library_files(project_root())}
    assert {"studies/study.py", "studies/cifar10_vit_vs_resnet.py", "studies/plots.py", "config.py"} <= files
    assert not {f for f in files if f.startswith("report/")} and "__main__.py" not in files


# ------------------------------------------------------------------------ sections and assembly

def _png() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (900, 300), (40, 90, 160)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def executed_notebook(path: Path, fail: bool) -> Path:
    """An executed notebook as papermill leaves it, with a figure, a log line and maybe an error."""
    figure = new_code_cell("plot()", execution_count=2, outputs=[
        new_output("stream", name="stderr", text="12:00 cnnvit.train: epoch 1 log line\n"),
        new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})])
    styled = pd.DataFrame({"f1": [0.25, 0.75]}).style.background_gradient(cmap="Blues").to_html()
    table = new_code_cell("table", execution_count=3, outputs=[
        new_output("execute_result", data={"text/html": styled, "text/plain": "<Styler>"}, execution_count=3)])
    cells = [new_markdown_cell("# Gamma study\n\nQuestion: gamma?"),
             new_code_cell(PARAMS_CELL, execution_count=1, metadata={"tags": ["parameters"]}),
             new_markdown_cell("## Results"), figure, table]
    if fail:
        cells.insert(0, new_markdown_cell('<span style="color:red">An Exception was encountered</span>',
                                          metadata={"tags": [render.PAPERMILL_ERROR_TAG]}))
        cells.append(new_code_cell("load_data('/nowhere')", execution_count=3, outputs=[
            new_output("error", ename="DatasetError", evalue="CIFAR-10 not found under /nowhere",
                       traceback=["\x1b[0;31mDatasetError\x1b[0m: CIFAR-10 not found under /nowhere"])]))
        cells += [new_markdown_cell("## Conclusions after the failure"), new_code_cell("conclude()")]
    else:
        cells.append(new_markdown_cell("## Conclusions"))
    nbformat.write(new_notebook(cells=cells), path)
    return path


def test_study_section_hides_code_and_logs_and_keeps_figures(tmp_path):
    nb = executed_notebook(tmp_path / "03_gamma.ipynb", fail=False)
    outcome = render.StudyOutcome("03_gamma", "Gamma title", "ok", wall_s=65, started="2026-01-01 10:00",
                                  params_file="params/smoke/03_gamma.yaml", notebook=nb,
                                  notebook_html="03_gamma.html")
    section, title, subs = render.study_section(outcome, "smoke")
    assert title == "Gamma study"
    assert [t for _, t in subs] == ["Results", "Conclusions"]
    assert all(i.startswith("study-03_gamma--") for i, _ in subs)
    assert "data:image/png;base64," in section
    assert "plot()" not in section and "params_file" not in section, "code is hidden"
    assert "epoch 1 log line" not in section, "logs and progress bars stay in the notebook page"
    assert 'href="03_gamma.html"' in section and "1m 05s" in section
    assert '<span class="status status-ok">ok</span>' in section
    assert "FAILED" not in section and "This study failed" not in section, "a study that ran is not flagged"
    selectors = re.findall(r"#(T_[A-Za-z0-9_]+)", section)
    assert selectors and all(f'id="{s}"' in section for s in selectors), \
        "a styled table keeps the ids its CSS refers to (its colours)"


def test_failed_study_section_shows_error_and_notebook_up_to_the_failing_cell(tmp_path):
    nb = executed_notebook(tmp_path / "04_delta.ipynb", fail=True)
    outcome = render.StudyOutcome("04_delta", "Delta title", "failed", notebook=nb,
                                  error="DatasetError: CIFAR-10 not found under /nowhere")
    section, _, subs = render.study_section(outcome, "paper")
    assert '<span class="status status-failed">FAILED</span>' in section and "This study failed" in section
    assert "status-ok" not in section
    assert "DatasetError: CIFAR-10 not found under /nowhere" in section
    assert "load_data(&#x27;/nowhere&#x27;)" in section or "load_data('/nowhere')" in section, \
        "the failing cell's code is shown"
    assert "Question: gamma?" in section and "data:image/png" in section, "the notebook up to the failure"
    assert "Conclusions after the failure" not in section and "conclude()" not in section
    assert "An Exception was encountered" not in section, "papermill's own banner is replaced"
    assert "\x1b[" not in section and "[0;31m" not in section
    assert [t for _, t in subs] == ["Results"]


def test_section_escapes_once_and_puts_the_title_first(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("# ViT & ResNet <b>study</b>\n\n## Results & more")])
    nbformat.write(nb, tmp_path / "06_amp.ipynb")
    outcome = render.StudyOutcome("06_amp", "T", "failed", error="Error: <script>x</script>",
                                  notebook=tmp_path / "06_amp.ipynb")
    section, title, subs = render.study_section(outcome, "smoke")
    assert title == "ViT & ResNet study" and [t for _, t in subs] == ["Results & more"]
    assert "<script>" not in section and "&lt;script&gt;" in section
    assert section.index("</h1>") < section.index("study-meta") < section.index("This study failed")
    page = render.assemble_html({"Profile": "smoke"}, [(outcome, section, title, subs)], pd.DataFrame())
    assert "ViT &amp; ResNet study</a>" in page and "&amp;amp;" not in page


def test_unreadable_notebook_gets_a_section_saying_so(tmp_path):
    broken = tmp_path / "07_cut.ipynb"
    broken.write_text('{"cells": [')  # as a killed build may leave it
    outcome = render.StudyOutcome("07_cut", "Cut title", "ok", notebook=broken)
    section, title, _ = render.study_section(outcome, "smoke")
    assert title == "Cut title" and "could not be shown" in section and str(broken) in section


def test_failure_without_a_notebook_shows_the_traceback(tmp_path):
    outcome = render.StudyOutcome("05_eps", "Epsilon title", "failed", error="NoSuchKernel: python9",
                                  traceback="Traceback (most recent call last):\n  ...\nNoSuchKernel: python9")
    section, title, subs = render.study_section(outcome, "smoke")
    assert title == "Epsilon title" and "<h1>Epsilon title</h1>" in section
    assert "Traceback (most recent call last)" in section and subs == []


def test_title_page_facts(project, monkeypatch):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q",
                    "--allow-empty", "-m", "x"], cwd=project, check=True)
    outcomes = [render.StudyOutcome("01_alpha", "A", "ok", wall_s=100, cached=True),
                render.StudyOutcome("02_beta", "B", "failed", wall_s=20)]
    (project / "outputs").mkdir()
    (project / "outputs" / "result.txt").write_text("results are not code")
    facts = render.title_facts(render.git_state(project), "smoke", outcomes, elapsed_s=30)
    for key in ("Profile", "Date", "Git commit", "CPU", "Memory", "GPU", "Libraries", "Total time", "Studies"):
        assert facts.get(key), key
    assert facts["Profile"] == "smoke"
    assert re.fullmatch(r"[0-9a-f]{12} \(clean\)", facts["Git commit"]), \
        "untracked files (a user's scratch notebook) do not change what the code computes"
    assert "torch 2." in facts["Libraries"] and "weasyprint" in facts["Libraries"]
    assert facts["Total time"].startswith("2m 00s of notebook execution (1 of 2 studies executed now")
    assert facts["Studies"] == "1 of 2 succeeded; failed: 02_beta"
    subprocess.run(["git", "add", "notebooks", "params"], cwd=project, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "y"],
                   cwd=project, check=True)
    assert render.git_state(project)[1] is False, "untracked outputs/ do not make it dirty"
    (project / "notebooks" / "scratch.ipynb").write_text("{}")
    assert render.git_state(project)[1] is False, "an untracked file is not a change"
    (project / "notebooks" / "01_alpha.ipynb").write_text("{}")
    assert render.git_state(project)[1] is True
    facts = render.title_facts(render.git_state(project), "smoke", outcomes, elapsed_s=30)
    assert facts["Git commit"].endswith("(dirty: uncommitted changes to tracked files)")
    outside = project.parent / "not_git"
    outside.mkdir()
    assert render.git_state(outside) == ("unknown", None)


def test_title_page_says_how_the_studies_ran_and_names_those_left_out() -> None:
    def facts(cached, left_out=()):
        outcomes = [render.StudyOutcome(f"0{i}_s", f"S{i}", "ok", wall_s=10, cached=c) for i, c in enumerate(cached)]
        return render.title_facts(("abc", False), "smoke", outcomes, elapsed_s=5, left_out=left_out)

    assert "(all 2 studies executed now)" in facts([False, False])["Total time"]
    assert "others reused" not in facts([False, False])["Total time"]
    assert "none executed now" in facts([True, True])["Total time"]
    assert "1 of 2 studies executed now, the others reused unchanged" in facts([False, True])["Total time"]
    assert facts([False])["Studies"] == "1 of 1 succeeded"
    assert facts([False], ["Study 2 — CNN ablations"])["Studies"].endswith(
        "not in this build (chosen with STUDIES=): Study 2 — CNN ablations")


def test_a_build_over_some_studies_names_the_others(project):
    chosen = report.discover_studies(project, "smoke", ["01"])
    left = report.left_out_studies(project, "smoke", chosen)
    everything = report.discover_studies(project, "smoke")
    assert len(left) == len(everything) - 1 and left, left
    assert report.left_out_studies(project, "smoke", everything) == []


def test_summary_table_puts_each_run_beside_the_seed(project):
    entries = report.discover_studies(project, "smoke")
    out = project / "outputs" / "smoke"
    complete_run(entries[0].params, out / "01_alpha", "seed_run", 0.9125)
    outcomes = [render.StudyOutcome("01_alpha", "Alpha title", "ok"),
                render.StudyOutcome("02_beta", "Beta title", "failed")]
    # the seed's setting is the paper profile's run of the same name: here the same experiment
    for name, title in (("01_alpha", "Alpha title"), ("02_beta", "Beta title")):
        (project / "params" / "paper" / f"{name}.yaml").write_text(
            STUDY_YAML.format(name=name, title=title).replace("profile: smoke", "profile: paper"))
    table = report.summary_frame([report.plan_study(project, e, "smoke", out) for e in entries], outcomes, "smoke")
    assert list(table["run"]) == ["Alpha title seed setting", "Alpha title strong recipe",
                                  "Beta title seed setting", "Beta title strong recipe"]
    seed = table.iloc[0]
    assert seed["test accuracy"] == 0.9125 and seed["seed reported"] == 0.88 and seed["epochs"] == 7
    assert seed["vs seed, same metric (points)"] == pytest.approx(0.0325) and seed["profile"] == "smoke"
    assert seed["compared on"] == "last epoch (the seed's metric)"
    assert pd.isna(table.iloc[1]["test accuracy"]), "a run not completed shows no number"
    assert table.iloc[2]["device"] == "study failed"
    # each run in its own study's group, formatted: a substring check would pass with the rows
    # under the wrong heading or FAILED on the wrong study
    assert summary_groups(render.summary_html(table, outcomes)) == [
        ("Study 1: Alpha title", [
            ["Alpha title seed setting", "seed", "test_resnet_cifar", "7", "91.2%", "88.0%", "+3.2",
             "last epoch (the seed's metric)", "2m 05s", "cpu (test)"],
            ["Alpha title strong recipe", "strong", "test_resnet_cifar", "", "", "", "", "", "", ""]]),
        ("Study 2: Beta title FAILED", [
            ["Beta title seed setting", "seed", "test_resnet_cifar", "", "", "88.0%", "",
             "last epoch (the seed's metric)", "", "study failed"],
            ["Beta title strong recipe", "strong", "test_resnet_cifar", "", "", "", "", "", "",
             "study failed"]]),
    ]


@pytest.mark.parametrize("paper_change, why", [
    (None, "no run of this name in the seed's setting (the paper profile)"),
    ("model: {name: test_resnet_bottleneck}", "model test_resnet_cifar, the seed setting's test_resnet_bottleneck"),
    ("train: {epochs: 30}", "epochs 1, the seed setting's 30"),
    ("data: {name: synthetic, synthetic_train: 64, synthetic_test: 32, train_subset: 32}",
     "training images all, the seed setting's 32"),
])
def test_summary_sets_no_seed_figure_against_another_experiment(project, paper_change, why):
    """A run on another model, scale or data set than the seed's (the paper profile's run of that
    name) shows the seed's figure but no difference, and says why."""
    if paper_change:
        key = paper_change.split(":")[0]
        paper = "\n".join(f"  {paper_change}" if line.startswith(f"  {key}:") else line
                          for line in STUDY_YAML.format(name="01_alpha", title="A").splitlines())
        (project / "params" / "paper" / "01_alpha.yaml").write_text(paper.replace("profile: smoke", "profile: paper"))
    entries = report.discover_studies(project, "smoke", ["01"])
    out = project / "outputs" / "smoke"
    complete_run(entries[0].params, out / "01_alpha", "seed_run", 0.9125)
    table = report.summary_frame([report.plan_study(project, entries[0], "smoke", out)],
                                 [render.StudyOutcome("01_alpha", "A", "ok")], "smoke")
    seed = table.iloc[0]
    assert seed["seed reported"] == 0.88 and seed["test accuracy"] == 0.9125
    assert seed["vs seed, same metric (points)"] is None or pd.isna(seed["vs seed, same metric (points)"])
    assert seed["compared on"] == f"not comparable: {why}"


def test_summary_compares_study_3_on_the_best_epoch(tmp_path):
    """Study 3's paper reports the best accuracy during training: the summary sets its figure
    against the run's best epoch, not its last."""
    from cnnvit.studies.registry import seed_metric
    name, metric = seed_metric("03_tiny_imagenet_transformers")
    assert name == "best epoch"

    class FakeRun:
        epochs = pd.DataFrame({"epoch": [1, 2, 3], "test_accuracy": [0.5, 0.875, 0.75]})
        metrics = SimpleNamespace(test_accuracy=0.75)  # (the last epoch's, read where none was evaluated)
    assert metric(FakeRun()) == 0.875
    assert seed_metric("01_cifar10_vit_vs_resnet") == ("last epoch", None)


def _cells(row: str) -> list[str]:
    return [html_mod.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd]\b[^>]*>(.*?)</t[hd]>", row, flags=re.S)]


def summary_groups(page: str) -> list[tuple[str, list[list[str]]]]:
    """The summary table as (study heading, [cells of each row under it]), in page order."""
    table = re.search(r'<table class="summary">(.*?)</table>', page, flags=re.S).group(1)
    groups: list[tuple[str, list[list[str]]]] = []
    rows = re.findall(r'<tr( class="group")?>(.*?)</tr>', table, flags=re.S)
    assert _cells(rows[0][1]) in (list(render.SUMMARY_COLUMNS), [c for c in render.SUMMARY_COLUMNS if c != "device"]), \
        "the column header comes first"
    for group, row in rows[1:]:
        if group:
            groups.append((" ".join(_cells(row)), []))
        else:
            assert groups, "a run row before any study heading"
            groups[-1][1].append(_cells(row))
    return groups


def test_summary_rows_sit_under_their_own_study_in_study_order() -> None:
    """Rows come in any order; each lands under its study's heading, the headings in the
    studies' order, a study without runs says so."""
    rows = [{"study": "02_beta", "run": "b1", "test accuracy": 0.5},
            {"study": "01_alpha", "run": "a1", "test accuracy": 0.25, "seed reported": 0.5,
             "vs seed, same metric (points)": -0.25},
            {"study": "01_alpha", "run": "a2", "test accuracy": 0.125}]
    outcomes = [render.StudyOutcome("01_alpha", "Alpha", "ok"), render.StudyOutcome("02_beta", "Beta", "failed"),
                render.StudyOutcome("03_gamma", "Gamma", "ok")]
    groups = summary_groups(render.summary_html(pd.DataFrame(rows), outcomes))
    assert [(heading, [r[0] for r in runs]) for heading, runs in groups] == [
        ("Study 1: Alpha", ["a1", "a2"]), ("Study 2: Beta FAILED", ["b1"]), ("Study 3: Gamma", ["no runs"])]
    assert groups[0][1][0][4:7] == ["25.0%", "50.0%", "-25.0"], "accuracy, the seed's, signed points"
    assert summary_groups(render.summary_html(pd.DataFrame(), outcomes[:1])) == [("Study 1: Alpha", [["no runs"]])]


def _title_page(page: str) -> str:
    return re.search(r'<section class="title-page">(.*?)</section>', page, flags=re.S).group(1)


@pytest.mark.parametrize("profile", ["smoke", "dev", "paper"])
def test_title_page_caveat_only_outside_the_paper_profile(profile: str) -> None:
    """Numbers of stand-in models must not read as results: every profile but paper says so
    on the title page, before anything else; paper says nothing of the kind."""
    page = render.assemble_html({"Profile": profile, "Date": "2026-11-23"}, [], pd.DataFrame())
    caveats = re.findall(r'<p class="caveat">(.*?)</p>', page, flags=re.S)
    if profile == "paper":
        assert caveats == [] and "stand-in" not in page and "check the pipeline" not in page
        return
    assert len(caveats) == 1 and caveats[0] in _title_page(page), "one caveat, on the title page"
    assert _title_page(page).index('class="caveat"') < _title_page(page).index('class="facts"')
    text = html_mod.unescape(re.sub(r"<[^>]+>", "", caveats[0]))
    assert text.startswith(f"Profile {profile}: small stand-in models on generated data, to check the pipeline.")
    assert "These numbers are not results about the data sets" in text
    assert text.endswith("the paper profile runs the real studies.")


def test_title_page_escapes_the_profile() -> None:
    page = render.assemble_html({"Profile": "<b>x</b>"}, [], pd.DataFrame())
    assert "<b>x</b>" not in page and "Profile <b>&lt;b&gt;x&lt;/b&gt;</b>:" in _title_page(page)


def test_contents_flag_only_the_failed_study() -> None:
    ok = render.StudyOutcome("01_alpha", "Alpha", "ok")
    bad = render.StudyOutcome("02_beta", "Beta", "failed", error="E: x")
    sections = [(o, *render.study_section(o, "smoke")) for o in (ok, bad)]
    toc = re.search(r'<nav class="toc">(.*?)</nav>', render.assemble_html({"Profile": "smoke"}, sections,
                                                                          pd.DataFrame()), flags=re.S).group(1)
    entries = re.findall(r'<li><a class="toc-link" href="#([^"]+)">([^<]*)</a>(.*?)</li>', toc, flags=re.S)
    assert [(anchor, title, "FAILED" in rest) for anchor, title, rest in entries] == [
        ("study-01_alpha", "Alpha", False), ("study-02_beta", "Beta", True),
        ("summary", "Summary across studies", False)]


def test_assembled_page_is_self_contained_and_prints_to_pdf(tmp_path):
    from pypdf import PdfReader

    ok = render.StudyOutcome("03_gamma", "Gamma title", "ok",
                             notebook=executed_notebook(tmp_path / "03_gamma.ipynb", fail=False))
    bad = render.StudyOutcome("04_delta", "Delta title", "failed", error="DatasetError: not found",
                              notebook=executed_notebook(tmp_path / "04_delta.ipynb", fail=True))
    sections = [(o, *render.study_section(o, "smoke")) for o in (ok, bad)]

    page = render.assemble_html({"Profile": "smoke", "Date": "2026-11-23"}, sections, pd.DataFrame(
        [{"study": "03_gamma", "run": "Gamma run", "test accuracy": 0.5, "seed reported": 0.88}]))
    assert len(re.findall(r'\bid="([^"]+)"', page)) == len(set(re.findall(r'\bid="([^"]+)"', page))), \
        "ids are unique across studies"
    for target in re.findall(r'href="#([^"]+)"', page):
        assert f'id="{target}"' in page, f"contents link to a missing #{target}"
    assert "<script" not in page and "<link" not in page
    assert not [s for s in re.findall(r'src="([^"]+)"', page) if not s.startswith("data:")], \
        "every image is inline"
    html_path = tmp_path / "report.html"
    html_path.write_text(page, encoding="utf-8")
    problems = render.write_pdf(html_path, tmp_path / "report.pdf")
    assert problems == []
    text = "\n".join(p.extract_text() for p in PdfReader(tmp_path / "report.pdf").pages)
    for needle in ("Gamma study", "This study failed", "Summary across studies",
                   "Gamma run", "50.0%", "88.0%", "Contents"):
        assert needle in text, needle


def test_pdf_check_finds_content_wider_than_the_page(tmp_path):
    wide = tmp_path / "wide.html"
    wide.write_text(f"<table><tr><td>{'x' * 60}</td><td>{'y' * 60}</td></tr></table>")
    problems = render.write_pdf(wide, tmp_path / "wide.pdf")
    assert problems and "wider than the page" in problems[0]
    assert (tmp_path / "wide.pdf").read_bytes().startswith(b"%PDF")


# --------------------------------------------------------------------------- the whole build

def test_build_runs_studies_reuses_unchanged_ones_and_keeps_failures(project, caplog):
    caplog.set_level("INFO")
    out = project / "outputs" / "smoke"
    report_path, outcomes = report.build_report(project, "smoke", out_dir=out, pdf=False)
    assert [(o.name, o.status, o.cached) for o in outcomes] == [("01_alpha", "ok", False),
                                                                ("02_beta", "failed", False)]
    assert "FileNotFoundError: beta data not found at /nowhere/beta" == outcomes[1].error
    page = report_path.read_text()
    assert "alpha result <strong>42</strong>" in page
    assert re.findall(r'<p class="caveat">Profile <b>(\w+)</b>: small stand-in', page) == ["smoke"], "smoke says so"
    assert [h for h, _ in summary_groups(page)] == ["Study 1: Alpha title", "Study 2: Beta title FAILED"]
    assert "beta starts" in page and "never printed" not in page and "beta results heading" not in page
    assert (out / "01_alpha.html").exists() and "alpha log line" in (out / "01_alpha.html").read_text(), \
        "the notebook page with code keeps the log"
    assert "[1/2] 01_alpha (profile smoke): executing" in caplog.text
    record = json.loads((out / "01_alpha.record.json").read_text())
    assert record["status"] == "ok" and len(record["fingerprint"]) == 64

    # nothing changed: alpha is reused, the failed beta is tried again
    caplog.clear()
    _, again = report.build_report(project, "smoke", out_dir=out, pdf=False)
    assert [(o.status, o.cached) for o in again] == [("ok", True), ("failed", False)]
    assert "01_alpha: unchanged since" in caplog.text
    assert json.loads((out / "01_alpha.record.json").read_text()) == record

    # a changed parameter file, or FORCE, executes it again
    params = project / "params" / "smoke" / "01_alpha.yaml"
    params.write_text(params.read_text() + "notes: changed\n")
    _, changed = report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False)
    assert [(o.name, o.cached) for o in changed] == [("01_alpha", False)]
    _, forced = report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False, force=True)
    assert not forced[0].cached


def test_reuse_needs_the_same_runs_and_a_finished_execution(project, monkeypatch):
    out = project / "outputs" / "smoke"
    params = project / "params" / "smoke" / "01_alpha.yaml"
    complete_run(params, out / "01_alpha", "seed_run", 0.5)
    report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False)
    assert report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False)[1][0].cached

    # the run was trained again since the notebook showed it: its numbers may differ
    metrics = out / "01_alpha" / "runs" / "seed_run" / "metrics.json"
    metrics.write_text(metrics.read_text().replace("0.5", "0.75"))
    assert not report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False)[1][0].cached
    # ... or deleted
    shutil.rmtree(out / "01_alpha" / "runs" / "seed_run")
    assert not report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False)[1][0].cached
    good = (out / "01_alpha.ipynb").read_text()

    # an execution interrupted with Ctrl-C leaves nothing that a later build would reuse
    import papermill

    def interrupted(input_path, output_path, **kwargs):
        Path(output_path).write_text(Path(input_path).read_text())  # papermill's partial write
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False, force=True)
    monkeypatch.undo()
    assert (out / "01_alpha.ipynb").read_text() == good, "the last finished notebook is kept"
    assert not (out / "01_alpha.record.json").exists()
    assert not report.build_report(project, "smoke", only=["01"], out_dir=out, pdf=False)[1][0].cached


def test_a_build_reads_each_parameter_file_once_and_the_runs_after_execution(project, monkeypatch):
    """Each study's parameter file, and the seed's setting (the paper profile's file), is loaded
    once per build; what an execution changes, the study's runs, is read after it: a run the
    notebook completes is in the summary, and in the record that lets the next build reuse it."""
    from collections import Counter

    import papermill
    from cnnvit.report import build

    out = project / "outputs" / "smoke"
    alpha = project / "params" / "smoke" / "01_alpha.yaml"
    (project / "params" / "paper" / "01_alpha.yaml").write_text(alpha.read_text().replace("profile: smoke",
                                                                                          "profile: paper"))
    complete_run(alpha, out / "01_alpha", "seed_run", 0.5)
    loads: Counter = Counter()
    load_study_as_built = build.load_study

    def counted(path, *args, **kwargs):
        loads[Path(path).relative_to(project).as_posix()] += 1
        return load_study_as_built(path, *args, **kwargs)

    def executed(input_path, output_path, parameters, **kwargs):  # alpha's notebook trains strong_run
        Path(output_path).write_text(Path(input_path).read_text())
        if Path(input_path).stem == "01_alpha":
            complete_run(project / parameters["params_file"], Path(parameters["out_dir"]), "strong_run", 0.75)

    monkeypatch.setattr(build, "load_study", counted)
    monkeypatch.setattr(papermill, "execute_notebook", executed)
    once = {"params/smoke/01_alpha.yaml": 1, "params/smoke/02_beta.yaml": 1, "params/paper/01_alpha.yaml": 1}
    page, outcomes = report.build_report(project, "smoke", out_dir=out, pdf=False)
    assert loads == once
    assert [(o.name, o.status, o.cached) for o in outcomes] == [("01_alpha", "ok", False), ("02_beta", "ok", False)]
    heading, rows = summary_groups(page.read_text())[0]
    assert heading == "Study 1: Alpha title" and [(r[0], r[4]) for r in rows] == [
        ("Alpha title seed setting", "50.0%"), ("Alpha title strong recipe", "75.0%")]
    assert set(json.loads((out / "01_alpha.record.json").read_text())["runs"]) == {"seed_run", "strong_run"}

    loads.clear()
    _, again = report.build_report(project, "smoke", out_dir=out, pdf=False)
    assert [o.cached for o in again] == [True, True] and loads == once


def test_cli_report_names_the_missing_dataset_and_exits_nonzero(tmp_path, python_exe, cli_env):
    """The acceptance case: the paper profile pointed at a data folder that does not exist."""
    out = tmp_path / "out"
    t0 = time.time()
    bad = subprocess.run([python_exe, "-m", "cnnvit", "report", "--studies", "09", "--out", str(out)],
                         env=cli_env, capture_output=True, text=True)
    assert bad.returncode == 2 and "no study '09'" in bad.stderr and time.time() - t0 < 60
    assert not out.exists(), "nothing is written for a bad request"
    res = subprocess.run([python_exe, "-m", "cnnvit", "report", "--profile", "paper", "--studies", "01",
                          "--data-dir", str(tmp_path / "nonexistent"), "--out", str(out), "--no-pdf"],
                         env=cli_env, capture_output=True, text=True)
    assert res.returncode == 1, res.stderr[-3000:]
    assert "1 of 1 studies failed: 01_cifar10_vit_vs_resnet" in res.stderr
    page = (out / "report.html").read_text()
    assert f"CIFAR-10 not found under {tmp_path / 'nonexistent' / 'cifar10'}: looked for" in page
    assert 'class="caveat"' not in page, "the paper profile's report carries no smoke caveat"
    title = load_study(project_root() / "params" / "paper" / "01_cifar10_vit_vs_resnet.yaml").title
    [(heading, rows)] = summary_groups(page)
    assert heading == f"Study 1: {title} FAILED"
    assert re.search(r'<section class="study" id="study-01_cifar10_vit_vs_resnet">.*?<h1[^>]*>Study 1.*?'
                     r'status-failed">FAILED<', page, flags=re.S), "the notebook's own title, then FAILED"
    assert len(rows) == 5 and all(r[4] == "" and r[-1] == "study failed" for r in rows), \
        "no run finished: no number, and why"


# CI (.ci/run) installs Chromium and sets CNNVIT_REQUIRE_CHROMIUM: there the check must run, not skip
@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CNNVIT_REQUIRE_CHROMIUM"),
                    reason="Debian's chromium is not installed")
def test_report_opens_in_headless_chromium_without_console_errors(tmp_path):
    ok = render.StudyOutcome("03_gamma", "Gamma title", "ok",
                             notebook=executed_notebook(tmp_path / "03_gamma.ipynb", fail=False))

    page = tmp_path / "report.html"
    page.write_text(render.assemble_html({"Profile": "smoke"}, [(ok, *render.study_section(ok, "smoke"))],
                                         pd.DataFrame()), encoding="utf-8")
    dom, console = open_in_chromium(page, tmp_path / "chromium")
    assert "Gamma study" in dom and console == []
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefined_function()</script></body></html>")
    assert open_in_chromium(bad, tmp_path / "chromium2")[1], "the check does see a page's errors"


def test_laptop_title_page_says_real_data_at_small_scale() -> None:
    """The laptop profile trains on real data: its caveat says so, and does not call its numbers
    a pipeline check."""
    page = render.assemble_html({"Profile": "laptop", "Date": "2026-11-28"}, [], pd.DataFrame())
    text = html_mod.unescape(re.sub(r"<[^>]+>", "", re.findall(r'<p class="caveat">(.*?)</p>', page, re.S)[0]))
    assert text.startswith("Profile laptop: small models on subsets of the real data sets, trained on a CPU")
    assert "check the pipeline" not in text and "generated" not in text


def test_partial_study_is_rendered_with_its_missing_runs_and_exits_zero(project, monkeypatch, capsys):
    """A study whose runs cannot all train here (its data is missing) but one of which is
    complete on disk: rendered, marked partial on the title page, in its section and in the
    summary, the missing run listed with its projected GPU time; `report` exits 0."""
    params = project / "params" / "smoke" / "01_alpha.yaml"
    params.write_text(params.read_text().replace("{name: synthetic, synthetic_train: 64, synthetic_test: 32}",
                                                 "{name: cifar10, root: /nonexistent/cifar10}"))
    out = project / "outputs" / "smoke"
    complete_run(params, out / "01_alpha", "seed_run", 0.61)
    monkeypatch.setattr("cnnvit.studies.project_root", lambda: project)
    from cnnvit.__main__ import main
    assert main(["report", "--profile", "smoke", "--studies", "01", "--out", str(out), "--no-pdf"]) == 0
    assert "partial: 01_alpha" in capsys.readouterr().err
    page = (out / "report.html").read_text()
    facts = re.search(r"<th>Studies</th><td>(.*?)</td>", page).group(1)
    assert "partial (runs that could not train here left out): 01_alpha" in html_mod.unescape(facts)
    box = html_mod.unescape(re.sub(r"<[^>]+>", "", re.search(r'<div class="partial">(.*?)</div>', page, re.S).group(1)))
    assert "1 runs could not train" in box and "strong_run" in box and "seed_run" not in box
    assert re.search(r"strong_run \(Alpha title strong recipe; test_resnet_cifar\): (under 1 min|\d+ min) on a GPU, "
                     r"from FLOPs", box), box
    assert 'status-partial">PARTIAL' in page
    summary = page[page.index('id="summary"'):]
    assert "61.0%" in summary and "not run here (projected" in summary


@pytest.mark.parametrize("path", sorted((project_root() / "params" / "laptop").glob("*.yaml")), ids=lambda p: p.stem)
def test_laptop_runs_are_never_set_against_the_seeds_figures(tmp_path, path):
    """The laptop profile trains small models on subsets (study 3 on CIFAR-10): none of its runs
    is in a seed's setting, so the summary gives no "vs seed" difference for any of them."""
    from cnnvit.studies.core import seed_setting_difference

    laptop = load_study(path, out_dir=tmp_path / "laptop")
    paper = load_study(path.parent.parent / "paper" / path.name, out_dir=tmp_path / "paper")
    reported = [n for n, spec in laptop.runs.items() if spec.reported is not None]
    assert reported, "the laptop file carries the seed's figures"
    for name in reported:
        spec = laptop.runs[name]
        why = seed_setting_difference(spec, paper.runs.get(spec.replica_of or name))
        assert why, f"{name} would be compared with the seed's figure"
