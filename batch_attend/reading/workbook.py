"""Workbooks (.xlsx, .xlsm, .xls, .ods) as grids of text, read by calamine. A few KiB of workbook
can ask calamine for any amount of memory, and a failed allocation aborts: on Linux the grid is
read in a spawned child (no fork of a process running threads) capped by ``RLIMIT_DATA``, and comes
back as Arrow. No pandas here, so the child starts fast."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from batch_attend import i18n
from batch_attend.i18n import _
from batch_attend.reading import limits
from batch_attend.reading.headers import HEADER_SEARCH_ROWS, find, header_index, phone_strengths
from batch_attend.reading.limits import InputError, check_cells, mib, place, quoted

CAPPED = sys.platform == "linux"  #: Where a workbook is read in a capped child.
BLOCK_ROWS = 65536  #: Rows of a sheet turned into text at a time.
Sheet = str | int | None  #: A sheet's name, or its number from 1; None: the one holding the leads.
SHEET_SAMPLE_ROWS = 200  #: Rows read from each sheet to find the one holding the leads.
_PHONE_LIKE = re.compile(r"\D*(?:\d\D{0,3}){8,}")  # eight digits or more, masks between


def cell_text(value: object) -> str:
    """One workbook cell as the text a person sees, without float rounding for whole numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # at any size, as pandas' reader gives it
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    return str(value)  # a date's, a time's or a datetime's is its ISO form


def _damaged(path: Path, exc: Exception) -> InputError:
    message = _(
        "{path}: cannot be opened as a workbook; it may be damaged ({exc}). Open it in a spreadsheet program and save it again."
    )
    return InputError(message.format(path=path, exc=exc))


class Book:
    """A workbook open in calamine, or in openpyxl for the few files only it accepts; refused
    before it is parsed if its parts' declared sizes (the readers stop there) pass the limit."""

    def __init__(self, path: Path) -> None:
        from python_calamine import CalamineWorkbook

        if path.suffix.lower() == ".xls":  # the reader checked that the content is what it says
            size = path.stat().st_size
        else:
            with zipfile.ZipFile(path) as archive:
                size = sum(member.file_size for member in archive.infolist())
        if size > limits.MAX_INFLATED_BYTES:
            message = _(
                "{path}: the workbook would inflate to {size} when opened, more than the {limit} batch-attend reads. Split it into smaller files; a workbook of leads is far smaller, so this one may be damaged."
            )
            limit = mib(limits.MAX_INFLATED_BYTES)
            raise InputError(message.format(path=path, size=mib(size), limit=limit))
        self.path = path
        try:
            self._book, self._openpyxl = CalamineWorkbook.from_path(str(path)), None
        except Exception as exc:  # calamine raises its own types for damaged files
            if path.suffix.lower() not in (".xlsx", ".xlsm"):
                raise _damaged(path, exc) from exc
            try:
                import openpyxl

                self._openpyxl = openpyxl.load_workbook(path, read_only=True, data_only=True)
            except Exception:
                raise _damaged(path, exc) from exc
        self.names = [str(n) for n in (self._openpyxl or self._book).sheet_names]

    def grid(self, name: str, nrows: int | None = None) -> pa.Table:
        """A sheet's cells as text from A1, a block of rows at a time (Python values take far more
        memory than their text); a whole sheet past the limits is refused."""
        if self._openpyxl is not None:  # rare: read whole, its dimensions may be unknown
            cells = list(self._openpyxl[name].iter_rows(values_only=True))
            height, width = len(cells), max(map(len, cells), default=0)
            rows = (row + (None,) * (width - len(row)) for row in cells)
        else:
            try:
                sheet = self._book.get_sheet_by_name(name)
            except MemoryError:
                raise
            except Exception as exc:  # calamine raises its own types for damaged parts
                raise _damaged(self.path, exc) from exc
            if sheet.start is None:  # an empty sheet
                rows, height, width = iter(()), 0, 0
            else:
                pad = (None,) * sheet.start[1]  # calamine's rows begin at the first column used
                rows = (pad + tuple(row) for row in sheet.iter_rows())
                height, width = sheet.end[0] + 1, sheet.end[1] + 1
        where = place(self.path, name)
        if nrows is None:
            check_cells(where, height, width)
        else:
            height = min(height, nrows)
        parts: list[list[pa.Array]] = [[] for _ in range(width)]
        rows = itertools.islice(rows, height)
        while block := list(itertools.islice(rows, BLOCK_ROWS)):
            for part, cells in zip(parts, zip(*block, strict=True), strict=True):
                text = [v if type(v) is str else cell_text(v) for v in cells]
                part.append(pa.array(text, pa.large_string()))
        columns = [pa.chunked_array(part, pa.large_string()) for part in parts]
        text = sum(pc.sum(pc.binary_length(column)).as_py() or 0 for column in columns)
        if nrows is None and text > limits.MAX_TEXT_BYTES:
            message = _(
                "{where}: the cells hold {size} of text, more than the {limit} batch-attend reads. Split the file."
            )
            limit = mib(limits.MAX_TEXT_BYTES)
            raise InputError(message.format(where=where, size=mib(text), limit=limit))
        return pa.table(columns, names=[str(j) for j in range(width)])


def _phones_below_header(top: list[list[str]], phone_column: str | None) -> int:
    """How many rows under the header hold a phone-like cell in a phone column (-1: no header)."""
    h = header_index(top[:HEADER_SEARCH_ROWS], phone_column)
    if h is None:
        return -1
    strength = phone_strengths(top[h], phone_column)
    columns = [j for j, s in enumerate(strength) if s and s == max(strength)]
    return sum(any(_PHONE_LIKE.fullmatch(row[j]) for j in columns) for row in top[h + 1 :])


def _choose_sheet(path: Path, names: list[str], sheet: Sheet) -> str:
    """``--sheet``: a sheet's name, or its number from 1."""
    text = str(sheet).strip()
    if sheet not in names and text.isdigit() and 1 <= int(text) <= len(names):
        return names[int(text) - 1]
    if (j := find(names, str(sheet))) is not None:
        return names[j]
    message = _("{path}: no sheet '{sheet}'. Sheets: {names}.")
    raise InputError(message.format(path=path, sheet=sheet, names=quoted(names)))


def sheet_grid(path: Path, sheet: Sheet, phone_column: str | None) -> tuple[str, pa.Table]:
    """The chosen sheet's name and grid: ``sheet``, else the one with the most phones under a
    phone header (not an instructions tab that mentions a phone)."""
    book = Book(path)
    if not book.names:
        raise InputError(_("{path}: the workbook has no sheets.").format(path=path))
    if sheet is not None or len(book.names) == 1:
        name = book.names[0] if sheet is None else _choose_sheet(path, book.names, sheet)
        return name, book.grid(name)
    seen, found = [], {}
    for name in book.names:
        sample = book.grid(name, SHEET_SAMPLE_ROWS).to_pydict().values()
        top = [list(row) for row in zip(*sample, strict=True)]
        found[name] = _phones_below_header(top, phone_column)
        first = next((r for r in top if "".join(r).strip()), [])
        seen.append(f"'{name}' ({quoted([c for c in first if c.strip()][:6])})")
    best = max(book.names, key=found.__getitem__)  # max keeps the first of equals
    if found[best] >= 0:
        return best, book.grid(best)
    raise InputError(
        _(
            "{path}: no sheet has a phone column in its first {HEADER_SEARCH_ROWS} rows. Sheets seen: {seen}. Choose one with --sheet and name the column with --phone-column."
        ).format(path=path, HEADER_SEARCH_ROWS=HEADER_SEARCH_ROWS, seen="; ".join(seen)),
        page=_("No sheet has a phone column in its first rows: choose the sheet below."),
    )


def read_workbook(path: Path, sheet: Sheet, phone_column: str | None) -> tuple[str, pa.Table]:
    """:func:`sheet_grid`, in a capped child process where the memory cap exists (Linux)."""
    if not CAPPED:
        return sheet_grid(path, sheet, phone_column)
    asked = json.dumps([str(path), sheet, phone_column, i18n.language()])
    command = [sys.executable, "-m", "batch_attend.reading.workbook"]  # spawned: no fork
    done = subprocess.run(command, input=asked.encode(), capture_output=True, check=False)
    head, _newline, body = done.stdout.partition(b"\n")
    try:
        answer = json.loads(head)
        if "name" in answer:
            return answer["name"], pa.ipc.open_stream(body).read_all()
    except (ValueError, pa.ArrowInvalid):
        answer = {}  # the child died: an allocation failed
    if "input_error" in answer:
        raise InputError(answer["input_error"], page=answer.get("page"))
    if "error" in answer:
        raise RuntimeError(answer["error"])
    message = _(
        "{path}: reading the workbook needs more than the {limit} of memory batch-attend allows: a sheet's cells may reach far past its data, or one long text may fill many cells. Open it in a spreadsheet program, delete the rows and columns past the data, and save it again."
    )
    raise InputError(message.format(path=path, limit=mib(limits.WORKBOOK_MEMORY)))


def _child() -> None:
    """The question on stdin; one line of JSON, then the grid as Arrow, on stdout."""
    import faulthandler
    import resource

    faulthandler.disable()  # an allocation that fails aborts: expected here, and quiet
    pa.set_memory_pool(pa.system_memory_pool())  # jemalloc reserves far more than it uses
    with open("/proc/self/status") as status:  # this process's data segment, what the cap counts
        used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = used + limits.WORKBOOK_MEMORY
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    path, sheet, phone_column, lang = json.loads(sys.stdin.read())
    out, table = sys.stdout.buffer, None
    with i18n.speaking(lang):
        try:
            name, table = sheet_grid(Path(path), sheet, phone_column)
            answer = {"name": name}
        except InputError as exc:
            answer = {"input_error": str(exc), "page": exc.page}
        except MemoryError:
            answer = {"memory_error": True}
        except Exception as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
    out.write(json.dumps(answer).encode() + b"\n")
    if table is not None:
        with pa.ipc.new_stream(out, table.schema) as stream:
            stream.write_table(table)
    out.flush()


if __name__ == "__main__":
    _child()
