"""The results file: contract columns, inert cells, text phones in XLSX, atomic writes."""

import csv
import io
from collections import Counter
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_attend.outcomes import RESULT_COLUMNS, ErrorCode, Outcome, RowStatus, RunSummary
from batch_attend.results import (
    OutputError,
    check_output,
    contract_frame,
    format_summary,
    inert,
    outcomes_of,
    result_header,
    write_results,
)

COLUMNS = ["Nome", "Telefone", "phone"]
ROWS = [["Ana", "(44) 99999-9999", "x"], ["=1+1", "+55 44 98888-7777", "@SUM(A1)"]]
NUMBERS = [2, 3]
OUTCOMES = [
    Outcome(RowStatus.STARTED, phone="5544999999999", operators=("OP-1",), http_status=200, attempts=1),
    Outcome(
        RowStatus.FAILED, phone="5544988887777", operators=("007", "OP-2"), http_status=502,
        error_code=ErrorCode.SERVER_ERROR, error_message="the API answered HTTP 502", attempts=4,
        done_at="2026-12-01T09:00:00-03:00", department="DEP-9",
    ),
]  # fmt: skip


def frame_of(rows, numbers, outcomes) -> pd.DataFrame:
    """The results frame for input ``rows`` and one outcome per row."""
    outcome_columns = pd.DataFrame(
        {
            "row": numbers,
            "phone": [o.phone for o in outcomes],
            "status": [str(o.status) for o in outcomes],
            "attendance_number": [o.attendance_number for o in outcomes],
            "operators": [", ".join(o.operators) for o in outcomes],
            "http_status": pd.array([o.http_status for o in outcomes], dtype="Int64"),
            "error_code": [str(o.error_code) for o in outcomes],
            "error_message": [o.error_message for o in outcomes],
            "attempts": [o.attempts for o in outcomes],
            "done_at": [o.done_at for o in outcomes],
            "department": [o.department for o in outcomes],
        }
    )
    inputs = pd.DataFrame(rows, dtype=str).set_axis(range(len(rows[0])), axis=1)
    return contract_frame(inputs, outcome_columns)


FRAME = frame_of(ROWS, NUMBERS, OUTCOMES)


def summary_of(outcomes) -> RunSummary:
    return RunSummary(
        counts=Counter(o.status for o in outcomes),
        error_counts=Counter(o.error_code for o in outcomes if o.error_code),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("+A1", "'+A1"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+55 (44) 99999-9999", "+55 (44) 99999-9999"),
        ("-12.5", "-12.5"),
        ("Ana", "Ana"),
        ("", ""),
    ],
)
def test_inert(value, expected):
    assert inert(pd.Series([value, "Ana"], dtype=str)).tolist() == [expected, "Ana"]


def test_header_keeps_originals_first_and_renames_clashes():
    assert result_header(COLUMNS) == ["Nome", "Telefone", "phone (input)", *RESULT_COLUMNS]


def test_csv_results_follow_the_contract(tmp_path):
    out = tmp_path / "r.csv"
    write_results(str(out), COLUMNS, FRAME)
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel shows accents correctly
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Nome", "Telefone", "phone (input)", *RESULT_COLUMNS]
    assert rows[1] == [
        "Ana",
        "(44) 99999-9999",
        "x",
        "2",
        "5544999999999",
        "started",
        "",
        "OP-1",
        "200",
        "",
        "1",
        "",
        "",
    ]
    assert rows[2][:3] == ["'=1+1", "+55 44 98888-7777", "'@SUM(A1)"]
    assert rows[2][3:] == [
        "3", "5544988887777", "failed", "", "007, OP-2", "502",
        "server_error: the API answered HTTP 502", "4", "2026-12-01T09:00:00-03:00", "DEP-9",
    ]  # fmt: skip


def test_csv_without_bom(tmp_path):
    out = tmp_path / "r.csv"
    write_results(str(out), COLUMNS, FRAME, bom=False)
    assert out.read_bytes().startswith(b"Nome,")


def test_stdout_results(tmp_path):
    buffer = io.StringIO()
    write_results("-", COLUMNS, FRAME, stdout=buffer)
    assert buffer.getvalue().startswith("Nome,Telefone,phone (input),row,phone,status")


def test_xlsx_keeps_phones_and_ids_as_text_and_formulas_inert(tmp_path):
    out = tmp_path / "r.xlsx"
    write_results(str(out), COLUMNS, FRAME, summary=summary_of(OUTCOMES))
    book = openpyxl.load_workbook(out)
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    assert header == ["Nome", "Telefone", "phone (input)", *RESULT_COLUMNS]  # as the CSV
    second = sheet[3]
    nome = second[header.index("Nome")]
    assert nome.value == "=1+1" and nome.data_type == "s"  # text, not a formula
    phone = second[header.index("phone")]
    assert phone.value == "5544988887777" and phone.data_type == "s"
    operators = second[header.index("operators")]
    assert operators.value == "007, OP-2" and operators.data_type == "s"
    assert second[header.index("row")].value == 3
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref
    totals = {r[0]: r[1] for r in book["Summary"].iter_rows(min_row=2, max_row=6, values_only=True)}
    assert totals["started"] == 1 and totals["failed"] == 1


def test_write_is_atomic_on_failure(tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("previous results")
    with pytest.raises(ValueError):  # a header name short
        write_results(str(out), COLUMNS[:2], FRAME)
    assert out.read_text() == "previous results"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_check_output_refuses_input_as_output(tmp_path):
    source = tmp_path / "leads.csv"
    source.write_text("x")
    with pytest.raises(OutputError, match="overwrite the input"):
        check_output(str(source), source)


@pytest.mark.parametrize("name", ["missing/r.csv", "r.json", "r"])
def test_check_output_refuses_bad_targets(tmp_path, name):
    with pytest.raises(OutputError):
        check_output(str(tmp_path / name), tmp_path / "leads.csv")


def test_check_output_refuses_unwritable_folder(tmp_path):
    # /proc refuses new files even to root, so this holds wherever the tests run.
    with pytest.raises(OutputError, match="cannot write in '/proc'"):
        check_output("/proc/r.csv", tmp_path / "leads.csv")


def test_format_summary():
    summary = summary_of(OUTCOMES)
    summary.elapsed, summary.decided_rows, summary.output = 2.0, 2, "r.csv"
    assert (
        format_summary(summary)
        == "2 rows: 1 started, 1 failed in 2.0 s (1.0 rows/s). Results: r.csv"
    )


def test_format_summary_counts_only_what_this_run_decided_and_says_one_row():
    summary = summary_of(OUTCOMES[:1])
    summary.elapsed, summary.retries, summary.pushbacks, summary.output = 2.0, 1, 1, "r.csv"
    summary.resumed = 1  # done by an earlier run: no request of this run, no rate
    assert format_summary(summary) == (
        "1 row: 1 started in 2.0 s; 1 done by an earlier run; 1 retry; 1 request refused by a "
        "rate limit. Results: r.csv"
    )


def test_a_dry_run_reports_rows_ready():
    summary = RunSummary(dry_run=True, elapsed=0.1, output="r.csv")
    summary.counts.update({"skipped": 5})
    summary.error_counts.update({"dry_run": 5})
    assert format_summary(summary) == "5 rows: 5 ready to send in 0.1 s. Results: r.csv"


def test_too_many_rows_for_a_worksheet_are_refused_up_front():
    from batch_attend.reading.table import Table
    from batch_attend.results import XLSX_MAX_DATA_ROWS, check_fits

    def rows(count: int) -> Table:
        frame = pd.DataFrame({0: np.full(count, "", dtype=object)})
        return Table(Path("leads.csv"), None, ["Nome"], frame, np.arange(count) + 2)

    check_fits("r.xlsx", rows(XLSX_MAX_DATA_ROWS))
    check_fits("r.csv", rows(XLSX_MAX_DATA_ROWS + 1))
    check_fits("-", rows(XLSX_MAX_DATA_ROWS + 1))
    with pytest.raises(OutputError, match=r"1,048,576 rows do not fit in one worksheet.*\.csv"):
        check_fits("r.xlsx", rows(XLSX_MAX_DATA_ROWS + 1))


any_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(any_text, any_text), min_size=1, max_size=12), st.booleans())
def test_csv_results_read_back_as_written(tmp_path_factory, rows, to_stdout):
    """What the csv module reads back is every cell as given, would-be formulas made inert."""
    outcomes = [
        Outcome(RowStatus.FAILED, phone="5544999999999", operators=(b,) if b else (),
                http_status=None if i % 2 else 500, error_code="server_error", error_message=a,
                attempts=i)
        for i, (a, b) in enumerate(rows)
    ]  # fmt: skip
    frame = frame_of([list(r) for r in rows], list(range(2, 2 + len(rows))), outcomes)
    if to_stdout:
        buffer = io.StringIO()
        write_results("-", ["A", "=B"], frame, stdout=buffer)
        text = buffer.getvalue()
    else:
        out = tmp_path_factory.mktemp("r") / "r.csv"
        write_results(str(out), ["A", "=B"], frame)
        text = out.read_bytes().decode("utf-8-sig")
    header, *back = list(csv.reader(io.StringIO(text, newline="")))
    assert header == ["A", "'=B", *RESULT_COLUMNS]
    for (a, b), outcome, got in zip(rows, outcomes, back, strict=True):
        assert got[:2] == inert(pd.Series([a, b], dtype=str)).tolist()
        assert got[6] == inert(pd.Series([b], dtype=str)).tolist()[0]
        assert got[8] == outcome.error and got[9] == str(outcome.attempts)


def test_outcomes_of_gives_back_the_outcomes():
    columns = FRAME.iloc[:, len(COLUMNS) :].set_axis(list(RESULT_COLUMNS), axis=1)
    columns = columns.assign(
        error_code=[str(o.error_code) for o in OUTCOMES],
        error_message=[o.error_message for o in OUTCOMES],
    ).drop(columns="error")
    columns = columns[["row", "phone", "status", "attendance_number", "operators",
                       "http_status", "error_code", "error_message", "attempts", "done_at",
                       "department"]]  # fmt: skip
    assert outcomes_of(columns) == OUTCOMES
