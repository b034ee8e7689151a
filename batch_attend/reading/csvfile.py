"""CSV files as people save them (a Brazilian Windows', DOS or Mac encoding, the delimiter most
lines agree on, quoted line breaks), refused past the limits before they are parsed."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from batch_attend.i18n import _
from batch_attend.reading.limits import MAX_TEXT_BYTES, InputError, check_cells, mib

#: What a non-UTF-8 CSV from Brazil is written in: Windows Excel, then DOS and old Macs.
LEGACY_ENCODINGS = ("cp1252", "cp850", "mac_roman")
PORTUGUESE_LETTERS = frozenset("áàâãéêíóôõúüçÁÀÂÃÉÊÍÓÔÕÚÜÇºª")
#: How pandas reads every cell: as the text typed, blank lines kept (row numbers count them).
_AS_TEXT = dict(header=None, index_col=False, dtype=str, na_filter=False, skip_blank_lines=False)


def detect_encoding(raw: bytes) -> str:
    """A BOM's, else UTF-8 if it decodes, else the legacy encoding that makes the most Portuguese
    letters of the other bytes (a general detector takes cp1252's ``ção`` for DOS or Mac's)."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    with contextlib.suppress(UnicodeDecodeError):
        codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
        return "utf-8"
    high = re.sub(rb"[\x00-\x7f]+", b"", raw[:262144])  # only the bytes that differ between them

    def score(encoding: str) -> int:
        text = high.decode(encoding, "replace")
        return 2 * sum(ch in PORTUGUESE_LETTERS for ch in text) - len(text)

    return max(LEGACY_ENCODINGS, key=score)  # max keeps the first of equals: cp1252


def field_counts(text: str, delimiter: str) -> Counter:
    """How many records (not all empty) have each number of fields."""
    counts: Counter = Counter()
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if any(record):
                counts[len(record)] += 1
    except csv.Error:
        pass  # a sample cut inside a quoted field: what was counted still tells
    return counts


def sniff_delimiter(sample: str) -> str:
    """The delimiter under which the largest share of records has one number (> 1) of fields,
    then the most fields: steadier than :class:`csv.Sniffer` with commas in values or a title."""
    text = sample[:65536]
    if "\n" in text.rstrip("\r\n"):
        text = text[: text.rfind("\n") + 1]  # the sample may have cut the last line in two

    def score(delimiter: str) -> tuple[float, int]:
        counts = field_counts(text, delimiter)
        width, count = counts.most_common(1)[0] if counts else (0, 0)
        # The share that agree, not their number: a wrong delimiter may cut more records.
        return (round(count / sum(counts.values()), 2), width) if width > 1 else (0, 0)

    return max((",", ";", "\t", "|"), key=score)  # max keeps the first of equals: the comma


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
    """Every record as text cells, blank lines too (row numbers count them), and the delimiter."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:  # the parser holds all of the text
        message = _(
            "{path}: the file is {size}, more than the {limit} batch-attend reads from a CSV file. Split it into smaller files."
        )
        raise InputError(message.format(path=path, size=mib(size), limit=mib(MAX_TEXT_BYTES)))
    with open(path, "rb") as fh:
        raw = fh.read(1 << 20)
    chosen = encoding or detect_encoding(raw)
    try:
        sample = raw.decode(chosen, errors="ignore")
    except LookupError as exc:
        message = _("{path}: unknown encoding '{chosen}' (given by --encoding).")
        raise InputError(message.format(path=path, chosen=chosen)) from exc
    sep = delimiter or sniff_delimiter(sample)
    # Columns named up front, else the parser takes the width of a one-cell title line.
    width = max(field_counts(sample, sep) or [1])
    check_cells(str(path), line_count(path), width)
    try:
        grid = pd.read_csv(path, sep=sep, names=range(width), encoding=chosen, **_AS_TEXT)
    except pd.errors.EmptyDataError as exc:
        raise InputError(_("{path}: the file is empty.").format(path=path)) from exc
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().replace("\n", " ")
        message = _(
            "{path}: not a well-formed CSV file with '{sep}' as delimiter ({detail}). Check that quotes are closed, or give the delimiter with --delimiter."
        )
        shown = {"\t": "tab"}.get(sep, sep)
        raise InputError(message.format(path=path, sep=shown, detail=detail)) from exc
    except UnicodeDecodeError as exc:
        how = _("given by --encoding") if encoding else _("detected")
        message = _(
            "{path}: cannot be read as {chosen} ({how}): {reason} at byte {start}. Give the right one with --encoding (for example --encoding cp1252 or latin-1)."
        )
        values = dict(chosen=chosen, how=how, reason=exc.reason, start=exc.start)
        raise InputError(message.format(path=path, **values)) from exc
    return grid, sep
