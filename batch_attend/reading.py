"""Spreadsheets in, rows of text out: CSV and Excel files, header detection and column aliases.

Every cell comes back as text exactly as a person sees it. Numbers stored in a workbook come back
as their integer digits when they are whole (so a phone typed as a number keeps every digit);
nothing is ever rounded through a float of our own making.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from batch_attend.errors import BatchAttendError

#: How many rows from the top of a sheet may hold a title or notes above the header.
HEADER_SEARCH_ROWS = 20
CSV_EXTENSIONS = {".csv", ".txt", ".tsv"}
EXCEL_EXTENSIONS = {".xlsx", ".xlsm", ".xls", ".ods"}

# Header aliases, compared after folding case, accents, spaces and punctuation (see ``fold``).
PHONE_ALIASES = (
    "phone",
    "telefone",
    "celular",
    "whatsapp",
    "numero",
    "fone",
    "phonenumber",
    "mobile",
    "cel",
    "tel",
    "telefonecelular",
    "numerowhatsapp",
    "numerodowhatsapp",
    "numerodetelefone",
    "whatsappnumber",
    "contato",
)
OPERATOR_ALIASES = (
    "operators",
    "operadores",
    "operator",
    "operador",
    "operatorid",
    "operatorids",
    "operadorid",
    "operadorids",
    "idoperador",
    "idsoperadores",
    "idoperadores",
)
DEPARTMENT_ALIASES = (
    "department",
    "departamento",
    "departmentid",
    "departamentoid",
    "iddepartamento",
    "setor",
    "dept",
)


class InputError(BatchAttendError):
    """The input file cannot be used; the message names the file and, where known, sheet and column."""


def fold(name: str) -> str:
    """Fold a header for matching: no case, no accents, no spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(
        ch for ch in decomposed.casefold() if ch.isalnum() and not unicodedata.combining(ch)
    )


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


@dataclass
class Table:
    """The data rows of one sheet, as text, with the row numbers a person sees."""

    source: Path
    sheet: str | None
    columns: list[str]
    rows: list[list[str]]
    row_numbers: list[int]

    @property
    def where(self) -> str:
        return f"{self.source}" + (f", sheet '{self.sheet}'" if self.sheet else "")


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what; operators and department columns are optional."""

    phone: int
    operators: int | None
    department: int | None


def _find_column(
    table: Table, role: str, aliases: tuple[str, ...], override: str | None, option: str
) -> int | None:
    folded = [fold(c) for c in table.columns]
    if override is not None:
        if override in table.columns:
            return table.columns.index(override)
        if fold(override) in folded:
            return folded.index(fold(override))
        raise InputError(
            f"{table.where}: no column named '{override}' (given by {option}). "
            f"Columns seen: {_quoted(table.columns)}."
        )
    found = [i for i, name in enumerate(folded) if name in aliases]
    if len(found) > 1:
        names = _quoted([table.columns[i] for i in found])
        raise InputError(
            f"{table.where}: several columns could hold the {role}: {names}. "
            f"Choose one with {option}."
        )
    return found[0] if found else None


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names) if names else "(none)"


def map_columns(
    table: Table,
    phone_column: str | None = None,
    operators_column: str | None = None,
    department_column: str | None = None,
) -> ColumnMap:
    """Find the phone, operators and department columns by alias, or by the names given."""
    phone = _find_column(table, "phone", PHONE_ALIASES, phone_column, "--phone-column")
    if phone is None:
        raise InputError(
            f"{table.where}: no phone column found. Columns seen: {_quoted(table.columns)}. "
            f"Accepted names: {', '.join(PHONE_ALIASES[:6])} (any case or accents), "
            "or name it with --phone-column."
        )
    operators = _find_column(
        table, "operators", OPERATOR_ALIASES, operators_column, "--operators-column"
    )
    department = _find_column(
        table, "department", DEPARTMENT_ALIASES, department_column, "--department-column"
    )
    return ColumnMap(phone=phone, operators=operators, department=department)


def _is_blank(row: list[str]) -> bool:
    return all(not c.strip() for c in row)


def _header_index(grid: list[list[str]]) -> int:
    """The header is the first row (among the first few) naming a phone column, else the first
    non-blank row: titles and notes above the header are skipped."""
    first_nonblank = None
    for i, row in enumerate(grid[:HEADER_SEARCH_ROWS]):
        if _is_blank(row):
            continue
        if first_nonblank is None:
            first_nonblank = i
        if any(fold(c) in PHONE_ALIASES for c in row):
            return i
    return first_nonblank if first_nonblank is not None else 0


def table_from_grid(source: Path, sheet: str | None, grid: list[list[str]]) -> Table:
    """Split a grid of text cells into header and data rows (row numbers are 1-based grid rows)."""
    if not grid or all(_is_blank(r) for r in grid):
        raise InputError(
            f"{source}" + (f", sheet '{sheet}'" if sheet else "") + ": the file is empty."
        )
    h = _header_index(grid)
    header = [c.strip() for c in grid[h]]
    width = max(len(r) for r in grid)
    header += [""] * (width - len(header))
    # Columns with no header and no data (a trailing delimiter, an untouched Excel column) go.
    keep = [
        j
        for j in range(width)
        if header[j] or any(j < len(r) and r[j].strip() for r in grid[h + 1 :])
    ]
    columns = [header[j] or f"column_{j + 1}" for j in keep]
    rows: list[list[str]] = []
    numbers: list[int] = []
    for i in range(h + 1, len(grid)):
        raw = grid[i]
        if _is_blank(raw):
            continue
        rows.append([raw[j] if j < len(raw) else "" for j in keep])
        numbers.append(i + 1)
    table = Table(source=source, sheet=sheet, columns=columns, rows=rows, row_numbers=numbers)
    if not rows:
        raise InputError(f"{table.where}: the header is there but no data rows follow it.")
    return table


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_csv_grid(path: Path, encoding: str | None, delimiter: str | None) -> list[list[str]]:
    import pandas as pd

    encoding = encoding or "utf-8-sig"
    try:
        with open(path, encoding=encoding, newline="") as fh:
            sample = fh.read(64 * 1024)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot be read as {encoding} ({exc.reason} at byte {exc.start}). "
            "Give the right one with --encoding (for example --encoding cp1252)."
        ) from exc
    except LookupError as exc:
        raise InputError(f"{path}: unknown encoding '{encoding}'.") from exc
    sep = delimiter or _sniff_delimiter(sample)
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding=encoding,
            engine="c",
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: the file is empty.") from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a well-formed CSV file ({exc}).") from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot be read as {encoding} ({exc.reason}). "
            "Give the right one with --encoding (for example --encoding cp1252)."
        ) from exc
    return frame.to_numpy().tolist()


def read_excel_grid(path: Path, sheet: str | int | None) -> tuple[str, list[list[str]]]:
    import pandas as pd

    try:
        book = pd.ExcelFile(path, engine="calamine")
    except Exception as exc:  # calamine raises its own types for corrupt or encrypted files
        raise InputError(f"{path}: cannot be opened as a workbook ({exc}).") from exc
    with book:
        names = [str(n) for n in book.sheet_names]
        name = _choose_sheet(path, names, sheet)
        frame = pd.read_excel(book, sheet_name=name, header=None, dtype=object, na_filter=False)
    grid = [[cell_text(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    return name, grid


def _choose_sheet(path: Path, names: list[str], sheet: str | int | None) -> str:
    if not names:
        raise InputError(f"{path}: the workbook has no sheets.")
    if sheet is None:
        return names[0]
    if isinstance(sheet, int) or (
        isinstance(sheet, str) and sheet.isdigit() and sheet not in names
    ):
        index = int(sheet)
        if 1 <= index <= len(names):
            return names[index - 1]
    elif sheet in names:
        return sheet
    raise InputError(f"{path}: no sheet '{sheet}'. Sheets: {_quoted(names)}.")


def read_table(
    path: str | Path,
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Table:
    """Read a CSV or Excel file into a :class:`Table` of text cells."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a spreadsheet.")
    ext = path.suffix.lower()
    if ext in CSV_EXTENSIONS:
        grid = read_csv_grid(path, encoding, delimiter)
        return table_from_grid(path, None, grid)
    if ext in EXCEL_EXTENSIONS:
        name, grid = read_excel_grid(path, sheet)
        return table_from_grid(path, name, grid)
    raise InputError(
        f"{path}: unknown file type '{ext or '(none)'}'. "
        f"Use a .csv or .xlsx file ({', '.join(sorted(CSV_EXTENSIONS | EXCEL_EXTENSIONS))})."
    )
