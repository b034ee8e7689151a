"""What reading may take: each limit lets a full worksheet of leads through (1,048,576 rows of a
few columns), and each refusal names it. No pandas: the workbook's child uses this module too."""

from __future__ import annotations

from pathlib import Path

from batch_attend import i18n
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _

MAX_ROWS = 1_048_576  #: Data rows of one run: as many as a worksheet holds.
MAX_CELLS = 16 * 1_048_576  #: Cells of a file's grid, every row as wide as the widest, blanks too.
MAX_TEXT_BYTES = 128 << 20  #: A CSV file's size, or the text a workbook's cells hold once read.
MAX_INFLATED_BYTES = 512 << 20  #: What a workbook's parts inflate to, as its zip declares them.
WORKBOOK_MEMORY = 768 << 20  #: What the parser of a workbook may allocate.


class InputError(BatchAttendError):
    """The input cannot be used; the message names the file and, where known, sheet and column."""


def place(source: Path | str, sheet: str | None) -> str:
    """How messages name the place: the file, and the sheet of a workbook."""
    return _("{path}, sheet '{sheet}'").format(path=source, sheet=sheet) if sheet else str(source)


def quoted(names) -> str:
    return ", ".join(f"'{n}'" for n in names) or _("(none)")


def mib(count: int) -> str:
    return i18n.number(count / (1 << 20), 1) + " MiB"


def check_cells(place: str, rows: int, columns: int) -> None:
    if rows * columns > MAX_CELLS:
        message = _(
            "{where}: {rows} rows × {columns} columns are {cells} cells, more than the {limit} batch-attend reads. Delete the rows and columns past the data, or split the file."
        )
        numbers = dict(rows=rows, columns=columns, cells=rows * columns, limit=MAX_CELLS)
        raise InputError(
            message.format(where=place, **{k: i18n.number(v) for k, v in numbers.items()})
        )
