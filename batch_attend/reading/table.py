"""A sheet as the rest of the tool sees it: data rows as text with the row numbers a person sees,
under a header found among titles and notes, without blank rows, columns or control characters."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd

from batch_attend import i18n
from batch_attend.columns import on_cores
from batch_attend.i18n import _
from batch_attend.reading.headers import HEADER_SEARCH_ROWS, header_index
from batch_attend.reading.limits import MAX_ROWS, InputError, place


@dataclasses.dataclass
class Table:
    """One sheet's data rows as text; ``frame``'s columns by position (headers may repeat), a
    results file's contract columns apart in ``results``."""

    source: Path
    sheet: str | None
    columns: list[str]
    frame: pd.DataFrame
    row_numbers: np.ndarray  # of int, one per data row
    results: pd.DataFrame | None = None
    delimiter: str | None = None  # a CSV's, which its results reuse; None for a workbook
    header_row: int | None = None  # the header's row number, as a person sees it

    @property
    def where(self) -> str:
        return place(self.source, self.sheet)

    def __len__(self) -> int:
        return len(self.row_numbers)

    def edited(self, edits: dict[int, dict[str, str]]) -> Table:
        """This table with the cells a person changed (by row number and column name)."""
        at = {int(row): i for i, row in enumerate(self.row_numbers)} if edits else {}
        frame = self.frame.copy() if at else self.frame
        for row, cells in edits.items():
            for name, value in cells.items():
                if int(row) in at and name in self.columns:
                    frame.iat[at[int(row)], self.columns.index(name)] = value
        return dataclasses.replace(self, frame=frame)


#: C0 control characters but tab, LF and CR: no one types them (a NUL would go out in an ID).
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def is_blank(row: list[str]) -> bool:
    return not "".join(row).strip()


def table_from_grid(
    source: Path,
    sheet: str | None,
    grid: pd.DataFrame,
    phone_column: str | None = None,
    header_row: int | None = None,
) -> Table:
    """A grid of text cells split into the header (``header_row``, else found among the top rows,
    else the first non-blank one) and data rows; the row numbers (from 1) count blank rows."""
    where = place(source, sheet)
    if header_row is not None:
        if header_row > len(grid) or is_blank(list(grid.iloc[header_row - 1])):
            message = _("{where}: row {row} (given by --header-row) is empty or past the end.")
            page = _("Row {row} is empty or past the end: choose another header row.")
            page = page.format(row=header_row)
            raise InputError(message.format(where=where, row=header_row), page=page)
        grid = grid.iloc[header_row - 1 :]
    top = [list(r) for r in grid.head(HEADER_SEARCH_ROWS).itertuples(index=False, name=None)]
    h = 0 if header_row is not None else header_index(top, phone_column)
    if h is None:  # no header names a phone: the first non-blank row (none: all is blank)
        h = next((i for i, r in enumerate(top) if not is_blank(r)), 0)
    header = [cell.strip() for cell in top[h]] if top else []
    data = grid.iloc[h + 1 :]
    blank = data.apply(lambda column: (column == "") | column.str.isspace())
    keep = [j for j, name in enumerate(header) if name or not blank.iloc[:, j].all()]
    data = data.loc[~blank.iloc[:, keep].all(axis=1), data.columns[keep]]
    if data.empty:
        message = _("{where}: the header is there but no data rows follow it.")
        if not any(header):
            message = _("{where}: the file is empty.")
        raise InputError(message.format(where=where))
    if len(data) > MAX_ROWS:
        message = _(
            "{where}: {rows} data rows, more than the {limit} batch-attend takes in one run (as many as a worksheet holds). Split the file."
        )
        rows, limit = i18n.number(len(data)), i18n.number(MAX_ROWS)
        raise InputError(message.format(where=where, rows=rows, limit=limit))
    names = [header[j] or f"column_{j + 1}" for j in keep]
    numbers = data.index.to_numpy() + 1  # grid rows are 0-based (the index keeps them)
    data = data.set_axis(range(len(keep)), axis=1).reset_index(drop=True)
    return Table(source, sheet, names, data, numbers, header_row=int(grid.index[h]) + 1)


def refuse_control_characters(table: Table) -> None:
    """Refuse a table whose cells hold a control character, naming the first by row and column."""
    named = list(table.frame.set_axis(table.columns, axis=1).items())
    named += [] if table.results is None else list(table.results.items())
    hits = on_cores(lambda item: item[1].str.contains(CONTROL_CHARACTERS).to_numpy(bool), named)
    found = [  # the first such cell of each column: (row, column name, cell)
        (int(table.row_numbers[hit.argmax()]), name, column.iloc[hit.argmax()])
        for hit, (name, column) in zip(hits, named, strict=True)
        if hit.any()
    ]
    if found:
        row, name, cell = min(found)
        code = f"U+{ord(re.search(CONTROL_CHARACTERS, cell).group()):04X}"
        message = _(
            "{where}: row {row}, column '{column}' holds a control character ({code}), which no one types in a spreadsheet; the file may be damaged. Remove it and run again."
        )
        raise InputError(message.format(where=table.where, row=row, column=name, code=code))
