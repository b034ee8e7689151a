"""The results file (one row per input row, in input order: its columns, then the contract's),
the one-line summary and the summary JSON; files appear atomically, no cell a formula a
spreadsheet would run (an XLSX: :mod:`results_xlsx`)."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

import numpy as np
import pandas as pd

from batch_attend import i18n, sentences
from batch_attend.atomic import remove_leftovers, replacing, write_text
from batch_attend.columns import choose_text, inert, on_cores
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _, language, ngettext
from batch_attend.journal import Record
from batch_attend.outcomes import (
    DONE_STATUSES,
    RESULT_COLUMNS,
    ErrorCode,
    Outcome,
    RowStatus,
    RunSummary,
    split_error,
)
from batch_attend.reading.handed_back import INPUT_SUFFIX
from batch_attend.reading.table import Table
from batch_attend.results_xlsx import write_xlsx

STDOUT = "-"


class OutputError(BatchAttendError):
    """The results cannot be written where asked; checked before anything is sent."""


def output_format(output: str) -> str:
    ext = ".csv" if output == STDOUT else Path(output).suffix.lower()
    if ext not in (".csv", ".xlsx"):
        raise OutputError(
            _(
                "{output}: results can be written as .csv or .xlsx (or '-' for CSV on stdout), not '{value}'."
            ).format(output=output, value=ext or "no extension")
        )
    return ext[1:]


#: A worksheet holds 1,048,576 rows, the header included.
XLSX_MAX_DATA_ROWS = 1_048_575


#: An XLSX cell holds at most 32,767 characters; xlsxwriter cuts a longer one silently.
XLSX_MAX_CELL_CHARS = 32_767


def check_fits(output: str, table: Table) -> None:
    """An XLSX cannot hold more rows than a worksheet, nor a cell longer than XLSX allows (it
    would be cut): refuse before sending, naming the first such cell."""
    if output_format(output) != "xlsx":
        return
    if len(table) > XLSX_MAX_DATA_ROWS:
        raise OutputError(
            _(
                "{output}: {rows} rows do not fit in one worksheet (at most {limit}); "
                "write the results as .csv instead."
            ).format(
                output=output, rows=i18n.number(len(table)), limit=i18n.number(XLSX_MAX_DATA_ROWS)
            )
        )
    found = []  # (row, position, name, length) of each column's first cell too long
    for j, name in enumerate(table.columns):
        lengths = table.frame[j].str.len().to_numpy(dtype=float, na_value=0)
        too_long = np.flatnonzero(lengths > XLSX_MAX_CELL_CHARS)
        if too_long.size:
            found.append((int(table.row_numbers[too_long[0]]), j, name, int(lengths[too_long[0]])))
    if found:
        row, _j, column, length = min(found)
        limit = i18n.number(XLSX_MAX_CELL_CHARS)
        raise OutputError(
            _(
                "{output}: row {row}, column '{column}' holds {length} characters, more than an "
                "XLSX cell can hold ({limit}); write the results as .csv instead."
            ).format(output=output, row=row, column=column, length=i18n.number(length), limit=limit)
        )


def default_output_for(input_path: Path) -> str:
    """``leads.xlsx`` → ``leads.results.xlsx`` beside it; CSV input gives CSV results."""
    ext = ".xlsx" if input_path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods") else ".csv"
    return str(input_path.with_name(input_path.stem + ".results" + ext))


def check_output(output: str, input_path: Path, *, input_is_results: bool = False) -> None:
    """Refuse, before anything is sent, an output that cannot be written or would replace the
    input (unless the input is a results file: the new results keep all of its columns)."""
    output_format(output)
    if output == STDOUT:
        return
    target = Path(output)
    if not input_is_results and (
        target.resolve() == input_path.resolve()
        or (target.exists() and input_path.exists() and os.path.samefile(target, input_path))
    ):
        raise OutputError(
            _("{output}: the results would overwrite the input file; choose another -o.").format(
                output=output
            )
        )
    check_writable(target)


def check_writable(target: Path) -> None:
    """Refuse, before anything is sent, a file that could not be written when its time comes."""
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(
            _("{output}: the folder '{folder}' does not exist.").format(
                output=target, folder=folder
            )
        )
    if target.is_dir():
        raise OutputError(
            _("{output}: is a folder; give a file name such as results.csv.").format(output=target)
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".batch-attend-", delete=True):
            pass
    except OSError as exc:
        raise OutputError(
            _("{output}: cannot write in '{folder}' ({strerror}).").format(
                output=target, folder=folder, strerror=exc.strerror
            )
        ) from exc
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(_("{output}: the file exists and is read-only.").format(output=target))


def result_header(columns: Sequence[str]) -> list[str]:
    """Original column names, then the contract's; an input column whose name clashes with a
    contract column is shown as ``name (input)`` so scripts always find the contract column."""
    taken = {c.casefold() for c in RESULT_COLUMNS}
    renamed = [f"{c}{INPUT_SUFFIX}" if c.casefold() in taken else c for c in columns]
    return [*renamed, *RESULT_COLUMNS]


#: Every row's outcome before it is written: the contract columns, with the error code and
#: message apart (the summary counts codes; the file shows ``code: message``).
OUTCOME_COLUMNS = tuple(
    part
    for name in RESULT_COLUMNS
    for part in (("error_code", "error_message") if name == "error" else (name,))
)


def records_in_results(results: pd.DataFrame | None) -> Iterator[Record]:
    """The rows a results file given as input shows done, as the ledger would hold them."""
    for row in () if results is None else results.itertuples(index=False):
        status = row.status.strip()
        if status not in DONE_STATUSES or not row.phone.strip():
            continue
        code, message = split_error(row.error)
        ids = tuple(op for op in (o.strip() for o in row.operators.split(",")) if op)
        yield Record(
            phone=row.phone.strip(),
            status=status,
            attendance_number=row.attendance_number.strip(),
            operators=ids,
            http_status=_number(row.http_status),
            error_code=code,
            error_message=message,
            attempts=_number(row.attempts) or 0,
            done_at=row.done_at.strip(),
            asked_operators=ids if status == RowStatus.STARTED else None,
            asked_department=row.department.strip() or None,
        )


_WHOLE = re.compile(r"[0-9]{1,9}(?:\.0*)?")  # as written by batch-attend, or re-saved as 200.0


def _number(text: str) -> int | None:
    """A count or status in a results file handed back; None for anything else in the cell."""
    text = text.strip()
    return int(text.split(".")[0]) if _WHOLE.fullmatch(text) else None


def outcome_frame(
    plan: pd.DataFrame,
    records: Iterable[Record],
    unsent: tuple[ErrorCode, str],
    compare_asked: bool = True,
) -> pd.DataFrame:
    """Every row's outcome (``OUTCOME_COLUMNS``), in input order: a row the plan decided keeps
    that; one to send or carried over takes its lead's record (done beats decided beats still
    being sent; the first among equals); one no answer decided is skipped for ``unsent``. With
    ``compare_asked``, a carried row that now asks for someone else says so (``not_resent``)."""
    n = len(plan)
    invalid = (plan["status"] == RowStatus.INVALID).to_numpy(bool)
    codes, distinct = pd.factorize(plan["operators"].to_numpy(dtype=object))
    operators = np.array([", ".join(ops) for ops in distinct], dtype=object)[codes]
    columns = {  # as plain arrays until the end: most of their cells change below
        "status": plan["status"].to_numpy(dtype=object, na_value=None, copy=True),
        "attendance_number": np.full(n, "", dtype=object),
        "operators": np.where(invalid, "", operators),
        "http_status": np.full(n, None, dtype=object),
        "error_code": plan["error_code"].to_numpy(dtype=object, copy=True),
        "error_message": plan["error_message"].to_numpy(dtype=object, copy=True),
        "attempts": np.zeros(n, dtype=np.int64),
        "done_at": np.full(n, "", dtype=object),
        "department": np.where(invalid, "", plan["department"].to_numpy(dtype=object)),
    }
    carried = plan["carried"].to_numpy()
    sendable = plan["status"].isna().to_numpy() | carried
    rank = np.full(n, -1, dtype=np.int8)  # of the record a row took
    shared: dict[str, str] = {}  # a run repeats a few statuses, operator lists and moments
    where = None  # each phone's row, looked up once a record comes (a first dry run has none)
    for record in records:  # as they stream by
        if where is None:
            phones = plan["phone"].to_numpy(dtype=object)[sendable]
            where = dict(zip(phones, np.flatnonzero(sendable).tolist(), strict=True))
        i = where.get(record.phone)
        if i is None:
            continue
        level = 2 if record.status in DONE_STATUSES else 1 if record.status is not None else 0
        if level <= rank[i]:
            continue
        rank[i] = level
        columns["attempts"][i] = record.attempts
        if record.status is None:
            continue  # sent, but no answer decided it
        columns["status"][i] = shared.setdefault(record.status, record.status)
        columns["attendance_number"][i] = record.attendance_number
        text = ", ".join(record.operators)
        columns["operators"][i] = shared.setdefault(text, text)
        columns["http_status"][i] = record.http_status
        columns["error_code"][i] = shared.setdefault(record.error_code, record.error_code)
        columns["error_message"][i] = record.error_message
        columns["done_at"][i] = shared.setdefault(record.done_at, record.done_at)
        if record.asked_department is not None:
            columns["department"][i] = record.asked_department
        if carried[i] and compare_asked:
            note = _not_resent(plan["operators"].iat[i], plan["department"].iat[i], record)
            if note:
                columns["error_code"][i], columns["error_message"][i] = ErrorCode.NOT_RESENT, note
    undecided = sendable & pd.isna(columns["status"])
    columns["status"][undecided] = str(RowStatus.SKIPPED)
    columns["error_code"][undecided] = str(unsent[0])
    columns["error_message"][undecided] = unsent[1]
    types = {"http_status": "Int64", "attempts": "int64"}
    frame = {
        name: pd.Series(values, dtype=types.get(name, str)) for name, values in columns.items()
    }
    frame["row"] = pd.Series(plan["row"].to_numpy())
    frame["phone"] = choose_text(invalid, "", plan["phone"].reset_index(drop=True))
    return pd.DataFrame(frame)[list(OUTCOME_COLUMNS)]


def _not_resent(operators: tuple[str, ...], department: str, record: Record) -> str:
    """The note for a lead done earlier whose row now asks for someone else (a row naming no
    operators, left to a pool, asks for no one in particular)."""
    if record.asked_operators is None or not operators:
        return ""
    if set(operators) == set(record.asked_operators) and (
        record.asked_department is None or department == record.asked_department
    ):
        return ""
    started = record.status == RowStatus.STARTED
    done = sentences.STARTED_BEFORE if started else sentences.IN_SERVICE_BEFORE
    if record.done_at:
        done = sentences.DONE_AT.format(done=done, when=record.done_at)
    template = sentences.NOT_RESENT_IN if department else sentences.NOT_RESENT
    return template.format(
        done=done,
        before=", ".join(record.asked_operators),
        now=", ".join(operators),
        department=department,
    )


def outcomes_of(frame: pd.DataFrame) -> list[Outcome]:
    """The rows of an outcome frame as :class:`Outcome` objects, for library callers."""
    outcomes = []
    for row in frame.drop(columns="row").to_dict("records"):
        row["status"] = RowStatus(row["status"])
        row["operators"] = tuple(row["operators"].split(", ")) if row["operators"] else ()
        row["http_status"] = None if pd.isna(row["http_status"]) else int(row["http_status"])
        row["attempts"] = int(row["attempts"])
        outcomes.append(Outcome(**row))
    return outcomes


def contract_frame(inputs: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """What is written: the input columns as read, then the contract's (``error``: ``code:
    sentence``, the code alone or empty), labelled by position: the header is written apart."""
    codes, messages = outcomes["error_code"], outcomes["error_message"]
    both = ((codes != "") & (messages != "")).to_numpy(bool)
    contract = outcomes.assign(error=choose_text(both, codes + ": " + messages, codes))
    contract = contract[list(RESULT_COLUMNS)]
    frame = pd.concat([inputs.reset_index(drop=True), contract.reset_index(drop=True)], axis=1)
    return frame.set_axis(range(frame.shape[1]), axis=1)


def csv_delimiter(
    given: str | None, input_delimiter: str | None, results_lang: str | None = None
) -> str:
    """``--output-delimiter``, else the CSV input's (the results open as it did), else ``;`` for
    Portuguese results (Excel in Brazil splits a CSV on ``;``), ``,`` otherwise."""
    portuguese = i18n.normal(results_lang or language()) == "pt_BR"
    return given or input_delimiter or (";" if portuguese else ",")


def write_csv(
    stream: BinaryIO, header: Sequence[str], frame: pd.DataFrame, delimiter: str = ","
) -> None:
    """UTF-8 CSV, CRLF line ends, the rows by pyarrow's writer; the columns that may hold outside
    text (the input's, the API's attendance number and operators) made inert; the contract's
    others cannot start like a formula."""
    import pyarrow as pa
    import pyarrow.csv

    width = len(header) - len(RESULT_COLUMNS)
    outside = [*range(width)] + [
        width + RESULT_COLUMNS.index(name) for name in ("attendance_number", "operators")
    ]
    line = io.StringIO()
    csv.writer(line, delimiter=delimiter, lineterminator="\r\n").writerow(
        inert(pd.Series(header, dtype=str))
    )
    stream.write(line.getvalue().encode("utf-8"))
    made_inert = on_cores(inert, [frame[j].astype(str) for j in outside])
    safe = frame.set_axis([str(j) for j in frame.columns], axis=1)  # pyarrow wants names
    safe = safe.assign(**{str(j): column for j, column in zip(outside, made_inert, strict=True)})
    table = pa.Table.from_pandas(safe)
    options = pyarrow.csv.WriteOptions(include_header=False, delimiter=delimiter, eol="\r\n")
    pyarrow.csv.write_csv(table, stream, options)


def write_results(
    output: str,
    columns: Sequence[str],
    frame: pd.DataFrame,
    *,
    stdout: TextIO | None = None,
    summary: RunSummary | None = None,
    bom: bool = True,
    delimiter: str = ",",
    lang: str = "en",
) -> None:
    """A results frame (see :func:`contract_frame`) to ``output`` (``-``: CSV on ``stdout``),
    atomically, first removing what a killed run left; ``lang``: its sentences' language."""
    header = result_header(columns)
    if len(header) != frame.shape[1]:
        raise ValueError(f"{len(header)} header names for {frame.shape[1]} columns")
    error = frame.shape[1] - len(RESULT_COLUMNS) + RESULT_COLUMNS.index("error")
    frame = frame.copy()
    with i18n.speaking(lang):
        frame[error] = sentences.render_all(frame[error], errors=True)
        if output == STDOUT:
            stdout.flush()
            binary = getattr(stdout, "buffer", None)  # a real stream: the bytes as they are made
            data = binary if binary is not None else io.BytesIO()
            write_csv(data, header, frame, delimiter)
            if binary is None:
                stdout.write(data.getvalue().decode("utf-8"))
            stdout.flush()
            return
        target = Path(os.path.realpath(output))  # a link to the results: the file it names
        remove_leftovers(target)
        with replacing(target) as tmp:
            if output_format(output) == "xlsx":
                write_xlsx(tmp, header, frame, summary)
            else:
                with open(tmp, "wb") as fh:
                    fh.write(codecs.BOM_UTF8 if bom else b"")
                    write_csv(fh, header, frame, delimiter)


def write_summary_json(
    path: Path | None, summary: RunSummary | None, facts: dict, error: str | None = None
) -> None:
    """``--summary-json``: what a scheduler needs to know, whatever the outcome (``facts``: exit
    code, start time, input, output, journal). A link there is replaced, never written through."""
    if path is None:
        return
    data = {**facts, "error": error}
    if summary is not None:
        data.update(
            rows=summary.total,
            counts={str(k): v for k, v in sorted(summary.counts.items())},
            errors={str(k): v for k, v in sorted(summary.error_counts.items())},
            elapsed_s=round(summary.elapsed, 3),
            rows_per_s=round(summary.decided_rows / summary.elapsed, 1) if summary.elapsed else 0.0,
            requests=summary.requests,
            retries=summary.retries,
            rate_limited=summary.pushbacks,
            resumed=summary.resumed,
        )
    write_text(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def summary_of(summary: RunSummary, contract: pd.DataFrame) -> RunSummary:
    """``summary`` counting the statuses and error codes of results (contract columns by name)."""
    codes = contract["error"].str.partition(": ")[0]
    counts, errors = contract["status"].value_counts(), codes[codes != ""].value_counts()
    return dataclasses.replace(
        summary, counts=Counter(counts.to_dict()), error_counts=Counter(errors.to_dict())
    )


def counted(status: RowStatus | str, n: int) -> str:
    """``n`` rows of a status in words."""
    return counted_words(status, n).format(count=i18n.number(n))


def counted_words(status: RowStatus | str, n: int) -> str:
    """The words for ``n`` rows of a status, ``{count}`` where the number goes."""
    words = {
        RowStatus.STARTED: ngettext("{count} started", "{count} started", n),
        RowStatus.ALREADY_IN_SERVICE: ngettext(
            "{count} already in service", "{count} already in service", n
        ),
        RowStatus.INVALID: ngettext("{count} invalid", "{count} invalid", n),
        RowStatus.FAILED: ngettext("{count} failed", "{count} failed", n),
        RowStatus.SKIPPED: ngettext("{count} skipped", "{count} skipped", n),
        RowStatus.UNDONE: ngettext("{count} undone", "{count} undone", n),
        "ready": ngettext("{count} ready to send", "{count} ready to send", n),
        "duplicates": ngettext("{count} duplicate (skipped)", "{count} duplicates (skipped)", n),
        "rows": ngettext("{count} row", "{count} rows", n),
    }
    return words[status]


def format_summary(summary: RunSummary) -> str:
    """The line printed after a run (a dry run's rows to send are "ready")."""
    ready = summary.error_counts[ErrorCode.DRY_RUN] if summary.dry_run else 0
    counts = Counter(summary.counts)
    counts[RowStatus.SKIPPED] -= ready
    parts = [counted(s, counts[s]) for s in RowStatus if counts[s] > 0]
    if ready:
        parts.insert(0, counted("ready", ready))
    line = ngettext(
        "{total} row: {parts} in {elapsed} s", "{total} rows: {parts} in {elapsed} s", summary.total
    ).format(
        total=i18n.number(summary.total),
        parts=", ".join(parts) or _("nothing to do"),
        elapsed=i18n.number(summary.elapsed, 1),
    )
    if summary.decided_rows and summary.elapsed > 0:
        rate = summary.decided_rows / summary.elapsed
        line += " " + _("({rate} rows/s)").format(rate=i18n.number(rate, 1))
    for n, words in (
        (summary.resumed, _("{count} done by an earlier run")),
        (summary.retries, ngettext("{count} retry", "{count} retries", summary.retries)),
        (
            summary.pushbacks,
            ngettext(
                "{count} request refused by a rate limit",
                "{count} requests refused by a rate limit",
                summary.pushbacks,
            ),
        ),
    ):
        if n:
            line += "; " + words.format(count=i18n.number(n))
    where = _("stdout") if summary.output == STDOUT else summary.output
    return line + ". " + _("Results: {where}").format(where=where)
