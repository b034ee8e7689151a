"""The XLSX results as a person forwards them: readable, printable, summarised, in the column
order of every results file."""

from collections import Counter

import openpyxl

from batch_attend.cli import cli
from batch_attend.outcomes import RESULT_COLUMNS, ErrorCode, Outcome, RowStatus, RunSummary
from batch_attend.results import write_results
from tests.conftest import TOKEN, read_results_csv, write_xlsx
from tests.test_results import frame_of

OWN = [f"col{i}" for i in range(13)] + ["Telefone", "Departamento"]  # 15 columns of the user's
LONG = "the API answered HTTP 502 " * 8


def _outcomes():
    return [
        Outcome(RowStatus.STARTED, phone="5544999999999", operators=("OP-1",), http_status=200,
                attempts=1, department="DEP-VENDAS"),
        Outcome(RowStatus.STARTED, phone="5544988887777", operators=("007", "OP-1"),
                http_status=200, attempts=1, department="DEP-VENDAS"),
        Outcome(RowStatus.FAILED, phone="5544977776666", operators=("OP-2",),
                http_status=502, error_code=ErrorCode.SERVER_ERROR, error_message=LONG, attempts=4,
                department="DEP-SUPORTE"),
        Outcome(RowStatus.INVALID, error_code=ErrorCode.INVALID_PHONE, error_message="too short"),
    ]  # fmt: skip


def _write(tmp_path, summary=True):
    rows = [[f"v{i}{j}" for j in range(13)] + [p, d] for i, (p, d) in
            enumerate([("44999999999", "Vendas"), ("44988887777", "Vendas"),
                       ("44977776666", "Suporte"), ("123", "Suporte")])]  # fmt: skip
    outcomes = _outcomes()
    frame = frame_of(rows, [2, 3, 4, 5], outcomes)
    run = None
    if summary:
        run = RunSummary(
            counts=Counter(o.status for o in outcomes),
            error_counts=Counter(o.error_code for o in outcomes if o.error_code),
            elapsed=83.25,
            output=str(tmp_path / "r.xlsx"),
            input="leads.xlsx",
            started_at="2026-12-01T09:00:00-03:00",
            names={"OP-1": "Ana Souza", "DEP-VENDAS": "Vendas", "DEP-SUPORTE": "Suporte"},
        )
    out = tmp_path / "r.xlsx"
    write_results(str(out), OWN, frame, summary=run)
    return openpyxl.load_workbook(out)


def _dim(sheet, j):
    """The column settings covering column ``j`` (1-based; one entry may span several)."""
    return next(
        d for d in sheet.column_dimensions.values() if d.min is not None and d.min <= j <= d.max
    )


def _header(sheet):
    return [c.value for c in sheet[1]]


def test_the_workbook_and_the_csv_keep_one_column_order_and_nothing_is_hidden(tmp_path):
    sheet = _write(tmp_path)["Results"]
    header = _header(sheet)
    assert header == [*OWN, *RESULT_COLUMNS]  # the user's columns as they were, then the contract
    assert not any(_dim(sheet, j).hidden for j in range(1, len(header) + 1))
    rows = [[f"v{j}" for j in range(13)] + ["44999999999", "Vendas"]]
    write_results(str(tmp_path / "r.csv"), OWN, frame_of(rows, [2], _outcomes()[:1]))
    assert list(read_results_csv(tmp_path / "r.csv")[0]) == header


def test_headers_fit_errors_wrap(tmp_path):
    sheet = _write(tmp_path)["Results"]
    header = _header(sheet)
    for j, name in enumerate(header, start=1):
        width = _dim(sheet, j).width
        assert len(name) + 2 <= width < 61, name  # the filter button beside the name
    error = header.index("error") + 1
    assert 30 <= _dim(sheet, error).width < 51
    cell = sheet.cell(row=4, column=error)
    assert cell.value.startswith("server_error: ") and cell.alignment.wrap_text
    assert sheet.cell(row=4, column=header.index("status") + 1).fill.fgColor.rgb.endswith("FFC7CE")


def test_prints_landscape_one_page_wide_header_on_every_page(tmp_path):
    sheet = _write(tmp_path)["Results"]
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)  # 1: default
    assert sheet.print_title_rows.replace("$", "") == "1:1"


def _pairs(sheet, first_col):
    """label → value of the two columns from ``first_col`` (1-based), by section."""
    sections, current = {}, None
    for row in sheet.iter_rows(min_col=first_col, max_col=first_col + 1, values_only=True):
        label, value = row
        if label is None:
            current = None
        elif current is None:
            current = sections.setdefault(label, {})
        else:
            current[label] = value
    return sections


def test_summary_sheet_tells_the_run(tmp_path, sao_paulo):
    summary = _write(tmp_path)["Summary"]
    left = _pairs(summary, 1)
    assert left["status"]["started"] == 2 and left["status"]["failed"] == 1
    assert left["status"]["total"] == 4
    assert left["error"] == {"invalid_phone": 1, "server_error": 1}
    # What was started, as sent: the failed row's operator and department are not counted.
    assert left["started, by operator"] == {"OP-1 (Ana Souza)": 2, "007": 1}
    assert left["started, by department"] == {"DEP-VENDAS (Vendas)": 2}
    run = _pairs(summary, 4)["run"]
    assert run["started at"] == "12/1/26, 9:00\u202fAM"  # as the reader writes it, local time
    assert run["input"] == "leads.xlsx"
    assert run["output"] == "r.xlsx"  # this file: no folder of the machine that wrote it
    assert run["duration"] == "0:01:23"


def test_results_workbook_given_back_as_input_carries_done_rows(runner, sandbox, tmp_path):
    rows = [["Nome", "Telefone", "Operadores", "Setor"], ["Ana", "44999999999", "OP-ANA", ""],
            ["Bia", "123", "OP-ANA", ""], ["Caio", "44988887777", "OP-ANA", ""]]  # fmt: skip
    source = write_xlsx(tmp_path / "leads.xlsx", rows)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    first = tmp_path / "r.xlsx"
    assert runner.invoke(cli, [str(source), "-o", str(first)], env=env).exit_code == 1
    again = runner.invoke(cli, [str(first), "-o", str(tmp_path / "r2.xlsx")], env=env)
    assert "2 done by an earlier run" in again.stderr, again.stderr
    sheet = openpyxl.load_workbook(tmp_path / "r2.xlsx")["Results"]
    assert _header(sheet) == ["Nome", "Telefone", "Operadores", "Setor", *RESULT_COLUMNS]
    summary = openpyxl.load_workbook(first)["Summary"]
    run = _pairs(summary, 4)["run"]
    assert run["input"] == str(source) and run["started at"]
