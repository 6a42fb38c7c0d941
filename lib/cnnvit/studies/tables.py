"""One formatter for every table a study shows: no index, no truncated cells, numbers formatted
per column, columns that hold one value for every row said once in the caption, text columns
left-aligned. A notebook calls :func:`show_table` with the formats particular to its table;
everything else gets the defaults here, so the report's tables read alike."""
from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from .core import project_root

Format = Union[str, Callable[[Any], str]]
MISSING = "—"
# columns that describe how a table's runs were made rather than what they found: when they hold
# one value for every row they are said once, in the caption, instead of on every row
CONSTANT_COLUMNS = ("profile", "data", "device", "input px")


def factor_out_constants(table: pd.DataFrame, columns: Sequence[str] = CONSTANT_COLUMNS
                         ) -> tuple[pd.DataFrame, str]:
    """Drop the ``columns`` that hold one value for every row, and say that value once instead
    (a caption): keeps a wide table within a printed page."""
    if len(table) < 2:  # one row: nothing repeats, and a caption would only restate the row
        return table, ""
    same = [c for c in columns if c in table and table[c].nunique(dropna=False) == 1]
    caption = "; ".join(f"{c}: {plain(table[c].iloc[0])}" for c in same)
    return table.drop(columns=same), (f"All runs: {caption}." if same else "")


def plain(value: Any) -> str:
    """A cell as a reader wants it: no Python literals (``True``, ``[480, 480]``, ``0.090000``),
    ``—`` where there is nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, numbers.Integral) for v in value):
            return f"{value[0]} × {value[1]}"  # a size in pixels
        return ", ".join(plain(v) for v in value) if value else MISSING
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items()) or MISSING
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"  # 0.09, 1e-05, 12.35: no trailing zeros
    return str(value)


def show_table(table: pd.DataFrame, formats: Optional[Mapping[str, Format]] = None, caption: str = "",
               constant: Sequence[str] = CONSTANT_COLUMNS, na_rep: str = MISSING) -> Styler:
    """``table`` as the report shows it: ``formats`` for the columns named there (a format
    string or a function of the value), :func:`plain` for the others; the ``constant`` columns
    that repeat one value moved to the caption after ``caption``; no index; text left-aligned."""
    if table.index.name is not None or isinstance(table.index, pd.MultiIndex):  # a named index (the classes)
        table = table.reset_index()
    else:  # positions, after a sort or a filter: nothing a reader needs
        table = table.reset_index(drop=True)
    table, shared = factor_out_constants(table, constant)
    given = {c: f for c, f in (formats or {}).items() if c in table.columns}
    # one call: a second format() with a dict resets the columns it does not name to pandas' default
    styler = table.style.format({c: given.get(c, plain) for c in table.columns}, na_rep=na_rep,
                                escape="html")  # a "<" in a note is text, not markup
    styler = styler.hide(axis="index")
    text_columns = [c for c in table.columns if c not in given and _is_text(table[c])]
    if text_columns:
        styler = styler.set_properties(subset=text_columns, **{"text-align": "left"})
    styler = styler.set_table_styles([{"selector": "th.col_heading", "props": [("text-align", "left")]}],
                                     overwrite=False)
    text = " ".join(t for t in (caption.strip(), shared) if t)
    if text:
        styler = styler.set_caption(text)
    return styler.set_table_attributes('class="cnnvit-table"')


def shown_path(path: Union[str, Path]) -> str:
    """A path as a report shows it: relative to the project when inside it (a reader's checkout
    is elsewhere), as given otherwise."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path)


def _is_text(column: pd.Series) -> bool:
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, str) for v in values)
