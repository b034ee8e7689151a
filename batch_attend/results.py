"""The results file and the one-line summary.

One output row per input row, in input order: the original columns as they were, then the contract
columns. Files appear atomically (temp file in the same folder, then rename), so a reader never
sees half a file, and no cell is ever written in a form a spreadsheet would run as a formula.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

import polars as pl

from batch_attend.errors import BatchAttendError
from batch_attend.i18n import N_, _
from batch_attend.leads import OPERATORS_JOINER
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


#: Every row's outcome before it is written: the contract columns, with the error code and
#: message apart (the summary counts codes; the file shows ``code: message``).
OUTCOME_SCHEMA = {
    "row": pl.Int64,
    "phone": pl.String,
    "status": pl.String,
    "attendance_number": pl.String,
    "operators": pl.String,
    "http_status": pl.Int64,
    "error_code": pl.String,
    "error_message": pl.String,
    "attempts": pl.Int64,
}


_OUTCOME_FIELDS = {  # how each column but ``row`` is read off an Outcome
    "phone": lambda o: o.phone,
    "status": lambda o: o.status.value,
    "attendance_number": lambda o: o.attendance_number,
    "operators": lambda o: ", ".join(o.operators),
    "http_status": lambda o: o.http_status,
    "error_code": lambda o: str(o.error_code),
    "error_message": lambda o: o.error_message,
    "attempts": lambda o: o.attempts,
}


def _outcome_series(name: str, outcomes: Sequence[Outcome]) -> pl.Series:
    """One column of ``OUTCOME_SCHEMA`` from outcome objects (one column at a time keeps a
    million rows' worth of Python values from all being alive at once)."""
    return pl.Series(name, list(map(_OUTCOME_FIELDS[name], outcomes)), dtype=OUTCOME_SCHEMA[name])


def outcome_frame(plan: pl.DataFrame, outcomes: Sequence[Outcome | None]) -> pl.DataFrame:
    """Every row's outcome (``OUTCOME_SCHEMA``): the :class:`Outcome` a row got, where it got one
    (sent, or done by an earlier run), else what the plan decided for it before sending."""
    if len(outcomes) != plan.height:
        raise ValueError(f"{len(outcomes)} outcomes for {plan.height} rows")
    invalid = pl.col("status") == str(RowStatus.INVALID)
    frame = plan.select(
        "row",
        phone=pl.when(invalid).then(pl.lit("")).otherwise(pl.col("phone").fill_null("")),
        status="status",
        attendance_number=pl.lit(""),
        operators=pl.when(invalid)
        .then(pl.lit(""))
        .otherwise(pl.col("operators").str.replace_all(OPERATORS_JOINER, ", ", literal=True)),
        http_status=pl.lit(None, pl.Int64),
        error_code=pl.col("error_code").fill_null(""),
        error_message=pl.col("error_message").fill_null(""),
        attempts=pl.lit(0, pl.Int64),
    )
    where = [i for i, o in enumerate(outcomes) if o is not None]
    if where:
        index = pl.Series(where, dtype=pl.Int64)
        got = [outcomes[i] for i in where]
        for name in _OUTCOME_FIELDS:
            column = frame.get_column(name).clone().scatter(index, _outcome_series(name, got))
            frame = frame.with_columns(column)
    if frame.get_column("status").null_count():
        raise ValueError("a row has no outcome")  # never write a results file with a gap
    return frame


def outcomes_of(frame: pl.DataFrame) -> list[Outcome]:
    """The rows of an outcome frame as :class:`Outcome` objects (for library callers)."""
    return [
        Outcome(
            RowStatus(status),
            phone=phone,
            attendance_number=attendance,
            operators=tuple(operators.split(", ")) if operators else (),
            http_status=http_status,
            error_code=code,
            error_message=message,
            attempts=attempts,
        )
        for _, phone, status, attendance, operators, http_status, code, message, attempts in (
            frame.iter_rows()
        )
    ]


def contract_frame(inputs: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """What is written: the input columns as read, then the contract columns in order."""
    code, message = pl.col("error_code"), pl.col("error_message")
    error = (
        pl.when(code == "")
        .then(pl.lit(""))
        .when(message == "")
        .then(code)
        .otherwise(code + pl.lit(": ") + message)
    )
    contract = outcomes.select(
        error.alias(c) if c == "error" else pl.col(c) for c in RESULT_COLUMNS
    )
    inputs = inputs.rename({name: input_name(j) for j, name in enumerate(inputs.columns)})
    return pl.concat([inputs, contract], how="horizontal")


def input_name(j: int) -> str:
    """The name of input column ``j`` inside a results frame (input headers may repeat or clash
    with contract names; the header row is written from the real names)."""
    return f"input {j}"


def results_frame(
    cells: Sequence[Sequence[str]], row_numbers: Sequence[int], outcomes: Sequence[Outcome]
) -> pl.DataFrame:
    """Input columns (``cells``, column-major), then the contract columns, one row per outcome."""
    if len(row_numbers) != len(outcomes):
        raise ValueError(f"{len(row_numbers)} row numbers for {len(outcomes)} outcomes")
    for column in cells:
        if len(column) != len(outcomes):
            raise ValueError(f"a column of {len(column)} cells for {len(outcomes)} outcomes")
    inputs = pl.DataFrame([pl.Series(str(j), c, dtype=pl.String) for j, c in enumerate(cells)])
    frame = pl.DataFrame(
        [
            pl.Series("row", row_numbers, dtype=pl.Int64),
            *(_outcome_series(name, outcomes) for name in _OUTCOME_FIELDS),
        ]
    )
    return contract_frame(inputs, frame)


_FORMULA_PREFIX = r"^[=+\-@\t\r]"


def inert_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """:func:`inert` over every text cell; one vectorised test per column finds the few cells that
    start like a formula, and only those go through :func:`inert` (the one definition)."""
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        column = frame.get_column(name)
        suspects = column.str.contains(_FORMULA_PREFIX).fill_null(False)
        if not suspects.any():
            continue
        where = suspects.arg_true()
        fixed = [inert(v) for v in column.gather(where).to_list()]
        frame = frame.with_columns(column.clone().scatter(where, fixed))
    return frame


def write_csv(stream: BinaryIO | TextIO, header: Sequence[str], frame: pl.DataFrame) -> None:
    """CSV as Python's csv module writes it (minimal quoting, CRLF), at polars' speed.

    polars quotes an empty string (to tell it from a missing value) where the csv module does
    not, so empty cells are written as missing ones; a hypothesis test in test_results.py holds
    the two writers equal, byte for byte.
    """
    line = io.StringIO()
    csv.writer(line, lineterminator="\r\n").writerow([inert(h) for h in header])
    frame = inert_frame(frame).with_columns(
        pl.when(pl.col(name) != "").then(pl.col(name)).alias(name)
        for name, dtype in frame.schema.items()
        if dtype == pl.String
    )
    options = {
        "include_header": False,
        "line_terminator": "\r\n",
        "quote_style": "necessary",
        "null_value": "",
    }
    if isinstance(stream, io.TextIOBase):
        stream.write(line.getvalue())
        stream.write(frame.write_csv(None, **options))
    else:
        stream.write(line.getvalue().encode("utf-8"))
        frame.write_csv(stream, **options)


_STATUS_COLOURS = {
    RowStatus.STARTED: "#C6EFCE",
    RowStatus.ALREADY_IN_SERVICE: "#BDD7EE",
    RowStatus.FAILED: "#FFC7CE",
    RowStatus.SKIPPED: "#D9D9D9",
    RowStatus.INVALID: "#FFEB9C",
}


def write_xlsx(
    path: str, header: Sequence[str], frame: pl.DataFrame, summary: RunSummary | None
) -> None:
    """Every text cell is written as text (phones and IDs stay digits, formulas stay inert)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(
        path, {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    try:
        sheet = book.add_worksheet("Results")
        bold = book.add_format({"bold": True})
        status_formats = {
            str(s): book.add_format({"bg_color": c}) for s, c in _STATUS_COLOURS.items()
        }
        widths = [min(max(len(h), 8), 60) for h in header]
        for row in frame.head(500).iter_rows():  # column widths from the first rows
            for j, cell in enumerate(row):
                if isinstance(cell, str):
                    widths[j] = min(max(widths[j], len(cell) + 1), 60)
        for j, w in enumerate(widths):
            sheet.set_column(j, j, w)
        sheet.write_row(0, 0, header, bold)
        status_col = frame.columns.index("status")
        for i, row in enumerate(frame.iter_rows(), start=1):
            for j, cell in enumerate(row):
                if cell is None or cell == "":
                    continue
                if isinstance(cell, int):
                    sheet.write_number(i, j, cell)
                elif j == status_col:
                    sheet.write_string(i, j, cell, status_formats[cell])
                else:
                    sheet.write_string(i, j, cell)
        # Phones and IDs are text on purpose: no green "number stored as text" triangles.
        sheet.ignore_errors({"number_stored_as_text": f"A1:XFD{frame.height + 1}"})
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, frame.height, len(header) - 1)
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
    cells: Sequence[Sequence[str]] | pl.DataFrame,
    row_numbers: Sequence[int] | None = None,
    outcomes: Sequence[Outcome] | None = None,
    *,
    stdout: TextIO | None = None,
    summary: RunSummary | None = None,
    bom: bool = True,
) -> None:
    """Write the results to ``output`` (``-`` = CSV on ``stdout``), atomically for files.

    Either ``cells`` (the input's columns, one list per column), ``row_numbers`` and one
    outcome per row, or a ready results frame (see :func:`results_frame`) in place of ``cells``.
    """
    header = result_header(columns)
    fmt = output_format(output)
    if isinstance(cells, pl.DataFrame):
        frame = cells
    else:
        frame = results_frame(cells, row_numbers or [], outcomes or [])
    if len(header) != frame.width:
        raise ValueError(f"{len(header)} header names for {frame.width} columns")
    if output == STDOUT:
        write_csv(stdout, header, frame)
        stdout.flush()
        return
    target = Path(output)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if fmt == "csv":
            with open(fd, "wb", buffering=1 << 20) as fh:
                if bom:
                    fh.write(codecs.BOM_UTF8)
                write_csv(fh, header, frame)
                fh.flush()
                os.fsync(fh.fileno())
        else:
            os.close(fd)
            write_xlsx(tmp, header, frame, summary)
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
