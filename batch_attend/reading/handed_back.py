"""A results file handed back as input: its contract columns set apart (:attr:`Table.results`),
the user's own columns under their own names, a CSV's would-be formulas as they were typed."""

from __future__ import annotations

import dataclasses

import pandas as pd

from batch_attend.columns import uninert
from batch_attend.outcomes import PORTUGUESE_COLUMNS, PORTUGUESE_STATUSES, RESULT_COLUMNS
from batch_attend.reading.table import Table

#: How a results file names an input column whose name is also a contract column.
INPUT_SUFFIX = " (input)"
#: The Portuguese names of a Portuguese results workbook, back to the contract's.
_ENGLISH = {v: str(k) for k, v in (*PORTUGUESE_COLUMNS.items(), *PORTUGUESE_STATUSES.items())}
#: What marks a results file: these contract columns side by side (the others of the contract
#: may follow them, or may have been deleted by the person handing the file back).
RESULT_MARK = ("row", "phone", "status")


def split_results(table: Table) -> Table:
    """A results file's contract columns set apart (found as a run of contract names starting
    with ``RESULT_MARK``; one the file no longer has reads as empty); any other table as it is."""
    names = [_ENGLISH.get(name, name) for name in table.columns]
    start = next((j for j in range(len(names)) if tuple(names[j : j + 3]) == RESULT_MARK), None)
    if start is None:
        return table
    found = {}  # the contract's columns from ``start`` on, each once, by position
    for j in range(start, len(names)):
        if names[j] not in RESULT_COLUMNS or names[j] in found:
            break
        found[names[j]] = j
    own = [j for j in range(len(names)) if j not in found.values()]
    frame = table.frame
    results = pd.DataFrame(
        {name: frame[found[name]] if name in found else "" for name in RESULT_COLUMNS},
        index=frame.index,
        dtype=str,
    )
    results.attrs["portuguese"] = names != table.columns  # rewritten so by ``batch-attend undo``
    if results.attrs["portuguese"]:  # its statuses in words, its reasons without their codes
        results["status"] = results["status"].map(lambda s: _ENGLISH.get(s.strip(), s))
        results["error"] = results["error"].where(results["error"] == "", ": " + results["error"])
    cells = frame[own].set_axis(range(len(own)), axis=1)
    columns = [table.columns[j].removesuffix(INPUT_SUFFIX) for j in own]
    if table.delimiter is not None:  # a CSV's cells were made inert
        cells = cells.apply(uninert)
        results = results.assign(
            **{c: uninert(results[c]) for c in ("attendance_number", "operators")}
        )
        columns = uninert(pd.Series(columns, dtype=str)).tolist()
    return dataclasses.replace(table, columns=columns, frame=cells, results=results)
