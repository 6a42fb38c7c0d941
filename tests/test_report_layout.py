"""The printed report's layout, read back from the PDF: nothing leaves the page, no heading is
left alone at a page's foot, no table cell breaks a word, and a table too wide for a portrait
page gets a landscape one."""
from __future__ import annotations

import base64
import io
import re

import matplotlib
import nbformat
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cnnvit.report import render  # noqa: E402
from cnnvit.studies import plots, show_table  # noqa: E402

HEADINGS = ("Study 9 — twelve runs", "Results", "Confusion matrices (normalised per true class)", "Conclusions")


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    matplotlib.pyplot.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _twelve_run_notebook(path, runs: int = 12):
    """An executed study notebook as papermill leaves one: a 12-run results table of the summary's
    width and a 12-matrix confusion figure, each under its heading."""
    rng = np.random.default_rng(0)
    labels = [f"ResNet-18 stand-in, recipe {i} (seed setting; weights from ImageNet-21k)" for i in range(runs)]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    table = pd.DataFrame([{
        "run": label, "role": "strong recipe" if i % 2 else "seed setting", "model": "deit_base_distilled_patch16_384",
        "input px": 384, "params (M)": 86.4, "epochs": 30, "test acc": rng.uniform(0.5, 0.9),
        "± (points)": rng.uniform(0, 2), "seeds": 3, "seed reported": 0.88,
        "compared on": "not comparable: model resnet10_mini_cifar, the seed setting's resnet18",
        "wall time (s)": 1234.5, "train img/s": 1943, "device": f"cuda:{i % 2} (NVIDIA H200)"}
        for i, label in enumerate(labels)])
    styled = show_table(table, {"test acc": "{:.2%}", "± (points)": "{:.1f}", "seed reported": "{:.0%}"})
    figure = plots.plot_confusions({label: rng.integers(0, 60, (10, 10)).tolist() for label in labels}, classes)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {HEADINGS[0]}\n\nWhat twelve runs look like in print."),
                nbformat.v4.new_markdown_cell(f"## {HEADINGS[1]}"),
                nbformat.v4.new_code_cell("show_table(...)", outputs=[nbformat.v4.new_output(
                    "execute_result", {"text/html": styled.to_html()}, execution_count=1)]),
                nbformat.v4.new_markdown_cell(f"### {HEADINGS[2]}"),
                nbformat.v4.new_code_cell("plots.plot_confusions(...)", outputs=[nbformat.v4.new_output(
                    "display_data", {"image/png": _png(figure), "text/plain": "<Figure>"})]),
                nbformat.v4.new_markdown_cell(f"## {HEADINGS[3]}"),
                nbformat.v4.new_code_cell("display(Markdown(...))", outputs=[nbformat.v4.new_output(
                    "display_data", {"text/markdown": "- **Recipes.** Twelve of them."})])]
    nbformat.write(nb, path)
    return path, labels


def _write_report(tmp_path, outcomes):
    sections = [(o, *render.study_section(o, "smoke")) for o in outcomes]
    page = tmp_path / "report.html"
    page.write_text(render.assemble_html({"Profile": "smoke"}, sections, pd.DataFrame()), encoding="utf-8")
    return page, render.write_pdf(page, tmp_path / "report.pdf")


def test_a_twelve_run_study_fits_its_pages(tmp_path):
    from pypdf import PdfReader

    path, labels = _twelve_run_notebook(tmp_path / "09_twelve.ipynb")
    _, problems = _write_report(tmp_path, [render.StudyOutcome("09_twelve", "Study 9", "ok", notebook=path)])
    assert problems == [], problems
    pages = PdfReader(tmp_path / "report.pdf").pages
    text = "\n".join(p.extract_text() for p in pages)
    for label in labels:  # every row, in full
        assert " ".join(label.split()) in " ".join(text.split()), label
    headings = set(HEADINGS) | {"Contents", "Summary across studies"}
    for number, page in enumerate(pages, 1):
        lines = [x.strip() for x in page.extract_text().splitlines()
                 if x.strip() and not re.fullmatch(r"\d+ / \d+", x.strip())]
        assert lines and not set(lines) <= headings, f"page {number} holds only a heading: {lines}"


def test_a_table_too_wide_for_portrait_gets_a_landscape_page(tmp_path):
    from pypdf import PdfReader

    wide = pd.DataFrame([{f"column {i}": f"deit_base_distilled_patch16_384_{i}" for i in range(6)}] * 3)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Study 8 — wide"),
                nbformat.v4.new_code_cell("show_table(wide)", outputs=[nbformat.v4.new_output(
                    "execute_result", {"text/html": show_table(wide).to_html()}, execution_count=1)])]
    nbformat.write(nb, tmp_path / "08_wide.ipynb")
    _, problems = _write_report(tmp_path, [render.StudyOutcome("08_wide", "Study 8", "ok",
                                                               notebook=tmp_path / "08_wide.ipynb")])
    assert problems == [], problems
    shapes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in PdfReader(tmp_path / "report.pdf").pages]
    assert any(w > h for w, h in shapes) and any(w < h for w, h in shapes), shapes


@pytest.mark.parametrize("body, problem", [
    ('<img src="data:image/png;base64,{tall}" style="width: 100%">', "past the foot of the page"),
    ("<p style='break-after: page'>text</p><h2>Stranded</h2><div style='break-before: page'><p>what it introduces</p></div>",
     "holds only a heading: 'Stranded'"),
    ('<table style="width: 30mm"><tr><td style="overflow-wrap: anywhere">'
     "supercalifragilisticexpialidocious words</td></tr></table>", "breaks the word"),
])
def test_the_layout_checks_find_what_they_look_for(tmp_path, body, problem):
    fig = matplotlib.pyplot.figure(figsize=(2, 6))  # three times as tall as wide
    fig.add_subplot()
    page = tmp_path / "bad.html"
    page.write_text("<html><body>" + body.format(tall=_png(fig)) + "</body></html>", encoding="utf-8")
    problems = render.write_pdf(page, tmp_path / "bad.pdf")
    assert any(problem in p for p in problems), problems


def test_a_figure_taller_than_a_page_is_scaled_to_fit(tmp_path):
    """A notebook's own figure (a user's, five times as tall as wide) is shrunk to the page, not cut."""
    fig = matplotlib.pyplot.figure(figsize=(4, 20))  # 1440 px at 72 dpi: about 380 mm
    fig.add_subplot().plot([0, 1], [0, 1])
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Study 7 — tall"),
                nbformat.v4.new_code_cell("plt.plot(...)", outputs=[nbformat.v4.new_output(
                    "display_data", {"image/png": _png(fig), "text/plain": "<Figure>"})])]
    nbformat.write(nb, tmp_path / "07_tall.ipynb")
    _, problems = _write_report(tmp_path, [render.StudyOutcome("07_tall", "Study 7", "ok",
                                                               notebook=tmp_path / "07_tall.ipynb")])
    assert problems == [], problems
