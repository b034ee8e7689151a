"""INPUT ``-``: a CSV or a workbook read from standard input, through click's CliRunner."""

import io
import tempfile

import pytest

from batch_attend.cli import cli
from batch_attend.reading import files as reading
from tests.conftest import TOKEN, read_results_csv, write_csv, write_xlsx

GOOD = [
    ["Nome", "Telefone", "Operadores"],
    ["Ana", "(44) 99999-9999", "OP-ANA"],
    ["Bia", "554499999998", "OP-BRUNO"],
]


def invoke(runner, sandbox, args, stdin):
    environ = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    return runner.invoke(cli, args, input=stdin, env=environ, catch_exceptions=False)


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """The folder temp files go to for this test, empty to start with."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_a_csv_on_stdin_is_read_and_its_journal_sits_beside_the_output(
    runner, sandbox, tmp_path, spool
):
    data = write_csv(tmp_path / "leads.csv", GOOD).read_bytes()
    out = tmp_path / "results.csv"
    result = invoke(runner, sandbox, ["-", "-o", str(out)], data)
    assert result.exit_code == 0, result.stderr
    rows = read_results_csv(out)
    assert [(r["Nome"], r["status"]) for r in rows] == [("Ana", "started"), ("Bia", "started")]
    assert (tmp_path / "results.csv.journal").is_file()
    assert sum(sandbox.state.requests.values()) == 2
    assert list(spool.iterdir()) == []


def test_an_xlsx_on_stdin_is_recognised_by_its_content(runner, sandbox, tmp_path, spool):
    data = write_xlsx(tmp_path / "leads.xlsx", GOOD).read_bytes()
    out = tmp_path / "results.xlsx"
    result = invoke(runner, sandbox, ["-", "-o", str(out)], data)
    assert result.exit_code == 0, result.stderr
    assert sorted(sandbox.state.requests) == ["554499999998", "5544999999999"]
    assert list(spool.iterdir()) == []


def test_a_results_file_on_stdin_carries_its_done_rows_over(runner, sandbox, tmp_path):
    leads = write_xlsx(tmp_path / "leads.xlsx", GOOD)
    first = tmp_path / "first.xlsx"
    assert invoke(runner, sandbox, [str(leads), "-o", str(first)], b"").exit_code == 0
    out = tmp_path / "second.csv"
    result = invoke(runner, sandbox, ["-", "-o", str(out)], first.read_bytes())
    assert result.exit_code == 0, result.stderr
    rows = read_results_csv(out)
    assert [(r["Nome"], r["status"]) for r in rows] == [("Ana", "started"), ("Bia", "started")]
    assert "status (input)" not in rows[0]  # recognised, not taken for the user's columns
    assert sum(sandbox.state.requests.values()) == 2  # nothing sent again


def test_stdin_without_o_exits_2_before_reading_it(runner, sandbox, tmp_path):
    stdin = io.BytesIO(write_csv(tmp_path / "leads.csv", GOOD).read_bytes())
    result = invoke(runner, sandbox, ["-"], stdin)
    assert result.exit_code == 2
    assert "<stdin>: the input has no name to put the results beside; give -o PATH" in (
        result.stderr
    )
    assert stdin.tell() == 0
    assert sandbox.state.requests == {}


def test_stdin_with_results_on_stdout_needs_a_journal(runner, sandbox, tmp_path):
    data = write_csv(tmp_path / "leads.csv", GOOD).read_bytes()
    stdin = io.BytesIO(data)
    result = invoke(runner, sandbox, ["-", "-o", "-"], stdin)
    assert result.exit_code == 2 and stdin.tell() == 0
    assert "give --journal PATH" in result.stderr
    journal = tmp_path / "leads.journal"
    result = invoke(runner, sandbox, ["-", "-o", "-", "--journal", str(journal)], data)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3 and journal.is_file()


def test_messages_name_stdin_and_the_temp_file_is_gone_whatever_happens(
    runner, sandbox, tmp_path, spool, monkeypatch
):
    seen = []
    read_table = reading.read_table

    def spy(path, **options):
        seen.append((path, path.is_file(), path.parent.stat().st_mode & 0o777))
        return read_table(path, **options)

    monkeypatch.setattr(reading, "read_table", spy)
    data = write_csv(tmp_path / "leads.csv", [["Nome", "Cidade"], ["Ana", "Maringá"]]).read_bytes()
    result = invoke(runner, sandbox, ["-", "-o", str(tmp_path / "r.csv")], data)
    assert result.exit_code == 2
    assert result.stderr.startswith("batch-attend: error: <stdin>: no phone column found.")
    ((path, existed, mode),) = seen
    assert existed and path.suffix == ".csv" and mode == 0o700  # a private folder of its own
    assert str(path) not in result.stderr and str(spool) not in result.stderr
    assert not path.exists() and list(spool.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "<stdin>: the file is empty."),
        (b"<html><body>Login</body></html>", "<stdin>: the content is an HTML page, not a CSV"),
    ],
)
def test_what_is_not_a_spreadsheet_is_refused(runner, sandbox, tmp_path, spool, data, message):
    result = invoke(runner, sandbox, ["-", "-o", str(tmp_path / "r.csv")], data)
    assert result.exit_code == 2
    assert message in result.stderr
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize(
    ("limit", "head", "what"),
    [
        ("MAX_TEXT_BYTES", b"Telefone\n", "a CSV file"),
        ("MAX_INFLATED_BYTES", b"PK\x03\x04", "a workbook"),
    ],
)
def test_stdin_past_the_size_limit_is_refused_without_reading_it_all(
    runner, sandbox, tmp_path, spool, monkeypatch, limit, head, what
):
    monkeypatch.setattr(reading, limit, 1000)
    monkeypatch.setattr(reading, "_SPOOL_CHUNK", 256)
    stdin = io.BytesIO(head + b"44999990001\n" * 10_000)
    result = invoke(runner, sandbox, ["-", "-o", str(tmp_path / "r.csv")], stdin)
    assert result.exit_code == 2
    assert (
        f"<stdin>: more than the 0.0 MiB batch-attend reads from {what} came on standard input"
        in result.stderr
    )
    assert stdin.tell() <= 1000 + 256
    assert list(spool.iterdir()) == []


def test_check_reads_stdin(runner, sandbox, tmp_path, spool):
    data = write_csv(tmp_path / "leads.csv", GOOD).read_bytes()
    result = invoke(runner, sandbox, ["check", "-"], data)
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Plan: <stdin>, header row 1: phone 'Telefone'")
    assert lines[1].endswith("2 rows: 2 ready to send, 0 invalid, 0 duplicates (skipped).")
    assert sandbox.state.requests == {}
    assert list(spool.iterdir()) == [] and not list(tmp_path.glob("*.journal"))
