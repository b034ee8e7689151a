"""The XLSX results, for people: colours per status, the header frozen and filtered, one page
wide in print, a Summary sheet, Portuguese for a Portuguese reader."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from batch_attend import i18n, sentences
from batch_attend.i18n import _
from batch_attend.outcomes import (
    PORTUGUESE_COLUMNS,
    PORTUGUESE_STATUSES,
    RESULT_COLUMNS,
    RowStatus,
    RunSummary,
)

_STATUS_COLOURS = {
    RowStatus.STARTED: "#C6EFCE",
    RowStatus.ALREADY_IN_SERVICE: "#BDD7EE",
    RowStatus.FAILED: "#FFC7CE",
    RowStatus.SKIPPED: "#D9D9D9",
    RowStatus.INVALID: "#FFEB9C",
    RowStatus.UNDONE: "#E4DFEC",
}


#: Widest a column opens (characters): the user's own columns narrower, so more fit beside
#: the contract's; the error column wraps at its width instead.
_MAX_WIDTH, _OWN_MAX_WIDTH, _ERROR_WIDTH = 60, 30, 50


def write_xlsx(
    path: str, header: Sequence[str], frame: pd.DataFrame, summary: RunSummary | None
) -> None:
    """Text cells stay text (phones and IDs stay digits, formulas inert). In Portuguese (the current
    language) the contract's columns and statuses are named so, a reason is its sentence alone."""
    import xlsxwriter

    book = xlsxwriter.Workbook(
        path, {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False}
    )
    try:
        portuguese = i18n.language() == "pt_BR"
        sheet = book.add_worksheet("Resultados" if portuguese else "Results")
        bold = book.add_format({"bold": True})
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        status_formats = {s: book.add_format({"bg_color": c}) for s, c in _STATUS_COLOURS.items()}
        width = len(header) - len(RESULT_COLUMNS)
        status_col = width + RESULT_COLUMNS.index("status")
        error_col = width + RESULT_COLUMNS.index("error")
        if portuguese:
            header = [*header[:width], *PORTUGUESE_COLUMNS.values()]
            frame = frame.copy()
            codes, _sep, said = (frame[error_col].str.partition(": ")[k] for k in range(3))
            frame[error_col] = said.where(said != "", codes.map(sentences.label))
        # Each column as wide as its header (bold, with the filter button: 3 more) and its first
        # rows' longest line, up to its cap.
        widths = [max(len(h) + 3, 8) for h in header]
        for row in frame.head(500).itertuples(index=False, name=None):
            for j, cell in enumerate(row):
                if isinstance(cell, str) and cell:
                    widths[j] = max(widths[j], max(len(line) for line in cell.splitlines()) + 1)
        caps = [_OWN_MAX_WIDTH] * width + [_MAX_WIDTH] * len(RESULT_COLUMNS)
        caps[error_col] = _ERROR_WIDTH
        for j, (chars, name, cap) in enumerate(zip(widths, header, caps, strict=True)):
            sheet.set_column(j, j, max(min(chars, cap), len(name) + 3))
        sheet.write_row(0, 0, header, bold)
        words = PORTUGUESE_STATUSES if portuguese else {}
        for i, row in enumerate(frame.itertuples(index=False, name=None), start=1):
            for j, cell in enumerate(row):
                if isinstance(cell, str):
                    if j == status_col and cell:
                        sheet.write_string(i, j, words.get(cell, cell), status_formats.get(cell))
                    elif cell:
                        sheet.write_string(i, j, cell, wrap if j == error_col else None)
                elif not pd.isna(cell):
                    sheet.write_number(i, j, int(cell))
        # Phones and IDs are text on purpose: no green "number stored as text" triangles.
        sheet.ignore_errors({"number_stored_as_text": f"A1:XFD{len(frame) + 1}"})
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, len(frame), len(header) - 1)
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)
        sheet.repeat_rows(0)
        if summary is not None:
            contract = frame.iloc[:, width:].set_axis(RESULT_COLUMNS, axis=1)
            _write_summary_sheet(book, summary, bold, contract, words)
    finally:
        book.close()


def _write_summary_sheet(
    book, summary: RunSummary, bold, contract: pd.DataFrame, words: dict
) -> None:
    """Counts in A:B, the run in D:E; built first, then written row by row as a constant_memory
    sheet must be. In Portuguese (``words``) statuses and codes are said in words."""
    rows = _("rows")
    left: list[tuple] = [(_("status"), rows, bold)]
    left += [(words.get(s, str(s)), summary.counts[s], None) for s in RowStatus]
    left.append((_("total"), summary.total, bold))
    errors = Counter()
    for code, n in summary.error_counts.items():
        errors[sentences.label(code) if words else str(code)] += n
    started = contract[contract["status"] == RowStatus.STARTED]
    for title, counts, always in (
        (_("error"), dict(sorted(errors.items())), True),
        (_("started, by operator"), _started_by(started["operators"], summary.names), False),
        (_("started, by department"), _started_by(started["department"], summary.names), False),
    ):
        if always or counts:  # nothing started: no section
            left += [(None, None, None), (title, rows, bold)]
            left += [(str(k), n, None) for k, n in counts.items()]
    whole = int(summary.elapsed)
    right = [
        (_("run"), "", bold),
        (_("started at"), i18n.moment(summary.started_at), None),
        (_("input"), summary.input, None),
        (_("output"), Path(summary.output).name, None),  # this file: no server's path
        (_("duration"), f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}", None),
    ]
    sheet = book.add_worksheet(_("Summary"))
    labels = [str(r[0]) for r in left if r[0] is not None]
    sheet.set_column(0, 0, min(max(map(len, labels)) + 2, _MAX_WIDTH))
    sheet.set_column(1, 1, 12)
    sheet.set_column(3, 3, 14)
    sheet.set_column(4, 4, min(max(len(str(v)) for _k, v, _f in right) + 2, 100))
    for r, pair in enumerate(itertools.zip_longest(left, right, fillvalue=(None, None, None))):
        for col, (label, value, style) in zip((0, 3), pair, strict=True):
            if label is None:
                continue
            sheet.write_string(r, col, label, style)
            if isinstance(value, int):
                sheet.write_number(r, col + 1, value, style)
            elif value:
                sheet.write_string(r, col + 1, value, style)


def _started_by(cells: pd.Series, names: dict[str, str]) -> dict:
    """Attendances started per operator (a row sent to two counts for each) or department, most
    first, each ID with its name in the account when known."""
    counts: Counter = Counter()
    for cell, n in cells.astype(str).value_counts().items():
        for sent in {part.strip() for part in cell.split(",")} - {""}:
            counts[sent] += n
    return {
        f"{sent} ({names[sent]})" if names.get(sent) else sent: n
        for sent, n in counts.most_common()
    }
