"""Spreadsheets in, cells as the text a person sees out: a file is read as what its bytes say it
is, whatever its name says, standard input too. A results file is a valid input."""

from __future__ import annotations

import re
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from batch_attend.i18n import N_, _
from batch_attend.reading.csvfile import read_csv_grid
from batch_attend.reading.handed_back import split_results
from batch_attend.reading.limits import MAX_INFLATED_BYTES, MAX_TEXT_BYTES, InputError, mib
from batch_attend.reading.table import Table, refuse_control_characters, table_from_grid
from batch_attend.reading.workbook import Book, Sheet, read_workbook

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
        message = _(
            "{path}: the workbook is password-protected. Open it in Excel, remove the password (File > Info > Protect Workbook), save, and run again."
        )
        raise InputError(message.format(path=path))
    if kind == _EXPECTED_KIND[ext]:
        return kind
    what = _(_KIND_NAMES.get(kind, N_("something else")))
    hint = _(" Open it in a spreadsheet program and save it as .xlsx or .csv.")
    if kind in _RENAME_TO:
        hint = _(" Rename it to {extension}.").format(extension=_RENAME_TO[kind])
    message = _("{path}: the name says {ext} but the content is {what}.{hint}")
    raise InputError(message.format(path=path, ext=ext, what=what, hint=hint))


def sheet_names(path: str | Path) -> list[str]:
    """A workbook's sheets in order, for a person choosing one (the page); none for a CSV."""
    path = Path(path)
    return [] if _check_content(path, path.suffix.lower()) == "text" else Book(path).names


def read_table(
    path: str | Path,
    *,
    sheet: Sheet = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    phone_column: str | None = None,
    header_row: int | None = None,
) -> Table:
    """A CSV file or workbook as a :class:`Table` of text cells; its content must match its name."""
    path = Path(path)
    if not path.exists():
        raise InputError(_("{path}: no such file.").format(path=path))
    if path.is_dir():
        raise InputError(_("{path}: is a folder, not a spreadsheet.").format(path=path))
    ext = path.suffix.lower()
    if ext not in _EXPECTED_KIND:
        message = _("{path}: unknown file type '{value}'. Use one of {join}.")
        known = ", ".join(sorted(_EXPECTED_KIND))
        raise InputError(message.format(path=path, value=ext or "(none)", join=known))
    if path.stat().st_size == 0:
        raise InputError(_("{path}: the file is empty.").format(path=path))
    name = sep = None
    if _check_content(path, ext) == "text":
        grid, sep = read_csv_grid(path, encoding, delimiter)
    else:
        name, cells = read_workbook(path, sheet, phone_column)
        grid = pd.DataFrame({j: pd.Series(c, dtype=str) for j, c in enumerate(cells.columns)})
    table = table_from_grid(path, name, grid, phone_column, header_row)
    table.delimiter = sep  # a CSV's, which its results reuse
    table = split_results(table)
    refuse_control_characters(table)
    return table


#: INPUT that means standard input, and how messages name it.
STDIN = Path("-")
STDIN_NAME = "<stdin>"
_SPOOL_CHUNK = 1 << 20


def read_stdin_table(stream: BinaryIO, **options) -> Table:
    """:func:`read_table` of standard input, spooled to a temp folder; messages name it ``<stdin>``."""
    chunk = stream.read(_SPOOL_CHUNK)
    if chunk.startswith((b"PK\x03\x04", _OLE_MAGIC)):  # refused past the limit, read no further
        limit = MAX_INFLATED_BYTES
        too_big = _(
            "{path}: more than the {limit} batch-attend reads from a workbook came on standard input. Split it into smaller files."
        )
    else:
        limit = MAX_TEXT_BYTES
        too_big = _(
            "{path}: more than the {limit} batch-attend reads from a CSV file came on standard input. Split it into smaller files."
        )
    with tempfile.TemporaryDirectory(prefix="batch-attend-") as folder:
        spooled = Path(folder) / "stdin"
        with open(spooled, "xb") as fh:
            while chunk:
                if fh.tell() + len(chunk) > limit:
                    raise InputError(too_big.format(path=STDIN_NAME, limit=mib(limit)))
                fh.write(chunk)
                chunk = stream.read(_SPOOL_CHUNK)
        kind = content_kind(spooled)
        suffix = {**_RENAME_TO, "encrypted": ".xlsx"}.get(kind)
        if suffix is None:
            message = _(
                "{path}: the content is {what}, not a CSV file or a workbook. Open it in a spreadsheet program and save it as .xlsx or .csv."
            )
            what = _(_KIND_NAMES.get(kind, N_("something else")))
            raise InputError(message.format(path=STDIN_NAME, what=what))
        path = spooled.rename(spooled.with_suffix(suffix))
        try:
            table = read_table(path, **options)
        except InputError as exc:  # its messages name the temp file, which no one knows
            raise InputError(str(exc).replace(str(path), STDIN_NAME)) from exc
    table.source = Path(STDIN_NAME)
    return table
