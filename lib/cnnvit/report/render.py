"""The report document: executed study notebooks assembled into one self-contained HTML file
(title page, contents, one section per study with code hidden, a closing summary table) and
printed to PDF by WeasyPrint. Everything here takes data and returns text; :mod:`.build`
decides what to run."""
from __future__ import annotations

import copy
import enum
import html
import importlib.metadata
import logging
import os
import platform
import re
import subprocess
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator, Optional, Sequence

import nbformat
import pandas as pd

# the packages whose versions decide the numbers (and the report's look), in title-page order
VERSIONED_PACKAGES = ("cnnvit", "torch", "torchvision", "timm", "numpy", "pandas", "scikit-learn",
                      "seaborn", "matplotlib", "papermill", "nbconvert", "weasyprint")
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
log = logging.getLogger(__name__)


class ReportStatus(enum.StrEnum):
    """How a study's notebook ran, as the report and its record files say it (plain strings in
    JSON, equal to the strings used before)."""

    OK = "ok"
    PARTIAL = "partial"  # some runs could not train here and are left out
    FAILED = "failed"


@dataclass
class StudyOutcome:
    """What the report needs to know about one study's notebook run."""

    name: str  # e.g. 01_cifar10_vit_vs_resnet
    title: str
    status: ReportStatus
    cached: bool = False  # reused from an earlier `make report`, not executed now
    wall_s: float = 0.0  # how long the notebook took when it was executed
    started: str = ""  # ISO time of that execution
    params_file: str = ""
    error: Optional[str] = None  # one line, e.g. "DatasetError: CIFAR-10 not found under ..."
    traceback: Optional[str] = None  # when there is no executed notebook to show it
    notebook: Optional[Path] = None  # the executed notebook, if one was written
    notebook_html: Optional[str] = None  # its full rendering with code, relative to the report
    # partial: each run not complete, with its projected GPU time ({run, label, model, minutes, how})
    missing: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = ReportStatus(self.status)  # a misspelt status fails here, not as a missing badge

    @property
    def anchor(self) -> str:
        return f"study-{self.name}"


# ---------------------------------------------------------------------------------- title page

def git_state(root: Path) -> tuple[str, Optional[bool]]:
    """(commit hash, dirty?) of the checkout at ``root``; ("unknown", None) outside git.
    Only changes to tracked files count as dirty: untracked files (a user's scratch notebook) and
    anything under ``outputs/`` (results, not code) do not change what the code computes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)outputs"],
                                cwd=root, text=True, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", None
    return commit, bool(status.strip())


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary() -> dict[str, str]:
    """CPU, memory and GPUs of the machine assembling the report."""
    facts = {"CPU": f"{_cpu_name()}, {os.cpu_count()} cores"}
    try:
        facts["Memory"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    import torch

    if torch.cuda.is_available():
        facts["GPU"] = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    else:
        facts["GPU"] = "none (CPU only)"
    return facts


def package_versions(packages: Sequence[str] = VERSIONED_PACKAGES) -> dict[str, str]:
    """Installed version of Python and of each package."""
    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def title_facts(git: tuple[str, Optional[bool]], profile: str, outcomes: Sequence[StudyOutcome],
                elapsed_s: float, now: Optional[datetime] = None,
                left_out: Sequence[str] = ()) -> dict[str, str]:
    """The title page's table: profile, date, commit (``git`` from :func:`git_state`), hardware,
    versions, total time; ``left_out``: the titles of the studies this build did not include."""
    commit, dirty = git
    if dirty is None:
        commit_text = "unknown (not a git checkout)"
    else:
        commit_text = commit + (" (dirty: uncommitted changes to tracked files)" if dirty else " (clean)")
    executed = [o for o in outcomes if not o.cached]
    if len(executed) == len(outcomes):
        how = f"all {len(outcomes)} {'study' if len(outcomes) == 1 else 'studies'} executed now"
    elif not executed:
        how = "none executed now: every study reused unchanged from an earlier build"
    else:
        how = f"{len(executed)} of {len(outcomes)} studies executed now, the others reused unchanged"
    facts = {
        "Profile": profile,
        "Date": (now or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip(),
        "Git commit": commit_text,
        **hardware_summary(),
        "Libraries": ", ".join(f"{k} {v}" for k, v in package_versions().items()),
        "Total time": (f"{_duration(sum(o.wall_s for o in outcomes))} of notebook execution "
                       f"({how}); this build took {_duration(elapsed_s)}"),
    }
    failed = [o.name for o in outcomes if o.status == ReportStatus.FAILED]
    partial = [o.name for o in outcomes if o.status == ReportStatus.PARTIAL]
    facts["Studies"] = (f"{len(outcomes) - len(failed)} of {len(outcomes)} succeeded"
                        + (f"; partial (runs that could not train here left out): {', '.join(partial)}"
                           if partial else "")
                        + (f"; failed: {', '.join(failed)}" if failed else "")
                        + (f"; not in this build (chosen with STUDIES=): {'; '.join(left_out)}" if left_out else ""))
    return facts


def minutes_text(minutes: float) -> str:
    """A projected duration: '12 min', '3.4 h', or 'unknown'."""
    if minutes != minutes:
        return "unknown time"
    if minutes < 1:
        return "under 1 min"
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


STATUS_FLAG = {ReportStatus.FAILED: "FAILED", ReportStatus.PARTIAL: "PARTIAL"}


def status_flag(outcome: StudyOutcome) -> str:
    """The badge after a study's name in the contents and the summary ('' when it is ok)."""
    text = STATUS_FLAG.get(outcome.status)
    return f' <span class="status status-{outcome.status}">{text}</span>' if text else ""


def _missing_box(outcome: StudyOutcome) -> str:
    """A partial study's runs that could not train here, each with its projected GPU time."""
    total = sum(m["minutes"] for m in outcome.missing if m["minutes"] == m["minutes"])
    items = "".join(f"<li><code>{html.escape(m['run'])}</code> ({html.escape(m['label'])}; "
                    f"<code>{html.escape(m['model'])}</code>): {minutes_text(m['minutes'])} on a GPU, "
                    f"{html.escape(m['how'])}</li>" for m in outcome.missing)
    return (f'<div class="partial"><p><b>Partial study:</b> {len(outcome.missing)} runs could not train '
            f'on this machine (no GPU, or their data or weights missing) and are left out; what follows '
            f'shows the runs complete on disk. Projected time of the missing runs: {minutes_text(total)} '
            f'in all.</p><ul>{items}</ul></div>')


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else (f"{m}m {s:02d}s" if m else f"{s}s")


# ------------------------------------------------------------------------------ study sections

def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes."""
    return _ANSI.sub("", text)


def failing_cell(nb: nbformat.NotebookNode) -> Optional[nbformat.NotebookNode]:
    """The first code cell with an error output."""
    for cell in nb.cells:
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.get("outputs", [])):
            return cell
    return None


def report_cells(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook as the report shows it: no log or progress output (stderr),
    no papermill error banners, colour codes stripped, nothing after a failing cell."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if PAPERMILL_ERROR_TAG in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.get("name") == "stderr")]
            for out in cell.outputs:
                if out.output_type == "error":
                    out.traceback = [strip_ansi(line) for line in out.traceback]
        cells.append(cell)
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs):
            break
    nb.cells = cells
    return nb


def notebook_body_html(nb: nbformat.NotebookNode, prefix: str) -> str:
    """The notebook's markdown and outputs (no code) as an HTML fragment, with the ids of
    headings and cells prefixed so that several notebooks' "Results" headings do not collide.
    Other ids are left alone: pandas' styled tables refer to theirs from their own CSS."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, anchor_link_text="", log=quiet_log())
    body, _ = exporter.from_notebook_node(report_cells(nb))
    ours = set(re.findall(r'<h[1-6]\b[^>]*\bid="([^"]+)"', body)) | set(re.findall(r'\bid="(cell-id=[^"]+)"', body))

    def rename(m: re.Match) -> str:
        attr, hash_, name = m.groups()
        is_link = attr == "href" and hash_ == "#"
        if name in ours and (is_link or (attr == "id" and not hash_)):
            return f'{attr}="{hash_}{prefix}--{name}"'
        return m.group(0)

    return re.sub(r'\b(id|href)="(#?)([^"]+)"', rename, body)


def quiet_log() -> logging.Logger:
    """A logger for nbconvert that keeps its per-figure "alternative text is missing" warning
    (matplotlib output never has one) out of the build log."""
    quiet = logging.getLogger("cnnvit.nbconvert")
    quiet.setLevel(logging.ERROR)
    return quiet


def headings(body: str, level: int) -> list[tuple[str, str]]:
    """(id, text) of every ``<hN id=...>`` in an HTML fragment."""
    found = re.findall(rf'<h{level}\b[^>]*\bid="([^"]+)"[^>]*>(.*?)</h{level}>', body, flags=re.S)
    return [(i, html.unescape(re.sub(r"<[^>]+>", "", text)).strip()) for i, text in found]


def study_section(outcome: StudyOutcome, profile: str) -> tuple[str, str, list[tuple[str, str]]]:
    """(HTML section, title for the contents, its h2 headings) of one study."""
    meta = [f"profile <b>{html.escape(profile)}</b>"]
    if outcome.params_file:
        meta.append(f"parameters <code>{html.escape(outcome.params_file)}</code>")
    if outcome.started:
        meta.append(f"executed {html.escape(outcome.started)} in {_duration(outcome.wall_s)}"
                    + (" (unchanged since, reused)" if outcome.cached else ""))
    if outcome.notebook_html:
        meta.append(f'notebook with code: <a href="{html.escape(outcome.notebook_html)}">'
                    f'{html.escape(outcome.notebook_html)}</a>')
    status = STATUS_FLAG.get(outcome.status, ReportStatus.OK)
    header = [f'<p class="study-meta"><span class="status status-{outcome.status}">{status}</span> '
              + " · ".join(meta) + "</p>"]
    if outcome.missing:
        header.append(_missing_box(outcome))
    nb, body = None, ""
    if outcome.notebook and outcome.notebook.exists():
        try:
            nb = nbformat.read(outcome.notebook, as_version=4)
            body = notebook_body_html(nb, outcome.anchor)
        except Exception as exc:  # e.g. truncated by a killed build: the other sections still render
            nb, body = None, ""
            header.append(f'<div class="failure"><p><b>The executed notebook {html.escape(str(outcome.notebook))} '
                          f'could not be shown:</b></p><pre>{html.escape(f"{type(exc).__name__}: {exc}")}</pre></div>')
    if outcome.status == ReportStatus.FAILED:
        header.append(_failure_box(outcome, nb))
    h1 = headings(body, 1)
    title = h1[0][1] if h1 else outcome.title
    if h1:  # the notebook's own title first, then how it ran
        cut = body.index("</h1>") + len("</h1>")
        content = body[:cut] + "\n".join(header) + body[cut:]
    else:
        content = f"<h1>{html.escape(outcome.title)}</h1>\n" + "\n".join(header) + body
    section = (f'<section class="study" id="{outcome.anchor}">\n<div class="notebook">{content}</div>\n'
               f'</section>')
    return section, title, headings(body, 2)


def _failure_box(outcome: StudyOutcome, nb: Optional[nbformat.NotebookNode]) -> str:
    lines = ['<div class="failure"><p><b>This study failed:</b></p>'
             f'<pre class="error-message">{html.escape(outcome.error or "unknown error")}</pre>']
    cell = failing_cell(nb) if nb is not None else None
    if cell is not None:
        lines.append(f"<p>The notebook stopped in cell [{cell.get('execution_count') or '?'}]; "
                     f"what it showed up to there follows. The failing cell:</p>"
                     f"<pre>{html.escape(cell.source)}</pre>")
    elif outcome.traceback:
        lines.append(f"<pre>{html.escape(strip_ansi(outcome.traceback))}</pre>")
    lines.append("</div>")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- summary and page

SUMMARY_COLUMNS = ("run", "role", "model", "epochs", "test accuracy", "seed reported",
                   "vs seed, same metric (points)", "compared on", "wall time", "device")


def study_heading(outcome: StudyOutcome) -> str:
    """'Study 1: ViT-B/16 vs ResNet-18 on CIFAR-10': the reader's name for a study, not its file's."""
    number = outcome.name.split("_", 1)[0]
    return f"Study {int(number)}: {outcome.title}" if number.isdigit() else outcome.title


def summary_html(table: pd.DataFrame, outcomes: Sequence[StudyOutcome]) -> str:
    """The closing table, grouped by study: every run's headline number beside the seed's."""
    def pct(v) -> str:
        return "" if v is None or v != v else f"{100 * v:.1f}%"

    fmt = {"test accuracy": pct, "seed reported": pct,
           "vs seed, same metric (points)": lambda v: "" if v is None or v != v else f"{100 * v:+.1f}",
           "wall time": lambda v: "" if v is None or v != v else _duration(v),
           "epochs": lambda v: "" if v is None or v != v else f"{int(v)}"}
    # one device for every run, each complete: said once in the caption instead of on every row
    devices = set(table["device"].fillna("")) if {"device", "test accuracy"} <= set(table) else set()
    if len(devices) != 1 or not table["test accuracy"].notna().all() or "" in devices:
        devices = set()
    columns = [c for c in SUMMARY_COLUMNS if not (c == "device" and devices)]
    rows = ["<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"]
    for outcome in outcomes:
        flag = status_flag(outcome)
        rows.append(f'<tr class="group"><th colspan="{len(columns)}">{html.escape(study_heading(outcome))}{flag}</th></tr>')
        runs = table[table["study"] == outcome.name] if not table.empty else table
        if runs.empty:
            rows.append(f'<tr><td colspan="{len(columns)}">no runs</td></tr>')
        for _, r in runs.iterrows():
            cells = [fmt.get(c, lambda v: "" if v is None or v != v else str(v))(r.get(c)) for c in columns]
            rows.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in cells) + "</tr>")
    caption = f"<caption>Every run on {html.escape(devices.pop())}.</caption>" if devices else ""
    return '<table class="summary">' + caption + "\n".join(rows) + "</table>"


def references_html(path: Path) -> str:
    """The references document (Markdown, ``docs/references.md``) as the report's closing
    section, so that a reader of the report alone can see what each study reproduces; empty
    when there is none."""
    if not path.is_file():
        return ""
    import mistune  # nbconvert's Markdown renderer

    text = re.sub(r"\A# [^\n]*\n", "", path.read_text(encoding="utf-8"))  # the section has its own
    return (f'<section class="references" id="references"><h1>References</h1>\n'
            f'{mistune.html(text)}</section>')


def assemble_html(facts: dict[str, str], sections: Sequence[tuple[StudyOutcome, str, str, list]],
                  summary: pd.DataFrame, title: str = "cnnvit: image classification from CNNs to ViTs",
                  references: str = "") -> str:
    """The whole report as one self-contained HTML page (no scripts, images inline);
    ``references``: the closing section from :func:`references_html`."""
    toc = []
    for outcome, _, sec_title, subs in sections:
        flag = status_flag(outcome)
        sub = "".join(f'<li><a class="toc-link" href="#{i}">{html.escape(t)}</a></li>' for i, t in subs)
        toc.append(f'<li><a class="toc-link" href="#{outcome.anchor}">{html.escape(sec_title)}</a>{flag}'
                   + (f"<ol>{sub}</ol>" if sub else "") + "</li>")
    toc.append('<li><a class="toc-link" href="#summary">Summary across studies</a></li>')
    if references:
        toc.append('<li><a class="toc-link" href="#references">References</a></li>')
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts.items())
    profile = facts.get("Profile", "")
    seeds = ' (the seeds are described under <a href="#references">References</a>)' if references else ""
    caveat = ("" if profile == "paper" else
              '<p class="caveat">Profile <b>laptop</b>: small models on subsets of the real data sets, '
              'trained on a CPU in minutes. Each study says whether the seed\'s finding holds at this '
              'scale; the seeds\' own numbers need the <b>paper</b> profile.</p>' if profile == "laptop" else
              f'<p class="caveat">Profile <b>{html.escape(profile)}</b>: small stand-in models on '
              f'generated data, to check the pipeline. These numbers are not results about the '
              f'data sets; the <b>paper</b> profile runs the real studies.</p>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} ({html.escape(profile)})</title>
<style>{REPORT_CSS}</style></head>
<body>
<section class="title-page">
<h1 class="report-title">{html.escape(title)}</h1>
<p class="subtitle">Report of the study notebooks, profile <b>{html.escape(profile)}</b></p>
{caveat}
<table class="facts">{rows}</table>
</section>
<nav class="toc"><h2>Contents</h2><ol>{''.join(toc)}</ol></nav>
{''.join(section for _, section, _, _ in sections)}
<section class="summary" id="summary"><h1>Summary across studies</h1>
<p>Every run's test accuracy in profile <b>{html.escape(profile)}</b> (computed by the code that ran,
on the run's test split) beside the number the seed reported for that setting{seeds}, with the
epochs and wall time that produced it. The difference is given only for a run in the seed's setting (the data set, task,
model, training images, input size and epochs of the paper profile's run of that name) and on
the seed's metric (the best epoch for study 3, whose paper reports the highest accuracy during
training); "compared on" says which, or why a run is not comparable. Runs not completed show no
number.</p>
{summary_html(summary, [o for o, _, _, _ in sections])}
</section>
{references}
</body></html>
"""


def write_pdf(html_path: Path, pdf_path: Path) -> list[str]:
    """Print the report with WeasyPrint (A4, page numbers). A table too wide for a portrait page
    (cells break at spaces only, never inside a word) gets a landscape page of its own. Returns
    (and logs) every layout problem :func:`page_problems` still finds: content past a page's edge,
    a page holding only a heading, a word broken inside a table cell."""
    # WeasyPrint logs its steps (some at import) and every CSS property it ignores in
    # nbconvert's and pandas' styles; only its errors matter here
    for name in ("weasyprint", "weasyprint.progress", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from weasyprint import HTML

    source = _number_tables(html_path.read_text(encoding="utf-8"))
    doc = HTML(string=source, base_url=str(html_path.parent)).render()
    for level in ("1", "2"):  # smaller type for the tables too wide; then landscape for those still so
        wide = _overflowing_tables(doc)
        if not wide:
            break
        source = re.sub(r'<table data-t="(\d+)"( data-wide="\d")?',
                        lambda m: f'<table data-t="{m.group(1)}" data-wide="{level}"' if m.group(1) in wide else m.group(0),
                        source)
        doc = HTML(string=source, base_url=str(html_path.parent)).render()
    problems = page_problems(doc)
    for problem in problems:
        log.warning("%s: %s", pdf_path.name, problem)
    tmp = pdf_path.with_suffix(".pdf.tmp")
    doc.write_pdf(str(tmp))
    os.replace(tmp, pdf_path)
    return problems


def _number_tables(source: str) -> str:
    """Every ``<table`` numbered (``data-t``), so that a table found too wide in one layout can be
    named in the next."""
    counter = iter(range(1, 1 << 30))
    return re.sub(r"<table\b", lambda m: f'<table data-t="{next(counter)}"', source)


def _boxes(page) -> Iterator:
    page_box = page._page_box  # WeasyPrint's layout tree (pinned version): no public accessor
    yield from page_box.descendants()


def _content_area(page) -> tuple[float, float, float, float]:
    box = page._page_box
    return box.content_box_x(), box.content_box_y(), box.width, box.height


def _overhang(box, area: tuple[float, float, float, float]) -> Optional[tuple[float, float]]:
    """How far ``box`` reaches past the right edge and past the foot of the content ``area``
    (negative: inside); None for a box without a position."""
    x, y, width, height = area
    try:
        return (box.border_box_x() + box.border_width() - (x + width),
                box.border_box_y() + box.border_height() - (y + height))
    except (AttributeError, TypeError):
        return None


def _overflowing_tables(doc) -> set[str]:
    """The ``data-t`` numbers of the tables wider than their page."""
    found = set()
    for page in doc.pages:
        area = _content_area(page)
        for box in _boxes(page):
            element = getattr(box, "element", None)
            if getattr(box, "element_tag", None) == "table" and element is not None and element.get("data-t"):
                over = _overhang(box, area)
                if over and over[0] > 1:
                    found.add(element.get("data-t"))
    return found


def page_problems(doc) -> list[str]:
    """Layout problems of a rendered WeasyPrint document: elements past their page's content
    area (right or bottom edge), pages whose only content is a heading, and table cells whose
    text breaks inside a word."""
    return overflowing_boxes(doc) + stranded_headings(doc) + broken_words(doc)


def overflowing_boxes(doc) -> list[str]:
    """Elements wider than their page's content area, or content (an image, a table, a line of
    text) reaching past its foot."""
    from weasyprint.formatting_structure import boxes as wb

    problems = []
    for number, page in enumerate(doc.pages, 1):
        area = _content_area(page)
        seen = set()
        for box in _boxes(page):
            tag = getattr(box, "element_tag", None)
            if not tag or getattr(box, "width", None) is None or tag in seen:
                continue
            over = _overhang(box, area)
            if over is None:
                continue
            if over[0] > 1:
                seen.add(tag)
                problems.append(f"page {number}: <{tag}> is {over[0]:.0f}px wider than the page")
            elif over[1] > 1 and isinstance(box, (wb.ReplacedBox, wb.TableBox, wb.LineBox)):
                # (content: a container's padding past the foot loses nothing)
                seen.add(tag)
                problems.append(f"page {number}: <{tag}> runs {over[1]:.0f}px past the foot of the page")
    return problems


_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


def stranded_headings(doc) -> list[str]:
    """Pages whose only visible content (text or image) sits inside headings: a heading left at a
    page's foot, or alone on a page, with what it introduces on the next."""
    from weasyprint.formatting_structure import boxes as wb

    problems = []
    for number, page in enumerate(doc.pages, 1):
        heading_text, other = [], False
        for box in _boxes(page):
            content = (isinstance(box, wb.TextBox) and box.text.strip()) or isinstance(box, wb.ReplacedBox)
            if not content:
                continue
            if _inside(box, _HEADINGS):
                heading_text.append(box.text.strip() if isinstance(box, wb.TextBox) else "")
            else:
                other = True
                break
        if heading_text and not other:
            problems.append(f"page {number} holds only a heading: {' '.join(heading_text)[:80]!r}")
    return problems


def _inside(box, tags: set[str]) -> bool:
    """Whether ``box`` lies inside an element named in ``tags`` (WeasyPrint's boxes know their
    element, not their parent box: the element tree is walked instead)."""
    element = getattr(box, "element", None)
    while element is not None:
        if getattr(element, "tag", None) in tags:
            return True
        element = element.getparent() if hasattr(element, "getparent") else None
    return False


def broken_words(doc) -> list[str]:
    """Table cells whose text the layout broke inside a word: two consecutive lines of a cell where
    the cell's text has no space (nor hyphen or slash) at the break."""
    from weasyprint.formatting_structure import boxes as wb

    problems = []
    for number, page in enumerate(doc.pages, 1):
        for box in _boxes(page):
            if not isinstance(box, wb.TableCellBox):
                continue
            lines = ["".join(t.text for t in line.descendants() if isinstance(t, wb.TextBox))
                     for line in box.descendants() if isinstance(line, wb.LineBox)]
            lines = [x.strip() for x in lines if x.strip()]
            cell = _cell_text(box)
            for a, b in zip(lines, lines[1:]):
                end, start = a.split()[-1], b.split()[0]
                if end[-1].isalnum() and start[0].isalnum() and end + start in cell and f"{end} {start}" not in cell:
                    problems.append(f"page {number}: a table cell breaks the word {end + start!r}")
                    break
    return problems


def _cell_text(box) -> str:
    element = getattr(box, "element", None)
    text = "".join(element.itertext()) if element is not None else ""
    return " ".join(text.split())


REPORT_CSS = """
:root { --fg: #1d2330; --muted: #5b6478; --line: #d8dce4; --accent: #2457a6; }
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: var(--fg);
       max-width: 60rem; margin: 0 auto; padding: 1.5rem; line-height: 1.45; font-size: 15px; }
h1 { font-size: 1.6rem; margin: 1.2rem 0 .6rem; } h2 { font-size: 1.25rem; margin-top: 1.4rem; }
h3 { font-size: 1.05rem; }
a { color: var(--accent); } a.anchor-link { display: none; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85em; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f5f6f8; padding: .5rem .7rem;
      border-radius: 4px; }
img { max-width: 100%; height: auto; display: block; margin: .4rem 0; }
table { border-collapse: collapse; font-size: .8rem; margin: .5rem 0; max-width: 100%; }
/* cells break at spaces only: a word cut in two ("inpu t px") is misread; a wide table scrolls on
   screen and gets a landscape page in print */
th, td { border-bottom: 1px solid var(--line); padding: .2rem .4rem; text-align: right;
         vertical-align: top; overflow-wrap: normal; word-break: normal; hyphens: manual; }
.jp-OutputArea-output, .output_html { overflow-x: auto; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: .8rem; padding: .2rem 0; }
th { background: #f0f2f5; }
.title-page { padding-top: 3rem; }
.report-title { font-size: 2.1rem; margin-bottom: .3rem; }
.subtitle { color: var(--muted); font-size: 1.1rem; margin-top: 0; }
table.facts th, table.facts td { text-align: left; font-size: .85rem; }
table.facts th { width: 9rem; white-space: nowrap; }
.caveat { border-left: 4px solid #d9a400; background: #fff8e1; padding: .5rem .8rem; }
.toc ol { padding-left: 1.4rem; } .toc li { margin: .15rem 0; }
section.study, section.summary, section.references { border-top: 2px solid var(--line); margin-top: 2rem; }
.references { overflow-wrap: anywhere; }
.study-meta { color: var(--muted); font-size: .8rem; margin: .2rem 0 .8rem; }
.status { font-weight: bold; padding: 0 .35rem; border-radius: 3px; font-size: .75rem; }
.status-ok { background: #e3f4e6; color: #1e6b2e; }
.status-failed { background: #fde2e1; color: #a12622; }
.status-partial { background: #fff3d6; color: #7a5200; }
.partial { border-left: 4px solid #e0a526; background: #fffaf0; padding: .3rem .8rem; margin: .5rem 0; }
.failure { border-left: 4px solid #c62828; background: #fff1f0; padding: .4rem .8rem; margin: .6rem 0; }
.output_stderr { display: none; }
.output_error pre, .output_error { background: #fff1f0; }
table.summary { width: 100%; }
table.summary td:nth-child(-n+3), table.summary th:nth-child(-n+3) { text-align: left; }
table.summary tr.group th { text-align: left; background: #e4e9f2; font-size: .85rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  @page { size: A4; margin: 16mm 14mm 18mm;
          @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; color: #777; } }
  @page wide { size: A4 landscape; }
  /* a table too wide for a portrait page (write_pdf marks it after a layout): first in smaller
     type, then, if still too wide, on a landscape page of its own */
  table[data-wide] { font-size: 5.5pt; }
  table[data-wide] th, table[data-wide] td { padding: 1pt 1.5pt; }
  table[data-wide="2"] { page: wide; font-size: 7pt; }
  table[data-wide="2"] th, table[data-wide="2"] td { padding: 1.5pt 3pt; }
  /* a figure fits a page with room for the heading above it (figures are at most 1.3 x as tall as wide) */
  img { max-height: 225mm; width: auto; max-width: 100%; object-fit: contain; }
  caption { break-after: avoid; }
  .title-page { break-after: page; }
  .toc { break-after: page; }
  /* (section: table.summary must not start a page of its own) */
  section.study, section.summary { break-before: page; border-top: none; margin-top: 0; }
  h1, h2, h3, h4, h5, h6 { break-after: avoid; }
  /* a notebook's text cell introduces the output after it: keep the two on one page */
  .text_cell { break-after: avoid; }
  img, tr, pre { break-inside: avoid; }
  .toc a.toc-link::after { content: leader(".") target-counter(attr(href), page); }
  .toc a.toc-link { text-decoration: none; color: var(--fg); }
  /* condensed type lets the notebooks' wide tables fit the page width */
  table { font-family: "DejaVu Sans Condensed", "Arial Narrow", sans-serif; font-size: 7pt; }
  th, td { padding: 1.5pt 3pt; }
}
"""
