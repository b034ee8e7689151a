"""CSV files as people save them: the encoding a Brazilian Windows, DOS or Mac wrote, the
delimiter most lines agree on, a title above the header, quoted line breaks; refused past the
limits before they are parsed."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from batch_attend.i18n import _
from batch_attend.reading.limits import MAX_TEXT_BYTES, InputError, check_cells, mib

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
            ).format(path=path, size=mib(size), limit=mib(MAX_TEXT_BYTES))
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
    check_cells(str(path), line_count(path), width)
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
