"""The results file: contract columns, inert cells, text phones in XLSX, atomic writes."""

import csv
import io

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_attend.outcomes import ErrorCode, Outcome, RowStatus, RunSummary
from batch_attend.results import (
    RESULT_COLUMNS,
    OutputError,
    check_output,
    format_summary,
    inert,
    result_header,
    results_frame,
    write_csv,
    write_results,
)

COLUMNS = ["Nome", "Telefone", "phone"]
ROWS = [["Ana", "(44) 99999-9999", "x"], ["=1+1", "+55 44 98888-7777", "@SUM(A1)"]]
CELLS = [list(column) for column in zip(*ROWS, strict=True)]  # column-major, as Table keeps it
NUMBERS = [2, 3]
OUTCOMES = [
    Outcome(RowStatus.STARTED, phone="5544999999999", operators=("OP-1",), http_status=200, attempts=1),
    Outcome(
        RowStatus.FAILED, phone="5544988887777", operators=("007", "OP-2"), http_status=502,
        error_code=ErrorCode.SERVER_ERROR, error_message="the API answered HTTP 502", attempts=4,
    ),
]  # fmt: skip


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
    assert inert(value) == expected


def test_header_keeps_originals_first_and_renames_clashes():
    assert result_header(COLUMNS) == ["Nome", "Telefone", "phone (input)", *RESULT_COLUMNS]


def test_csv_results_follow_the_contract(tmp_path):
    out = tmp_path / "r.csv"
    write_results(str(out), COLUMNS, CELLS, NUMBERS, OUTCOMES)
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
    ]
    assert rows[2][:3] == ["'=1+1", "+55 44 98888-7777", "'@SUM(A1)"]
    assert rows[2][3:] == [
        "3", "5544988887777", "failed", "", "007, OP-2", "502",
        "server_error: the API answered HTTP 502", "4",
    ]  # fmt: skip


def test_csv_without_bom(tmp_path):
    out = tmp_path / "r.csv"
    write_results(str(out), COLUMNS, CELLS, NUMBERS, OUTCOMES, bom=False)
    assert out.read_bytes().startswith(b"Nome,")


def test_stdout_results(tmp_path):
    buffer = io.StringIO()
    write_results("-", COLUMNS, CELLS, NUMBERS, OUTCOMES, stdout=buffer)
    assert buffer.getvalue().startswith("Nome,Telefone,phone (input),row,phone,status")


def test_xlsx_keeps_phones_and_ids_as_text_and_formulas_inert(tmp_path):
    out = tmp_path / "r.xlsx"
    summary = RunSummary()
    for o in OUTCOMES:
        summary.add(o)
    write_results(str(out), COLUMNS, CELLS, NUMBERS, OUTCOMES, summary=summary)
    book = openpyxl.load_workbook(out)
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    assert header == ["Nome", "Telefone", "phone (input)", *RESULT_COLUMNS]
    second = sheet[3]
    assert second[0].value == "=1+1" and second[0].data_type == "s"  # text, not a formula
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
    with pytest.raises(ValueError):  # zip(strict=True): one outcome short
        write_results(str(out), COLUMNS, CELLS, NUMBERS, OUTCOMES[:1])
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
    summary = RunSummary(elapsed=2.0, sent_rows=2, output="r.csv")
    for o in OUTCOMES:
        summary.add(o)
    assert (
        format_summary(summary)
        == "2 rows: 1 started, 1 failed in 2.0 s (1.0 rows/s). Results: r.csv"
    )


def test_too_many_rows_for_a_worksheet_are_refused_up_front():
    from batch_attend.results import XLSX_MAX_DATA_ROWS, check_capacity

    check_capacity("r.xlsx", XLSX_MAX_DATA_ROWS)
    check_capacity("r.csv", XLSX_MAX_DATA_ROWS + 1)
    check_capacity("-", XLSX_MAX_DATA_ROWS + 1)
    with pytest.raises(OutputError, match=r"1,048,576 rows do not fit in one worksheet.*\.csv"):
        check_capacity("r.xlsx", XLSX_MAX_DATA_ROWS + 1)


any_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(any_text, any_text), min_size=1, max_size=6),
    st.lists(st.sampled_from(list(RowStatus)), min_size=6, max_size=6),
    st.booleans(),
)
def test_csv_writer_writes_what_the_csv_module_would(rows, statuses, to_stdout):
    """The fast writer is byte for byte what csv.writer (minimal quoting, CRLF) writes."""
    outcomes = [
        Outcome(
            status,
            phone=a[:5],
            operators=(b, a) if b else (),
            http_status=None if i % 2 else 200 + i,
            error_code=b and "server_error",
            error_message=a,
            attempts=i,
        )
        for i, ((a, b), status) in enumerate(zip(rows, statuses, strict=False))
    ]
    cells = [list(column) for column in zip(*rows, strict=True)]
    numbers = list(range(2, 2 + len(rows)))
    header = result_header(["A", "=B"])
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\r\n")
    writer.writerow([inert(h) for h in header])
    for (a, b), outcome, number in zip(rows, outcomes, numbers, strict=True):
        writer.writerow(
            [
                inert(a),
                inert(b),
                number,
                inert(outcome.phone),
                outcome.status,
                outcome.attendance_number,
                inert(", ".join(outcome.operators)),
                "" if outcome.http_status is None else outcome.http_status,
                inert(outcome.error),
                outcome.attempts,
            ]
        )
    frame = results_frame(cells, numbers, outcomes)
    if to_stdout:
        got = io.StringIO()
        write_csv(got, header, frame)
        assert got.getvalue() == expected.getvalue()
    else:
        got = io.BytesIO()
        write_csv(got, header, frame)
        assert got.getvalue() == expected.getvalue().encode("utf-8")
