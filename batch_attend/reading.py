"""Spreadsheets in, rows of text out: CSV and Excel files, header detection and column aliases.

Every cell comes back as text exactly as a person sees it. Numbers stored in a workbook come back
as their integer digits when they are whole (so a phone typed as a number keeps every digit);
nothing is ever rounded through a float of our own making.

A results file of batch-attend is a valid input: its contract columns are recognised, set apart
(:attr:`Table.results`), and the user's own columns come back under their own names.

Reading keeps its memory bounded whatever the input: a file past the limits below is refused,
most often before it is parsed, and a workbook is parsed in a child process whose memory is capped.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import json
import math
import os
import re
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from batch_attend.errors import BatchAttendError
from batch_attend.headers import HEADER_SEARCH_ROWS, fold, header_index, phone_strength
from batch_attend.i18n import N_, _
from batch_attend.outcomes import RESULT_COLUMNS

CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm", ".xls", ".ods"}
#: How a results file names an input column whose name is also a contract column.
INPUT_SUFFIX = " (input)"
#: What marks a results file: these contract columns side by side (the others of the contract
#: may follow them, or may have been deleted by the person handing the file back).
RESULT_MARK = ("row", "phone", "status")

# Limits that bound the memory of a run, whatever its input. Its memory grows with rows, cells and
# text; each limit lets the largest real spreadsheet of leads through (a full worksheet:
# 1,048,576 rows of a few columns), and each refusal names the limit passed.
#: Data rows of one run: as many as a worksheet holds.
MAX_ROWS = 1_048_576
#: Cells of the grid a file makes (rows × columns, blank ones included): each takes memory, and
#: a CSV's first line, or a workbook's farthest cell, sets the width of every row.
MAX_CELLS = 16 * 1_048_576
#: Text of the cells: a CSV file's size, or the text a workbook's cells hold once read.
MAX_TEXT_BYTES = 128 << 20
#: What a workbook's parts inflate to (as its zip directory declares them): what is parsed.
MAX_INFLATED_BYTES = 512 << 20
#: What a workbook's parser may allocate (see :func:`_read_capped`).
WORKBOOK_MEMORY = 768 << 20


class InputError(BatchAttendError):
    """The input file cannot be used; the message names the file and, where known, sheet and column."""


def cell_text(value: object) -> str:
    """One workbook cell as the text a person sees, without float rounding for whole numbers."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _where(source: Path, sheet: str | None) -> str:
    """How messages name the place: the file, and the sheet of a workbook."""
    if not sheet:
        return str(source)
    return _("{path}, sheet '{sheet}'").format(path=source, sheet=sheet)


@dataclass
class Table:
    """The data rows of one sheet, as text, with the row numbers a person sees.

    ``frame`` holds one text column per input column, labelled by position (headers may
    repeat). For a results file of batch-attend, ``results`` holds its contract columns (as
    text, row for row) and ``columns`` / ``frame`` only the user's own.
    """

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
        return _where(self.source, self.sheet)

    def __len__(self) -> int:
        return len(self.row_numbers)

    def column(self, j: int) -> pd.Series:
        return self.frame[j]


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names) if names else "(none)"


def _is_blank(row: list[str]) -> bool:
    return not "".join(row).strip()


def _size(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def _check_cells(where: str, rows: int, columns: int) -> None:
    if rows * columns > MAX_CELLS:
        raise InputError(
            _(
                "{where}: {rows} rows × {columns} columns are {cells} cells, more than the {limit} batch-attend reads. Delete the rows and columns past the data, or split the file."
            ).format(
                where=where,
                rows=f"{rows:,}",
                columns=f"{columns:,}",
                cells=f"{rows * columns:,}",
                limit=f"{MAX_CELLS:,}",
            )
        )


#: C0 control characters but tab, line feed and carriage return: no one types them in a cell,
#: and a NUL would go out inside an operator ID.
CONTROL_CHARACTERS = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _blank_cells(column: pd.Series) -> pd.Series:
    """True where a cell is empty or only white space (as Python's ``str.isspace`` sees it)."""
    return (column == "") | column.str.isspace()


def table_from_grid(
    source: Path,
    sheet: str | None,
    grid: pd.DataFrame,
    phone_column: str | None = None,
    header_row: int | None = None,
) -> Table:
    """Split a grid of text cells (no header applied) into header and data rows.

    Row numbers are 1-based grid rows, as a spreadsheet shows them. The header is found among
    the top rows by :func:`headers.header_index`; without one, the first non-blank row, and
    :func:`headers.map_columns` then explains what it found. Blank rows and columns with neither header
    nor data are dropped; row numbers keep counting them. Past :data:`MAX_ROWS` data rows, the
    table is refused. ``header_row`` (``--header-row``) names the header's row instead.
    """
    where = _where(source, sheet)
    if header_row is not None:
        if header_row > len(grid) or _is_blank(list(grid.iloc[header_row - 1])):
            raise InputError(
                _("{where}: row {row} (given by --header-row) is empty or past the end.").format(
                    where=where, row=header_row
                )
            )
        grid = grid.iloc[header_row - 1 :]
    top = [list(r) for r in grid.head(HEADER_SEARCH_ROWS).itertuples(index=False, name=None)]
    h = 0 if header_row is not None else header_index(top, phone_column)
    if h is None:
        h = next((i for i, r in enumerate(top) if not _is_blank(r)), None)
    if h is None:
        if grid.apply(_blank_cells).all(axis=None):
            raise InputError(_("{where}: the file is empty.").format(where=where))
        h = 0
    header = [cell.strip() for cell in top[h]]
    data = grid.iloc[h + 1 :]
    blank = data.apply(_blank_cells)
    keep = [j for j, name in enumerate(header) if name or not blank.iloc[:, j].all()]
    data = data.loc[~blank.iloc[:, keep].all(axis=1), data.columns[keep]]
    if data.empty:
        raise InputError(
            _("{where}: the header is there but no data rows follow it.").format(where=where)
        )
    if len(data) > MAX_ROWS:
        raise InputError(
            _(
                "{where}: {rows} data rows, more than the {limit} batch-attend takes in one run (as many as a worksheet holds). Split the file."
            ).format(where=where, rows=f"{len(data):,}", limit=f"{MAX_ROWS:,}")
        )
    names = [header[j] or f"column_{j + 1}" for j in keep]
    numbers = data.index.to_numpy() + 1  # grid rows are 0-based (the index keeps them)
    data = data.set_axis(range(len(keep)), axis=1).reset_index(drop=True)
    table = split_results(
        Table(source=source, sheet=sheet, columns=names, frame=data, row_numbers=numbers)
    )
    table.header_row = int(grid.index[h]) + 1
    return table


def refuse_control_characters(table: Table) -> None:
    """Refuse a table whose cells hold a control character, naming the first as a person finds
    it (row and column); one search per column, for every format alike."""
    columns, names = [table.frame[j] for j in table.frame.columns], list(table.columns)
    if table.results is not None:
        columns += [table.results[name] for name in table.results.columns]
        names += list(table.results.columns)
    hits = on_cores(
        lambda column: column.str.contains(CONTROL_CHARACTERS, regex=True).to_numpy(dtype=bool),
        columns,
    )
    found = [
        (int(table.row_numbers[hit.argmax()]), name, column.iloc[hit.argmax()])
        for hit, name, column in zip(hits, names, columns, strict=True)
        if hit.any()
    ]  # the first such cell of each column: (row, column name, cell)
    if found:
        row, name, cell = min(found)
        code = f"U+{ord(re.search(CONTROL_CHARACTERS, cell).group()):04X}"
        raise InputError(
            _(
                "{where}: row {row}, column '{column}' holds a control character ({code}), which no one types in a spreadsheet; the file may be damaged. Remove it and run again."
            ).format(where=table.where, row=row, column=name, code=code)
        )


def split_results(table: Table) -> Table:
    """A results file's contract columns set apart, and its input columns under their own names;
    any other table as it is.

    The contract columns are found as a run of contract names starting with ``row``, ``phone``,
    ``status``; a column added after them, or one of them deleted, does not hide the file. A
    contract column the file no longer has reads as empty.
    """
    names = table.columns
    start = next((j for j in range(len(names)) if tuple(names[j : j + 3]) == RESULT_MARK), None)
    if start is None:
        return table
    end = start
    while end < len(names) and names[end] in RESULT_COLUMNS and names[end] not in names[start:end]:
        end += 1
    own = [j for j in range(len(names)) if not start <= j < end]
    frame = table.frame
    results = pd.DataFrame(
        {name: frame[start + names[start:end].index(name)] if name in names[start:end] else ""
         for name in RESULT_COLUMNS},
        index=frame.index,
        dtype=str,
    )  # fmt: skip
    cells = frame[own].set_axis(range(len(own)), axis=1)
    columns = [names[j].removesuffix(INPUT_SUFFIX) for j in own]
    if table.source.suffix.lower() in CSV_EXTENSIONS:  # a CSV's cells were made inert
        cells = cells.apply(uninert)
        results = results.assign(
            **{c: uninert(results[c]) for c in ("attendance_number", "operators")}
        )
        columns = uninert(pd.Series(columns, dtype=str)).tolist()
    return Table(table.source, table.sheet, columns, cells, table.row_numbers, results)


def on_cores(rule, items) -> list:
    """``rule`` over each item, on a thread per core: the string work of a column rule is
    pyarrow's, which releases the GIL (on two cores, a million phones in half the time)."""
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
    """``yes`` where ``condition`` holds, else ``no``, for text columns (or one text for all).

    Through pyarrow's ``if_else``: pandas' ``mask`` and ``where`` take a slow path when they
    replace most of a column of pyarrow strings (a quarter of a second per million cells,
    where ``if_else`` takes a hundredth)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arrow(side):
        if isinstance(side, pd.Series):
            return side.astype(str).array.__arrow_array__().cast(pa.large_string())
        return pa.scalar(side, pa.large_string())

    index = next(s.index for s in (yes, no) if isinstance(s, pd.Series))
    condition = np.asarray(condition, dtype=bool)
    for side, where in ((no, not condition.any()), (yes, condition.all())):
        if where and isinstance(side, pd.Series):
            return side  # one side only: nothing to choose
    chosen = pc.if_else(pa.array(condition), arrow(yes), arrow(no))
    return pd.Series(chosen, index=index, dtype=str)


#: What a cell may start with for a spreadsheet to run it as a formula: = + - @ tab CR.
FORMULA_START = "^[=+@\t\r-]"
# Numbers, phones and IDs people expect to see unchanged: digits with masks, maybe a sign.
_NUMERIC_LOOKING = r"[+-]?[\d\s().\-/\u00a0]*\d[\d\s().\-/\u00a0]*"


def _would_run(column: pd.Series) -> pd.Series:
    """Cells a spreadsheet would run as a formula (phones and plain numbers are not)."""
    risky = column.str.contains(FORMULA_START, regex=True)
    if risky.any():
        risky[risky] = ~column[risky].str.fullmatch(_NUMERIC_LOOKING)
    return risky


def inert(column: pd.Series) -> pd.Series:
    """Text cells made safe for a CSV opened in a spreadsheet: a would-be formula gets a ``'``."""
    risky = _would_run(column)
    if not risky.any():
        return column
    column = column.copy()
    column[risky] = "'" + column[risky]
    return column


def uninert(column: pd.Series) -> pd.Series:
    """:func:`inert` undone, for the cells of a CSV results file handed back."""
    quoted = column.str.startswith("'")
    if not quoted.any():
        return column
    undone = column.copy()
    undone[quoted] = column[quoted].str.slice(1)
    quoted[quoted] = _would_run(undone[quoted])
    column = column.copy()
    column[quoted] = undone[quoted]
    return column


# --- what the file really is -------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_MARK = "EncryptedPackage".encode("utf-16-le")
# An .xls with a password: its workbook globals' BOF, then a FilePass record (MS-XLS 2.4.117).
_FILEPASS = re.compile(rb"\x09\x08\x10\x00\x00\x06\x05\x00.{12}(?:\x86\x00\x00\x00)?\x2f\x00", re.S)
_WORKBOOK_TYPE = re.compile(rb"(?:spreadsheetml|ms-excel)\.(?:sheet|template)[.\w]*main\+xml")
_KIND_NAMES = {
    "text": N_("a text (CSV) file"),
    "xlsx": N_("an Excel workbook (.xlsx)"),
    "xls": N_("an Excel 97-2003 workbook (.xls)"),
    "ods": N_("an OpenDocument spreadsheet (.ods)"),
    "html": N_("an HTML page"),
    "zip": N_("a ZIP archive"),
    "binary": N_("a binary file"),
}
_EXPECTED_KIND = {
    ".csv": "text", ".txt": "text", ".tsv": "text",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".ods": "ods",
}  # fmt: skip
_RENAME_TO = {"text": ".csv", "xlsx": ".xlsx", "xls": ".xls", "ods": ".ods"}


def content_kind(path: Path) -> str:
    """What the bytes say the file is, whatever its name says: text, xlsx, xls, ods, encrypted..."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if head.startswith(b"PK\x03\x04"):  # by the content types it declares, not its parts' places
        try:
            with zipfile.ZipFile(path) as archive:
                parts = {name.replace("\\", "/").lstrip("/"): name for name in archive.namelist()}

                def part(name: str) -> bytes:  # its first MiB
                    return archive.open(parts[name]).read(1 << 20) if name in parts else b""

                if _WORKBOOK_TYPE.search(part("[Content_Types].xml")):
                    return "xlsx"
                if part("mimetype").strip() == b"application/vnd.oasis.opendocument.spreadsheet":
                    locked = b"encryption-data" in part("META-INF/manifest.xml")
                    return "encrypted" if locked else "ods"
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error):
            pass
        return "zip"
    if head.startswith(_OLE_MAGIC):  # an .xls, or a password-protected .xlsx (EncryptedPackage)
        with open(path, "rb") as fh:
            data = fh.read(64 << 20)
        return "encrypted" if _ENCRYPTED_MARK in data or _FILEPASS.search(data) else "xls"
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<table")):
        return "html"
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    return "binary" if b"\x00" in head and not utf16 else "text"


def _check_content(path: Path, ext: str) -> str:
    kind = content_kind(path)
    if kind == "encrypted":
        raise InputError(
            _(
                "{path}: the workbook is password-protected. Open it in Excel, remove the password (File > Info > Protect Workbook), save, and run again."
            ).format(path=path)
        )
    if kind == _EXPECTED_KIND[ext]:
        return kind
    what = _(_KIND_NAMES.get(kind, N_("something else")))
    hint = (
        _(" Rename it to {extension}.").format(extension=_RENAME_TO[kind])
        if kind in _RENAME_TO
        else _(" Open it in a spreadsheet program and save it as .xlsx or .csv.")
    )
    raise InputError(
        _("{path}: the name says {ext} but the content is {what}.{hint}").format(
            path=path, ext=ext, what=what, hint=hint
        )
    )


# --- CSV ---------------------------------------------------------------------------------------

CSV_SAMPLE_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")


#: What a non-UTF-8 CSV from Brazil is written in: Windows Excel (cp1252, a superset of Latin-1
#: for what cells hold), then DOS (cp850) and old Macs.
LEGACY_ENCODINGS = ("cp1252", "cp850", "mac_roman")
#: The letters such text has beyond ASCII: the decoding that yields the most of them, and the
#: fewest other characters, is the file's.
PORTUGUESE_LETTERS = frozenset("áàâãéêíóôõúüçÁÀÂÃÉÊÍÓÔÕÚÜÇºª")


def detect_encoding(raw: bytes) -> str:
    """The encoding of a CSV sample: a BOM wins, then UTF-8 if it decodes, then whichever of
    :data:`LEGACY_ENCODINGS` turns its other bytes into Portuguese letters (a general
    detector, on a few lines, takes ``ção`` in cp1252 for a DOS or Mac code page); cp1252 when
    none does better."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    high = re.sub(rb"[\x00-\x7f]+", b"", raw[:262144])  # only the bytes that differ between them

    def score(encoding: str) -> int:
        text = high.decode(encoding, "replace")
        letters = sum(ch in PORTUGUESE_LETTERS for ch in text)
        return 2 * letters - len(text)

    return max(LEGACY_ENCODINGS, key=score)  # max keeps the first of equals: cp1252


def field_counts(text: str, delimiter: str) -> Counter:
    """How many records of ``text`` have each number of fields under ``delimiter`` (records
    whose fields are all empty do not count)."""
    counts: Counter = Counter()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for record in reader:
            if any(record):
                counts[len(record)] += 1
    except csv.Error:
        pass  # a sample cut inside a quoted field: what was counted still tells
    return counts


def sniff_delimiter(sample: str) -> str:
    """The delimiter under which the largest share of sample records has the same number (> 1)
    of fields; among equals, the one giving more fields.

    Counting consistent rows is steadier than :class:`csv.Sniffer` on files whose values hold
    commas (addresses, names) or that begin with a title line.
    """
    text = sample[:65536]
    if "\n" in text.rstrip("\r\n"):
        text = text[: text.rfind("\n") + 1]  # the sample may have cut the last line in two
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        counts = field_counts(text, delimiter)
        if not counts:
            continue
        width, count = counts.most_common(1)[0]
        # The share of records that agree, not their number: a wrong delimiter can cut a quoted
        # field with a line break into more (but fewer agreeing) records than the right one.
        score = (round(count / sum(counts.values()), 2), width) if width > 1 else (0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def line_count(path: Path) -> int:
    """The lines of a file, a last one without a line break included: at least its records."""
    count, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def read_csv_grid(
    path: Path, encoding: str | None, delimiter: str | None
) -> tuple[pd.DataFrame, str]:
    """Every record of a CSV file as text cells, blank lines included (row numbers count them),
    and the delimiter they were split on (the results reuse it).

    Refused before parsing: a file past :data:`MAX_TEXT_BYTES` (the parser holds all of its text,
    which also bounds any one cell), or whose lines times its width pass :data:`MAX_CELLS`.
    """
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InputError(
            _(
                "{path}: the file is {size}, more than the {limit} batch-attend reads from a CSV file. Split it into smaller files."
            ).format(path=path, size=_size(size), limit=_size(MAX_TEXT_BYTES))
        )
    with open(path, "rb") as fh:
        raw = fh.read(CSV_SAMPLE_BYTES)
    if not raw.strip():
        raise InputError(_("{path}: the file is empty.").format(path=path))
    chosen = encoding or detect_encoding(raw)
    try:
        sample = raw.decode(chosen, errors="ignore")
    except LookupError as exc:
        raise InputError(
            _("{path}: unknown encoding '{chosen}' (given by --encoding).").format(
                path=path, chosen=chosen
            )
        ) from exc
    sep = delimiter or sniff_delimiter(sample)
    # Name the columns up front: the parser would otherwise take the field count of the first
    # line, which may be a one-cell title above the real header.
    width = max(field_counts(sample, sep) or [1])
    _check_cells(str(path), line_count(path), width)
    try:
        grid = pd.read_csv(
            path,
            sep=sep,
            header=None,
            names=range(width),
            index_col=False,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding=chosen,
            encoding_errors="strict",
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(_("{path}: the file is empty.").format(path=path)) from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().replace("\n", " ")
        raise InputError(
            _(
                "{path}: not a well-formed CSV file with '{sep}' as delimiter ({detail}). Check that quotes are closed, or give the delimiter with --delimiter."
            ).format(path=path, sep=_show(sep), detail=detail)
        ) from exc
    except UnicodeDecodeError as exc:
        how = _("given by --encoding") if encoding else _("detected")
        raise InputError(
            _(
                "{path}: cannot be read as {chosen} ({how}): {reason} at byte {start}. Give the right one with --encoding (for example --encoding cp1252 or latin-1)."
            ).format(path=path, chosen=chosen, how=how, reason=exc.reason, start=exc.start)
        ) from exc
    return grid, sep


def _show(delimiter: str) -> str:
    return {"\t": "tab"}.get(delimiter, delimiter)


# --- workbooks ---------------------------------------------------------------------------------


def _open_book(path: Path):
    try:
        return pd.ExcelFile(path, engine="calamine")
    except Exception as exc:  # calamine raises its own types for damaged files
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            try:  # some writers produce workbooks only openpyxl accepts
                return pd.ExcelFile(path, engine="openpyxl")
            except Exception:
                pass
        raise _damaged(path, exc) from exc


def check_inflated(path: Path, kind: str) -> None:
    """Refuse, before it is parsed, a workbook whose parts would inflate past
    :data:`MAX_INFLATED_BYTES`: the sizes its zip directory declares for all of its members, or
    the file's own size for an .xls (not compressed). The zip readers of calamine and Python stop
    at a member's declared size (a member inflating further is a damaged file), so the declared
    sizes bound what is parsed; the text of one huge cell is part of it."""
    if kind == "xls":
        size = path.stat().st_size
    else:
        with zipfile.ZipFile(path) as archive:
            size = sum(member.file_size for member in archive.infolist())
    if size > MAX_INFLATED_BYTES:
        raise InputError(
            _(
                "{path}: the workbook would inflate to {size} when opened, more than the {limit} batch-attend reads. Split it into smaller files; a workbook of leads is far smaller, so this one may be damaged."
            ).format(path=path, size=_size(size), limit=_size(MAX_INFLATED_BYTES))
        )


def _damaged(path: Path, exc: Exception) -> InputError:
    return InputError(
        _(
            "{path}: cannot be opened as a workbook; it may be damaged ({exc}). Open it in a spreadsheet program and save it again."
        ).format(path=path, exc=exc)
    )


def _sheet_grid(book, path: Path, name: str, nrows: int | None = None) -> pd.DataFrame:
    """A sheet's cells as text from A1: numbers, dates and booleans as :func:`cell_text` shows
    them. A whole sheet past :data:`MAX_CELLS` or :data:`MAX_TEXT_BYTES` is refused."""
    where = _where(path, name)
    if book.engine == "calamine":
        try:
            sheet = book.book.get_sheet_by_name(name)
        except MemoryError:
            raise
        except Exception as exc:  # calamine raises its own types for damaged parts
            raise _damaged(path, exc) from exc
        grid = _calamine_grid(where, sheet, nrows)
    else:
        frame = pd.read_excel(
            book, sheet_name=name, header=None, dtype=object, na_filter=False, nrows=nrows
        )
        grid = frame.apply(lambda column: column.map(cell_text).astype(str))
        if nrows is None:
            _check_cells(where, *grid.shape)
    if nrows is None and (text := _text_bytes(grid)) > MAX_TEXT_BYTES:
        raise InputError(
            _(
                "{where}: the cells hold {size} of text, more than the {limit} batch-attend reads. Split the file."
            ).format(where=where, size=_size(text), limit=_size(MAX_TEXT_BYTES))
        )
    return grid


def _text_bytes(grid: pd.DataFrame) -> int:
    import pyarrow.compute as pc

    lengths = (pc.binary_length(grid[j].array.__arrow_array__()) for j in grid.columns)
    return sum(pc.sum(length).as_py() or 0 for length in lengths)


#: Rows of a sheet turned into text at a time.
BLOCK_ROWS = 65536


def _sheet_text(value: object) -> str:
    """:func:`cell_text` of a calamine value; a whole float as its integer digits at any size,
    as pandas' reader gives it."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return cell_text(value)


def _calamine_grid(where: str, sheet, nrows: int | None = None) -> pd.DataFrame:
    """A calamine sheet's cells as text from A1, a block of rows at a time: the Python values of
    a whole sheet at once (as pandas' reader holds them) take several times the memory of its
    text. Past :data:`MAX_CELLS`, refused before any is turned into text."""
    import pyarrow as pa

    if sheet.start is None:
        return pd.DataFrame()
    left, height, width = sheet.start[1], sheet.end[0] + 1, sheet.end[1] + 1
    if nrows is None:
        _check_cells(where, height, width)
    else:
        height = min(height, nrows)
    rows = itertools.islice(sheet.iter_rows(), height)  # from row 1, but from the first column used
    parts: list[list] = [[] for _ in range(left, width)]
    while block := list(itertools.islice(rows, BLOCK_ROWS)):
        for part, cells in zip(parts, zip(*block, strict=True), strict=True):
            text = [v if type(v) is str else _sheet_text(v) for v in cells]
            part.append(pa.array(text, pa.large_string()))
    columns = [pd.Series("", index=range(height), dtype=str)] * left
    columns += [pd.Series(pa.chunked_array(part, pa.large_string()), dtype=str) for part in parts]
    return pd.DataFrame(dict(enumerate(columns)))


def _data_size() -> int:
    """This process's data segment (what RLIMIT_DATA limits), in bytes."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmData:"))
    return int(line.split()[1]) * 1024


def _read_capped(path: Path, read):
    """``read()`` (a workbook's sheet name and grid) in a forked child whose data segment may
    grow by :data:`WORKBOOK_MEMORY` at most; the grid comes back through a pipe as Arrow.

    Calamine fills every cell between A1 and the farthest one used, and gives each cell its own
    copy of a shared string, so a workbook of a few KiB can ask for any amount of memory; an
    allocation that fails aborts the process. In the child, that is a refusal (exit 2). Where
    Linux's fork and limits are missing, ``read()`` runs in this process.
    """
    try:
        import resource
    except ImportError:
        return read()
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return read()
    import faulthandler

    import pyarrow as pa

    readable, writable = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns of fork beside threads: the child only reads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: read, answer, and leave at once whatever happens
        try:
            os.close(readable)
            faulthandler.disable()  # an allocation that fails aborts: expected here, and
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # its last words are no one's business
            pa.set_memory_pool(pa.system_memory_pool())  # jemalloc reserves far more than it uses
            _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
            limit = _data_size() + WORKBOOK_MEMORY
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
            with open(writable, "wb") as pipe:
                table = None
                try:
                    name, grid = read()
                    table = pa.Table.from_pandas(grid, preserve_index=False)
                    answer = {"name": name}
                except InputError as exc:
                    answer = {"input_error": str(exc)}
                except MemoryError:
                    answer = {"memory_error": True}
                except BaseException as exc:
                    answer = {"error": f"{type(exc).__name__}: {exc}"}
                pipe.write(json.dumps(answer).encode() + b"\n")
                if table is not None:
                    with pa.ipc.new_stream(pipe, table.schema) as stream:
                        stream.write_table(table)
        finally:
            os._exit(0)
    os.close(writable)
    status = None
    try:
        with open(readable, "rb") as pipe:
            try:
                answer = json.loads(pipe.readline())
                if "name" in answer:
                    table = pa.ipc.open_stream(pipe).read_all()
            except (ValueError, pa.ArrowInvalid):
                answer = {"memory_error": True}  # the child died: an allocation failed
        status = os.waitpid(pid, 0)[1]
    finally:
        if status is None:  # interrupted: the child goes too
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    if "input_error" in answer:
        raise InputError(answer["input_error"])
    if "error" in answer:
        raise RuntimeError(answer["error"])
    if "memory_error" in answer:
        raise InputError(
            _(
                "{path}: reading the workbook needs more than the {limit} of memory batch-attend allows: a sheet's cells may reach far past its data, or one long text may fill many cells. Open it in a spreadsheet program, delete the rows and columns past the data, and save it again."
            ).format(path=path, limit=_size(WORKBOOK_MEMORY))
        )
    columns = [pd.Series(table.column(j), dtype=str) for j in range(table.num_columns)]
    return answer["name"], pd.DataFrame(dict(enumerate(columns)))


#: Rows read from each sheet of a workbook to find the one holding the leads.
SHEET_SAMPLE_ROWS = 200
_PHONE_LIKE = re.compile(r"\D*(?:\d\D{0,3}){8,}")  # eight digits or more, masks between


def _phones_below_header(top: list[list[str]], phone_column: str | None) -> int:
    """How many rows under the header of these top rows hold something like a phone in a phone
    column (-1: no header names a phone)."""
    h = header_index(top[:HEADER_SEARCH_ROWS], phone_column)
    if h is None:
        return -1
    names = [fold(c) for c in top[h]]
    strength = [
        int(name == fold(phone_column)) if phone_column else phone_strength(name) for name in names
    ]
    columns = [j for j, s in enumerate(strength) if s and s == max(strength)]
    return sum(any(_PHONE_LIKE.fullmatch(row[j]) for j in columns) for row in top[h + 1 :])


def read_excel_grid(
    path: Path, sheet: str | int | None, phone_column: str | None = None
) -> tuple[str, pd.DataFrame]:
    """The chosen sheet as a grid of text: ``sheet`` if given, else the sheet whose rows hold
    the most phones under a phone header (an instructions tab that mentions a phone is passed
    over for the leads that follow it)."""
    book = _open_book(path)
    with book:
        names = [str(n) for n in book.sheet_names]
        if not names:
            raise InputError(_("{path}: the workbook has no sheets.").format(path=path))
        if sheet is not None:
            name = _choose_sheet(path, names, sheet)
            return name, _sheet_grid(book, path, name)
        if len(names) == 1:
            return names[0], _sheet_grid(book, path, names[0])
        seen, found = [], {}
        for name in names:
            grid = _sheet_grid(book, path, name, SHEET_SAMPLE_ROWS)
            top = [list(r) for r in grid.itertuples(index=False, name=None)]
            found[name] = _phones_below_header(top, phone_column)
            first = next((r for r in top if not _is_blank(r)), [])
            seen.append(f"'{name}' ({_quoted([c for c in first if c.strip()][:6])})")
        best = max(names, key=found.__getitem__)  # max keeps the first of equals
        if found[best] >= 0:
            return best, _sheet_grid(book, path, best)
    raise InputError(
        _(
            "{path}: no sheet has a phone column in its first {HEADER_SEARCH_ROWS} rows. Sheets seen: {seen}. Choose one with --sheet and name the column with --phone-column."
        ).format(path=path, HEADER_SEARCH_ROWS=HEADER_SEARCH_ROWS, seen="; ".join(seen))
    )


def sheet_names(path: str | Path) -> list[str]:
    """A workbook's sheets in order, for a person choosing one (the web page); none for a CSV.
    Only the workbook's directory is read, once :func:`check_inflated` passes it."""
    path = Path(path)
    kind = _check_content(path, path.suffix.lower())
    if kind == "text":
        return []
    check_inflated(path, kind)
    with _open_book(path) as book:
        return [str(n) for n in book.sheet_names]


def _choose_sheet(path: Path, names: list[str], sheet: str | int) -> str:
    if sheet in names:
        return str(sheet)
    text = str(sheet).strip()
    if text.isdigit():
        index = int(text)
        if 1 <= index <= len(names):
            return names[index - 1]
    folded = [fold(n) for n in names]
    if fold(text) in folded:
        return names[folded.index(fold(text))]
    raise InputError(
        _("{path}: no sheet '{sheet}'. Sheets: {names}.").format(
            path=path, sheet=sheet, names=_quoted(names)
        )
    )


def read_table(
    path: str | Path,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    phone_column: str | None = None,
    header_row: int | None = None,
) -> Table:
    """Read a CSV or spreadsheet file into a :class:`Table` of text cells.

    The content must match the extension; the header is found by the phone column
    (``phone_column`` when given, else the aliases). A workbook is parsed in a capped child
    process (:func:`_read_capped`) once :func:`check_inflated` passes it; a control character in
    any cell refuses the file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(_("{path}: no such file.").format(path=path))
    if path.is_dir():
        raise InputError(_("{path}: is a folder, not a spreadsheet.").format(path=path))
    ext = path.suffix.lower()
    if ext not in _EXPECTED_KIND:
        raise InputError(
            _("{path}: unknown file type '{value}'. Use one of {join}.").format(
                path=path,
                value=ext or "(none)",
                join=", ".join(sorted(CSV_EXTENSIONS | EXCEL_EXTENSIONS)),
            )
        )
    if path.stat().st_size == 0:
        raise InputError(_("{path}: the file is empty.").format(path=path))
    kind = _check_content(path, ext)
    if kind == "text":
        grid, delimiter = read_csv_grid(path, encoding, delimiter)
        table = table_from_grid(path, None, grid, phone_column, header_row)
        table.delimiter = delimiter
    else:
        check_inflated(path, kind)
        name, grid = _read_capped(path, lambda: read_excel_grid(path, sheet, phone_column))
        table = table_from_grid(path, name, grid, phone_column, header_row)
    refuse_control_characters(table)
    return table


#: INPUT that means standard input, and how messages name it.
STDIN = Path("-")
STDIN_NAME = "<stdin>"
#: Bytes of standard input copied at a time.
_SPOOL_CHUNK = 1 << 20


def read_stdin_table(stream: BinaryIO, **options) -> Table:
    """:func:`read_table` of the bytes of ``stream`` (standard input), which has no name: they
    are read once into a file in a private temp folder, named by what they are (there is no
    extension to go by), and that folder is removed whatever happens. Messages name the input
    ``<stdin>``."""
    with tempfile.TemporaryDirectory(prefix="batch-attend-") as folder:
        spooled = Path(folder) / "stdin"
        _spool(stream, spooled)
        kind = content_kind(spooled)
        suffix = {**_RENAME_TO, "encrypted": ".xlsx"}.get(kind)
        if suffix is None:
            raise InputError(
                _(
                    "{path}: the content is {what}, not a CSV file or a workbook. Open it in a spreadsheet program and save it as .xlsx or .csv."
                ).format(path=STDIN_NAME, what=_(_KIND_NAMES.get(kind, N_("something else"))))
            )
        path = spooled.rename(spooled.with_suffix(suffix))
        try:
            table = read_table(path, **options)
        except InputError as exc:  # its messages name the temp file, which no one knows
            raise InputError(str(exc).replace(str(path), STDIN_NAME)) from exc
    table.source = Path(STDIN_NAME)
    return table


def _spool(stream: BinaryIO, path: Path) -> None:
    """Copy ``stream`` into a new file at ``path``, refusing it past the size a CSV file (or,
    when its first bytes are a workbook's, a workbook) may have: no more is read than that."""
    with open(path, "xb") as fh:
        chunk = stream.read(_SPOOL_CHUNK)
        workbook = chunk.startswith((b"PK\x03\x04", _OLE_MAGIC))
        limit = MAX_INFLATED_BYTES if workbook else MAX_TEXT_BYTES
        size = 0
        while chunk:
            size += len(chunk)
            if size > limit:
                message = (
                    _(
                        "{path}: more than the {limit} batch-attend reads from a workbook came on standard input. Split it into smaller files."
                    )
                    if workbook
                    else _(
                        "{path}: more than the {limit} batch-attend reads from a CSV file came on standard input. Split it into smaller files."
                    )
                )
                raise InputError(message.format(path=STDIN_NAME, limit=_size(limit)))
            fh.write(chunk)
            chunk = stream.read(_SPOOL_CHUNK)
