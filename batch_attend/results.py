"""The results file and the one-line summary.

One output row per input row, in input order: the original columns as they were, then the contract
columns. Files appear atomically (temp file in the same folder, then rename), so a reader never
sees half a file, and no cell is ever written in a form a spreadsheet would run as a formula.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from batch_attend.errors import BatchAttendError
from batch_attend.i18n import N_, _
from batch_attend.outcomes import Outcome, RowStatus, RunSummary

RESULT_COLUMNS = (
    "row",
    "phone",
    "status",
    "attendance_number",
    "operators",
    "http_status",
    "error",
    "attempts",
)
OUTPUT_FORMATS = {".csv": "csv", ".xlsx": "xlsx"}
STDOUT = "-"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Numbers, phones and IDs people expect to see unchanged: digits with masks, maybe a sign.
_NUMERIC_LOOKING = re.compile(r"^[+-]?[\d\s().\-/\u00a0]*\d[\d\s().\-/\u00a0]*$")


class OutputError(BatchAttendError):
    """The results cannot be written where asked; checked before anything is sent."""


_FORMULA_FIRST = frozenset(_FORMULA_START)


def inert(value: str) -> str:
    """``value`` made safe for a CSV opened in a spreadsheet: a would-be formula gets a ``'``."""
    if value[:1] in _FORMULA_FIRST and not _NUMERIC_LOOKING.match(value):
        return "'" + value
    return value


_ANY_CELL_STARTS_LIKE_A_FORMULA = re.compile("\x00[=+\\-@\t\r]")


def output_format(output: str) -> str:
    if output == STDOUT:
        return "csv"
    ext = Path(output).suffix.lower()
    if ext not in OUTPUT_FORMATS:
        raise OutputError(
            _(
                "{output}: results can be written as .csv or .xlsx (or '-' for CSV on stdout), not '{value}'."
            ).format(output=output, value=ext or "no extension")
        )
    return OUTPUT_FORMATS[ext]


#: A worksheet holds 1,048,576 rows, the header included.
XLSX_MAX_DATA_ROWS = 1_048_575


def check_capacity(output: str, rows: int) -> None:
    """An XLSX cannot hold more rows than a worksheet: refuse before sending, not after."""
    if output != STDOUT and output_format(output) == "xlsx" and rows > XLSX_MAX_DATA_ROWS:
        raise OutputError(
            _(
                "{output}: {rows} rows do not fit in one worksheet (at most {limit}); "
                "write the results as .csv instead."
            ).format(output=output, rows=f"{rows:,}", limit=f"{XLSX_MAX_DATA_ROWS:,}")
        )


def default_output_for(input_path: Path) -> str:
    """``leads.xlsx`` → ``leads.results.xlsx`` beside it; CSV input gives CSV results."""
    ext = ".xlsx" if input_path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods") else ".csv"
    return str(input_path.with_name(input_path.stem + ".results" + ext))


def check_output(output: str, input_path: Path) -> None:
    """Refuse, before anything is sent, an output that cannot be written or would replace the input."""
    output_format(output)
    if output == STDOUT:
        return
    target = Path(output)
    if target.resolve() == input_path.resolve() or (
        target.exists() and input_path.exists() and os.path.samefile(target, input_path)
    ):
        raise OutputError(
            _("{output}: the results would overwrite the input file; choose another -o.").format(
                output=output
            )
        )
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(
            _("{output}: the folder '{folder}' does not exist.").format(
                output=output, folder=folder
            )
        )
    if target.is_dir():
        raise OutputError(
            _("{output}: is a folder; give a file name such as results.csv.").format(output=output)
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".batch-attend-", delete=True):
            pass
    except OSError as exc:
        raise OutputError(
            _("{output}: cannot write in '{folder}' ({strerror}).").format(
                output=output, folder=folder, strerror=exc.strerror
            )
        ) from exc
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(_("{output}: the file exists and is read-only.").format(output=output))


def result_header(columns: Sequence[str]) -> list[str]:
    """Original column names, then the contract's; an input column whose name clashes with a
    contract column is shown as ``name (input)`` so scripts always find the contract column."""
    taken = {c.casefold() for c in RESULT_COLUMNS}
    renamed = [f"{c} (input)" if c.casefold() in taken else c for c in columns]
    return [*renamed, *RESULT_COLUMNS]


def contract_columns(row_numbers: Sequence[int], outcomes: Sequence[Outcome]) -> list[list]:
    """The contract columns, in ``RESULT_COLUMNS`` order (the one place that says so), built a
    column at a time: a million rows cost eight list comprehensions, not a million calls."""
    if len(row_numbers) != len(outcomes):
        raise ValueError(f"{len(row_numbers)} row numbers for {len(outcomes)} outcomes")
    return [
        list(row_numbers),
        [o.phone for o in outcomes],
        [o.status for o in outcomes],
        [o.attendance_number for o in outcomes],
        [", ".join(o.operators) for o in outcomes],
        ["" if o.http_status is None else o.http_status for o in outcomes],
        [o.error for o in outcomes],
        [o.attempts for o in outcomes],
    ]


def _inert_column(values: Sequence[str]) -> Sequence[str]:
    """:func:`inert` over a column, with one regex search when no cell needs it (the usual case)."""
    if _ANY_CELL_STARTS_LIKE_A_FORMULA.search("\x00" + "\x00".join(values)):
        return [inert(v) for v in values]
    return values


def write_csv(stream: TextIO, header, cells, row_numbers, outcomes) -> None:
    """``cells`` is column-major (one list per input column), as :class:`Table` keeps it."""
    contract = contract_columns(row_numbers, outcomes)
    # Of the contract columns only the operators can hold user text at a cell's start (the error
    # column always starts with its code).
    operators = RESULT_COLUMNS.index("operators")
    contract[operators] = _inert_column(contract[operators])
    for column in cells:
        if len(column) != len(outcomes):
            raise ValueError(f"a column of {len(column)} cells for {len(outcomes)} outcomes")
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow([inert(h) for h in header])
    writer.writerows(zip(*(_inert_column(c) for c in cells), *contract, strict=True))


_STATUS_COLOURS = {
    RowStatus.STARTED: "#C6EFCE",
    RowStatus.ALREADY_IN_SERVICE: "#BDD7EE",
    RowStatus.FAILED: "#FFC7CE",
    RowStatus.SKIPPED: "#D9D9D9",
    RowStatus.INVALID: "#FFEB9C",
}


def write_xlsx(path: str, header, cells, row_numbers, outcomes, summary: RunSummary | None) -> None:
    """Every text cell is written as text (phones and IDs stay digits, formulas stay inert)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(
        path, {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    try:
        sheet = book.add_worksheet("Results")
        bold = book.add_format({"bold": True})
        status_formats = {s: book.add_format({"bg_color": c}) for s, c in _STATUS_COLOURS.items()}
        rows = zip(*cells, strict=True) if cells else iter([()] * len(outcomes))
        sample = list(itertools.islice(rows, 500))  # column widths from the first rows
        widths = [min(max(len(h), 8), 60) for h in header]
        for row in sample:
            for j, cell in enumerate(row):
                widths[j] = min(max(widths[j], len(cell) + 1), 60)
        rows = itertools.chain(sample, rows)
        for j, w in enumerate(widths):
            sheet.set_column(j, j, w)
        sheet.write_row(0, 0, header, bold)
        first_contract = len(header) - len(RESULT_COLUMNS)
        status_col = first_contract + RESULT_COLUMNS.index("status")
        contract = zip(*contract_columns(row_numbers, outcomes), strict=True)
        for i, (row, cells_of_contract, outcome) in enumerate(
            zip(rows, contract, outcomes, strict=True), start=1
        ):
            for j, cell in enumerate(row):
                if cell:
                    sheet.write_string(i, j, cell)
            for k, cell in enumerate(cells_of_contract):
                j = first_contract + k
                if isinstance(cell, int):
                    sheet.write_number(i, j, cell)
                elif j == status_col:
                    sheet.write_string(i, j, cell, status_formats[outcome.status])
                elif cell:
                    sheet.write_string(i, j, cell)
        # Phones and IDs are text on purpose: no green "number stored as text" triangles.
        sheet.ignore_errors({"number_stored_as_text": f"A1:XFD{len(outcomes) + 1}"})
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(outcomes), len(header) - 1)
        if summary is not None:
            _write_summary_sheet(book, summary, bold)
    finally:
        book.close()


def _write_summary_sheet(book, summary: RunSummary, bold) -> None:
    sheet = book.add_worksheet("Summary")
    sheet.set_column(0, 0, 28)
    sheet.set_column(1, 1, 12)
    sheet.write_row(0, 0, ["status", "rows"], bold)
    r = 1
    for status in RowStatus:
        sheet.write_string(r, 0, str(status))
        sheet.write_number(r, 1, summary.counts[status])
        r += 1
    sheet.write_string(r, 0, "total", bold)
    sheet.write_number(r, 1, summary.total, bold)
    r += 2
    sheet.write_row(r, 0, ["error", "rows"], bold)
    for code, n in sorted(summary.error_counts.items()):
        r += 1
        sheet.write_string(r, 0, str(code))
        sheet.write_number(r, 1, n)


def write_results(
    output: str,
    columns: Sequence[str],
    cells: Sequence[Sequence[str]],
    row_numbers: Sequence[int],
    outcomes: Sequence[Outcome],
    *,
    stdout: TextIO | None = None,
    summary: RunSummary | None = None,
    bom: bool = True,
) -> None:
    """Write the results to ``output`` (``-`` = CSV on ``stdout``), atomically for files.

    ``cells`` holds the input's columns, one list per column (as :class:`Table` keeps them).
    """
    header = result_header(columns)
    fmt = output_format(output)
    if output == STDOUT:
        write_csv(stdout, header, cells, row_numbers, outcomes)
        stdout.flush()
        return
    target = Path(output)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if fmt == "csv":
            # The BOM is written by hand: Python's utf-8-sig codec is pure Python and slow.
            with open(fd, "w", encoding="utf-8", newline="", buffering=1 << 20) as fh:
                if bom:
                    fh.write("\ufeff")
                write_csv(fh, header, cells, row_numbers, outcomes)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            os.close(fd)
            write_xlsx(tmp, header, cells, row_numbers, outcomes, summary)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_STATUS_WORDS = {
    RowStatus.STARTED: N_("started"),
    RowStatus.ALREADY_IN_SERVICE: N_("already in service"),
    RowStatus.INVALID: N_("invalid"),
    RowStatus.FAILED: N_("failed"),
    RowStatus.SKIPPED: N_("skipped"),
}


def format_summary(summary: RunSummary) -> str:
    """The one line printed after a run: counts per status, time, rate, where the results went."""
    parts = [f"{summary.counts[s]:,} {_(_STATUS_WORDS[s])}" for s in RowStatus if summary.counts[s]]
    rate = summary.sent_rows / summary.elapsed if summary.elapsed > 0 else 0.0
    where = _("stdout") if summary.output == STDOUT else summary.output
    extras = []
    if summary.resumed:
        extras.append(_("{count} done by an earlier run").format(count=f"{summary.resumed:,}"))
    if summary.retries:
        extras.append(_("{count} retries").format(count=f"{summary.retries:,}"))
    if summary.pushbacks:
        extras.append(
            _("the API asked to slow down {count} times (429)").format(
                count=f"{summary.pushbacks:,}"
            )
        )
    line = _("{total} rows: {parts} in {elapsed} s ({rate} rows/s)").format(
        total=f"{summary.total:,}",
        parts=", ".join(parts) or _("nothing to do"),
        elapsed=f"{summary.elapsed:.1f}",
        rate=f"{rate:,.1f}",
    )
    return (
        line + "".join(f"; {e}" for e in extras) + ". " + _("Results: {where}").format(where=where)
    )
