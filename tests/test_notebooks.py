"""Each study notebook, executed headless by papermill in the smoke profile, and the rules that
keep notebooks thin."""
from __future__ import annotations

import ast
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest

from cnnvit.records import WeightsOrigin
from cnnvit.studies import study_modules
from helpers import open_in_chromium

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def weights_origin(metrics: dict) -> WeightsOrigin:
    """Where a run's weights came from, from its metrics.json as read."""
    return WeightsOrigin.from_json(metrics["weights"])


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_thin_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one papermill 'parameters' cell"
    intro = nb.cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# "), \
        "a notebook starts with its title and introduction"
    for part in ("**Question.**", "**Seed**", "Reported"):
        assert part in intro.source, f"the introduction states the {part.strip('*.')}"
    headings = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert headings[-1].source.startswith("## Conclusions"), "a notebook ends with its conclusions"
    after = nb.cells[nb.cells.index(headings[-1]) + 1:]
    assert after and all(c.cell_type == "code" for c in after), \
        "conclusions are computed by code from the results, not typed in"
    for src in _code(nb):
        for node in ast.walk(ast.parse(src)):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)), \
                f"{path.name} defines a function or class: move it to lib/cnnvit"
            assert not isinstance(node, (ast.For, ast.While, ast.AsyncFor)), \
                f"{path.name} has a loop: move it to lib/cnnvit"


def _execute_smoke(study: str, tmp_path: Path):
    """Run a study notebook headless with its smoke parameters: (executed notebook path, runs
    folder, the notebook read back)."""
    out_nb, runs_dir = tmp_path / f"{study[:2]}.ipynb", tmp_path / "study"
    papermill.execute_notebook(str(ROOT / "notebooks" / f"{study}.ipynb"), str(out_nb), cwd=str(ROOT),
                               parameters={"params_file": f"params/smoke/{study}.yaml", "out_dir": str(runs_dir)},
                               progress_bar=False)
    return out_nb, runs_dir, nbformat.read(out_nb, as_version=4)


STUDIES = list(study_modules())  # every study the library finds, each with its notebook


@pytest.mark.parametrize("study", STUDIES)
def test_study_smoke_runs_and_reports(study, tmp_path):
    """Every study's notebook runs in the smoke profile: each run of its parameter file complete,
    no error shown, its conclusions the library's, and its report section laid out; then what
    the study itself must show (``STUDY_CHECKS``)."""
    assert (ROOT / "notebooks" / f"{study}.ipynb").is_file(), f"study {study} has no notebook"
    out_nb, runs_dir, nb = _execute_smoke(study, tmp_path)
    from cnnvit.studies import load_study

    spec = load_study(ROOT / "params" / "smoke" / f"{study}.yaml", out_dir=runs_dir)
    for name in spec.runs:
        for f in ("config.yaml", "metrics.json"):
            assert (spec.run_dir(name) / f).exists(), f"{name}/{f} missing"
    _outputs(nb)  # no cell failed
    conclusions = _check_conclusions(nb, study, runs_dir)
    STUDY_CHECKS.get(study, lambda *args: None)(runs_dir, nb, conclusions)
    _check_report_section(out_nb, f"Study {int(study[:2])}" if study[:2].isdigit() else spec.title, tmp_path)


def _study_01(runs_dir: Path, nb, conclusions: str) -> None:
    expected = ["seed_resnet18", "seed_vit_b16", "ablation_vit_b16_no_preprocessing",
                "strong_resnet18", "strong_vit"]
    metrics = {}
    for name in expected:
        run = runs_dir / "runs" / name
        for f in ("config.yaml", "metrics.json", "epochs.csv", "steps.csv", "predictions.npz"):
            assert (run / f).exists(), f"{name}/{f} missing"
        metrics[name] = json.loads((run / "metrics.json").read_text())
    html, markdown, images = _outputs(nb)
    assert len(images) >= 5, "preprocessing grid, loss, accuracy (all runs, the ablation) and confusion figures"
    # the table shows each run's own accuracy and the seed's reported numbers
    for name in expected:
        assert f"{100 * metrics[name]['test_accuracy']:.2f}%" in html
    assert "88%" in html and "65%" in html and "smoke" in html
    # conclusions are computed from the runs, not typed in
    assert f"{100 * metrics['seed_resnet18']['test_accuracy']:.1f}%" in markdown
    assert f"{100 * metrics['seed_vit_b16']['test_accuracy']:.1f}%" in markdown
    r, v = (metrics[n]["test_accuracy"] for n in ("seed_resnet18", "seed_vit_b16"))
    lead = "the two are level" if r == v else f"the {'CNN' if r > v else 'ViT'} leads by {100 * abs(r - v):.1f} points"
    assert f"{lead}, so the seed's gap {'reproduces in direction' if r > v else 'does not reproduce'}" in conclusions


def _study_02(runs_dir: Path, nb, conclusions: str) -> None:
    expected = ["vgg19_bn", "vgg19", "resnet18", "resnet34", "resnet50", "resnet50_noskip",
                "resnext50", "t2t_vit", "strong_resnet50", "resnet18_2proc"]
    metrics = {n: json.loads((runs_dir / "runs" / n / "metrics.json").read_text()) for n in expected}
    html, markdown, images = _outputs(nb)
    assert len(images) >= 4, "augmentation grid, effects, loss and gradient-norm figures"
    for name in expected:
        assert f"{100 * metrics[name]['test_accuracy']:.2f}%" in html
        assert metrics[name]["dataset"]["n_val"] == 240  # 20% of 1,200 held out
    for reported in ("52.79%", "0.50%", "55.09%", "56.03%", "58.97%", "54.03%", "59.29%", "41.63%"):
        assert reported in html, f"seed's {reported} missing from the table"
    rows = {r["run"]: r for r in _cell_table(nb, "table = summary_table(")}
    seed_params = {label: r["seed params (M)"] for label, r in rows.items()}
    assert sorted(v for v in seed_params.values() if v != "—") == ["11.27", "21.13", "21.23", "21.38", "23.38",
                                                                  "23.91"], seed_params
    assert len(images) >= 5, "augmentation grid, effects, CNN vs T2T losses, loss and gradient-norm figures"
    # the 2-process run went through torchrun and says so
    assert metrics["resnet18_2proc"]["distributed"]["world_size"] == 2
    assert "gloo" in html
    # the diagnosis and the conclusions are computed from the runs
    from cnnvit.training.run import load_run
    from cnnvit.studies import load_study, training_diagnosis

    study = load_study(ROOT / "params" / "smoke" / "02_tiny_imagenet_cnn_ablations.yaml", out_dir=runs_dir)
    diagnosis = {row["run"]: row["status"] for row in _cell_table(nb, "show_table(diagnosis_table(")}
    assert diagnosis == {study.runs[n].label: training_diagnosis(load_run(study.run_dir(n), device="cpu"))["status"]
                         for n in expected}
    assert f"{100 * metrics['vgg19_bn']['test_accuracy']:.1f}%" in markdown
    assert f"{100 * metrics['resnext50']['test_accuracy']:.1f}%" in markdown
    vgg19 = diagnosis[study.runs["vgg19"].label]
    assert {"stalled": "it **stalled**", "diverged": "it **diverged**", "learned": "it **did learn** here"}[vgg19] \
        in conclusions


def _study_03(runs_dir: Path, nb, conclusions: str) -> None:
    runs = {p.name: json.loads((p / "metrics.json").read_text()) for p in (runs_dir / "runs").iterdir()}
    aug = [n for n in runs if n.startswith("aug_")]
    assert len(aug) == 10 and {"opt_sgd", "opt_sgd_nesterov", "bs_32", "bs_64", "deit_head_only"} <= runs.keys()
    html, markdown, images = _outputs(nb)
    assert len(images) >= 2, "optimizer and batch-size curves"
    for name in ("swin", "vit_l", "cait", "deit"):
        assert weights_origin(runs[name]).kind == "run" and weights_origin(runs[name]).run == f"pretrain_{name}"
        assert f"{100 * runs[name]['test_accuracy']:.2f}%" in html
        assert runs[name]["gflops_per_image"] > 0 and runs[name]["checkpoint_mb"] > 0
    for reported in ("86.43%", "86.74%", "87.29%", "91.35%"):
        assert reported in html
    # the seeds' own figures beside ours, in the table of each (from the parameter file)
    tables = {"models": _cell_table(nb, "models = this.transformer_table"), "efficiency": _cell_table(nb, "eff = this.efficiency_table"),
              "optimizers": _cell_table(nb, "opts = this.optimizer_table"), "ablation": _cell_table(nb, "ablation = "),
              "batches": _cell_table(nb, "batches = this.batch_size_table")}
    swin = next(r for r in tables["efficiency"] if r["run"].startswith("Swin"))
    assert (swin["paper GMACs / image"], swin["paper params (M)"], swin["paper train img/s"]) == ("103.9", "196", "36.0")
    assert (swin["reproduction checkpoint (MB)"], swin["reproduction min / epoch"]) == ("761", "20.5")
    assert next(r for r in tables["models"] if r["run"].startswith("Swin"))["reproduction acc@5"] == "98.04%"
    assert [r["paper, Swin-L/4 acc@1"] for r in tables["optimizers"]] == ["91.35%", "91.10%", "91.21%"]
    mixup = next(r for r in tables["ablation"] if r["variant"] == "without Mixup")
    assert (mixup["paper, Swin-L/4 acc@1"], mixup["reproduction, Swin-L/4 acc@1"]) == ("91.11%", "91.14%")
    ema = next(r for r in tables["ablation"] if r["variant"].startswith("with model EMA"))
    assert ema["reproduction, Swin-L/4 acc@1"] == "—", "the reproduction did not run it"
    assert [r["reproduction, batch runs acc@1"] for r in tables["batches"]] == ["81.79%", "82.15%", "82.15%"]
    assert runs["deit_head_only"]["trainable_parameters"] < runs["deit"]["trainable_parameters"] / 10
    assert runs["aug_ema"]["model_ema"] == 0.9
    assert "new head on a frozen backbone" in html and "full fine-tuning" in html
    assert f"{100 * runs['deit']['test_accuracy']:.1f}%" in markdown
    # each batch size as its run's config says (smoke's deit: 16 x 4 = 64), with that run's number;
    # the two runs at 64 told apart: the recipe's run, and the other by its label
    batches = ", ".join(f"{b}: {100 * runs[n]['test_accuracy']:.1f}%" for n, b in (
        ("bs_32", "32"), ("bs_64", "64 (effective batch 64)"), ("deit", "64 (the recipe's run)")))
    assert f"- **Batch size** (DeiT, effective): {batches}." in conclusions.splitlines()


def _study_04(runs_dir: Path, nb, conclusions: str) -> None:
    expected = ["pretrain", "seed_linear_probe", "partial_finetune", "full_finetune", "scratch"]
    metrics = {n: json.loads((runs_dir / "runs" / n / "metrics.json").read_text()) for n in expected}
    html, markdown, images = _outputs(nb)
    assert len(images) >= 4, "augmentation grid, accuracy curves, losses per epoch, confusion matrices"
    # the seed setting really trained its head only, on weights this project pretrained, and says so
    seed = metrics["seed_linear_probe"]
    assert seed["trainable_parameters"] < seed["parameters"] / 10
    assert weights_origin(seed).kind == "run" and weights_origin(seed).run == "pretrain"
    assert weights_origin(seed).label.startswith("pretrained on synthetic by this project")
    assert "pretrained on synthetic by this project (test_vit, run pretrain)" in html
    assert weights_origin(metrics["scratch"]).kind == "scratch"
    for name in expected:
        assert f"{100 * metrics[name]['test_accuracy']:.2f}%" in html
    for figure in ("85.23%", "0.8512", "0.8507", "0.8510"):
        assert figure in html, f"seed's {figure} missing"
    assert f"{100 * seed['test_accuracy']:.1f}%" in markdown
    assert "Its weights: pretrained on synthetic by this project (test_vit, run pretrain)." in conclusions


def _study_05(runs_dir: Path, nb, conclusions: str) -> None:
    runs = {p.name: json.loads((p / "metrics.json").read_text()) for p in (runs_dir / "runs").iterdir()}
    assert len(runs) == 16
    # the smoke data were generated in CelebA's own format, under the study's folder
    generated = runs_dir / "data" / "celeba"
    assert (generated / "list_attr_celeba.txt").read_text().splitlines()[0] == "500"
    html, markdown, images = _outputs(nb)
    assert len(images) >= 8, "grid, ROC, two confusion figures, validation curves (ViT, CNNs), size, loss"
    for name, m in runs.items():
        assert f"{100 * m['test_accuracy']:.2f}%" in html, f"{name} missing from the tables"
        assert f"{100 * m['majority_baseline']:.2f}%" in html
        assert (runs_dir / "runs" / name / "split.csv").exists()
    binary, multi = runs["seed_binary_resnet152"]["test"], runs["seed_multilabel_resnet152"]["test"]
    assert f"{binary['auroc']:.4f}" in html and f"{multi['mean_average_precision']:.4f}" in html
    assert len(multi["per_label"]) == 40 and runs["seed_multilabel_resnet152"]["task"] == "multilabel"
    for reported in ("92.38%", "91.92%", "83.80%", "82.26%", "92.94%"):
        assert reported in html, f"seed's {reported} missing"
    binary_rows = {r["run"]: r for r in _cell_table(nb, "pct = ")}
    seed_cnn = binary_rows["ResNet-152 stand-in (seed setting)"]
    assert [seed_cnn[f"seed {k}"] for k in ("precision", "recall", "F1", "auROC")] == ["0.9127", "0.9380", "0.9254",
                                                                                      "0.9237"]
    # the pretraining comparison is followed every few steps on the validation split
    steps = (runs_dir / "runs" / "seed_binary_vit_b32" / "val_steps.csv").read_text().splitlines()
    assert len(steps) > 3
    assert weights_origin(runs["seed_binary_vit_b32"]).label.startswith("pretrained on celeba by this project")
    assert f"{100 * runs['seed_binary_resnet152']['test_accuracy']:.1f}%" in markdown
    # the pretraining helper (the ViTs start from it) is no contender, in the bullet or the table
    multilabel = next(line for line in conclusions.splitlines() if line.startswith("- **Multi-label.**"))
    assert "Stand-in pretraining" not in multilabel
    table = _cell_table(nb, 'show_table(this.celeba_table(study, results, "multilabel")')
    assert [row["run"] for row in table] == ["ResNet-152 stand-in, 40 attributes (seed setting; model not named by the seed)",
                                             "ViT-B/32 stand-in, pretrained, 40 attributes, stronger recipe"]


STUDY_CHECKS = {"01_cifar10_vit_vs_resnet": _study_01, "02_tiny_imagenet_cnn_ablations": _study_02, "03_tiny_imagenet_transformers": _study_03, "04_cifar10_finetune": _study_04, "05_celeba_simple_classifier": _study_05}


def _conclusions_markdown(nb) -> str:
    """What the code cell after the notebook's ``## Conclusions`` heading displayed."""
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Conclusions"))
    shown = [o["data"]["text/markdown"] for c in nb.cells[start + 1:] if c.cell_type == "code"
             for o in c.outputs if "text/markdown" in o.get("data", {})]
    assert len(shown) == 1, "one Markdown output: the conclusions"
    return shown[0]


def _check_conclusions(nb, study: str, runs_dir: Path) -> str:
    """The notebook's conclusions are the library's conclusions of the runs on disk (nothing typed
    in, nothing missing), closed by the smoke profile's caveat; returns them."""
    from cnnvit.training.run import load_run
    from cnnvit.studies import load_study, study_module

    spec = load_study(ROOT / "params" / "smoke" / f"{study}.yaml", out_dir=runs_dir)
    results = {n: load_run(spec.run_dir(n), device="cpu") for n in spec.runs}
    shown = _conclusions_markdown(nb)
    assert shown == study_module(study).conclusions(spec, results)
    lines = shown.splitlines()
    assert lines[0].startswith("*Computed from the runs of profile `smoke`")
    assert lines[-1].startswith("*Profile `smoke` uses ") and "these numbers test the pipeline" in lines[-1], \
        "the conclusions' last line is the caveat"
    assert "not run" not in shown.lower(), "every run of the profile ran"
    return shown


class _Tables(HTMLParser):
    """The cell texts of every HTML table: a list of tables, each a list of rows."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _cell_table(nb, source_start: str) -> list[dict[str, str]]:
    """The HTML table that the code cell starting with ``source_start`` displayed, as rows."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start))
    parser = _Tables()
    parser.feed("".join(o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {})))
    header, *rows = parser.tables[0]
    return [dict(zip(header, row)) for row in rows]


def _check_report_section(out_nb: Path, title: str, tmp_path: Path) -> None:
    """The executed notebook as a report section: every table cell shown in full (no "..."; the
    deviations exactly as the parameter file gives them), and in the PDF no table or figure past
    a page's edge, no word broken inside a cell, no page holding only a heading."""
    from pypdf import PdfReader

    from cnnvit.report import render
    from cnnvit.studies import load_study

    nb = nbformat.read(out_nb, as_version=4)
    parser = _Tables()
    parser.feed("".join(o["data"]["text/html"] for c in nb.cells if c.cell_type == "code"
                        for o in c.get("outputs", []) if "text/html" in o.get("data", {})))
    cells = [cell for table in parser.tables for row in table for cell in row]
    assert cells and not [c for c in cells if c.endswith(("...", "…"))], "a table cell is cut short"
    study = load_study(ROOT / "params" / "smoke" / f"{out_nb.stem}.yaml") if (
        ROOT / "params" / "smoke" / f"{out_nb.stem}.yaml").exists() else None
    deviations = _cell_table(nb, "display(show_table(deviations_table(study)))")
    if study is not None and study.deviations:
        assert [tuple(" ".join(r[k].split()) for k in ("what", "the seed", "why")) for r in deviations] == \
            [(" ".join(d["what"].split()), " ".join(d["seed"].split()), " ".join(d["why"].split()))
             for d in study.deviations], "the deviations table shows every cell in full"

    outcome = render.StudyOutcome(out_nb.stem, title, "ok", notebook=out_nb)
    page = tmp_path / "report.html"
    page.write_text(render.assemble_html({"Profile": "smoke"}, [(outcome, *render.study_section(outcome, "smoke"))],
                                         pd.DataFrame()), encoding="utf-8")
    assert render.write_pdf(page, tmp_path / "report.pdf") == []
    text = "".join(p.extract_text() for p in PdfReader(tmp_path / "report.pdf").pages)
    assert title in text and "Conclusions" in text
    if shutil.which("chromium"):  # Debian's chromium, where installed
        dom, console = open_in_chromium(page, tmp_path / "chromium")
        assert "Conclusions" in dom and console == []


def _outputs(nb) -> tuple[str, str, list]:
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    markdown = "".join(o["data"].get("text/markdown", "") for o in outputs if "data" in o)
    images = [o for o in outputs if "data" in o and "image/png" in o["data"]]
    return html, markdown, images


