"""The one table formatter every study's tables go through (``show_table``)."""
from __future__ import annotations

import html as html_mod
import re

import numpy as np
import pandas as pd

from cnnvit.studies import plain, show_table, shown_path
from cnnvit.studies.core import project_root


def _cells(html: str) -> list[str]:
    return [html_mod.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td\b[^>]*>(.*?)</td>", html, flags=re.S)]


def test_cells_read_as_values_not_python_literals():
    assert [plain(v) for v in (0.0, 0.09, 1e-5, 12.3456, 1943.2, True, np.bool_(False), [480, 480], ["a", "b"],
                               None, float("nan"), 12000, 3, "text")] == \
        ["0", "0.09", "1e-05", "12.35", "1,943", "yes", "no", "480 × 480", "a, b", "—", "—", "12,000", "3", "text"]


def test_given_formats_win_the_rest_read_plainly_and_constants_go_to_the_caption():
    long = "the seed's own recipe, which trained at 224 px for 45 epochs on the whole training split " * 2
    table = pd.DataFrame({"run": ["a", "b"], "acc": [0.5, np.nan], "params (M)": [0.0, 0.09], "why": [long, "short"],
                          "device": ["cpu", "cpu"], "profile": ["smoke", "smoke"]})
    html = show_table(table, {"acc": "{:.1%}"}).to_html()
    assert _cells(html) == ["a", "50.0%", "0", long, "b", "—", "0.09", "short"], "every cell in full, formatted"
    assert "All runs: profile: smoke; device: cpu." in html
    assert 'class="row_heading' not in html, "no index column"
    assert "<script" not in show_table(pd.DataFrame({"note": ["<script>x</script>", "y"]})).to_html(), \
        "text is escaped"


def test_a_meaningful_index_becomes_a_column_and_a_one_row_table_keeps_its_columns():
    table = pd.DataFrame({"f1": [0.5, 0.25]}, index=pd.Index(["cat", "dog"], name="class"))
    html = show_table(table, {"f1": "{:.3f}"}).to_html()
    assert _cells(html) == ["cat", "0.500", "dog", "0.250"] and ">class<" in html
    one = show_table(pd.DataFrame({"run": ["a"], "device": ["cpu"]})).to_html()
    assert _cells(one) == ["a", "cpu"] and "<caption>" not in one


def test_paths_inside_the_project_are_shown_relative_to_it(tmp_path):
    assert shown_path(project_root() / "outputs" / "smoke") == "outputs/smoke"
    assert shown_path(tmp_path) == str(tmp_path)
