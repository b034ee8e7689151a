"""Rules over whole text columns, spread over the cores, and cells made safe for a spreadsheet.
Imports nothing of the package, so every layer (reading, validation, results) can use it."""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd


def on_cores(rule, items) -> list:
    """``rule`` over each item, on a thread per core: pyarrow's string work releases the GIL."""
    items = list(items)
    if len(items) < 2:
        return [rule(item) for item in items]
    with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(rule, items))


def pieces(column: pd.Series) -> list[pd.Series]:
    """``column`` cut into one piece per core for :func:`on_cores` (a short one stays whole)."""
    count = max(1, min(os.cpu_count() or 1, len(column) // 100_000))
    bounds = np.linspace(0, len(column), count + 1, dtype=int)
    return [column.iloc[a:b] for a, b in itertools.pairwise(bounds)]


def choose_text(condition, yes: pd.Series | str, no: pd.Series | str) -> pd.Series:
    """``yes`` where ``condition`` holds, else ``no``, for text columns (or one text for all),
    through pyarrow's ``if_else``: pandas' ``mask`` and ``where`` are slow on most of a column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arrow(side):
        if isinstance(side, pd.Series):
            return side.astype(str).array.__arrow_array__().cast(pa.large_string())
        return pa.scalar(side, pa.large_string())

    index = next(s.index for s in (yes, no) if isinstance(s, pd.Series))
    condition = np.asarray(condition, dtype=bool)
    for side, alone in ((no, not condition.any()), (yes, condition.all())):
        if alone and isinstance(side, pd.Series):
            return side
    chosen = pc.if_else(pa.array(condition), arrow(yes), arrow(no))
    return pd.Series(chosen, index=index, dtype=str)


#: What a cell may start with for a spreadsheet to run it as a formula.
FORMULA_START = "^[=+@\t\r-]"
# Numbers, phones and IDs people expect to see unchanged: digits with masks, maybe a sign.
_NUMERIC_LOOKING = r"[+-]?[\d\s().\-/\u00a0]*\d[\d\s().\-/\u00a0]*"


def _would_run(column: pd.Series) -> pd.Series:
    """Cells a spreadsheet would run as a formula (not phones and plain numbers)."""
    risky = column.str.contains(FORMULA_START, regex=True)
    if risky.any():
        risky[risky] = ~column[risky].str.fullmatch(_NUMERIC_LOOKING)
    return risky


def inert(column: pd.Series) -> pd.Series:
    """Text cells made safe for a CSV opened in a spreadsheet: a would-be formula gets a ``'``."""
    risky = _would_run(column)
    return choose_text(risky, "'" + column, column) if risky.any() else column


def uninert(column: pd.Series) -> pd.Series:
    """:func:`inert` undone, for the cells of a CSV results file handed back."""
    quoted = column.str.startswith("'")
    if not quoted.any():
        return column
    undone = column.str.slice(1)
    return choose_text(quoted & _would_run(undone), undone, column)
