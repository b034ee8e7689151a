"""The main command through click's CliRunner: exit codes, stdout/stderr, results, token hygiene."""

import re

import pytest

from batch_attend import __version__
from batch_attend.cli import cli
from batch_attend.sandbox import Fault
from tests.conftest import SAMPLES, TOKEN, read_results_csv, write_csv

GOOD = [
    ["Nome", "Telefone", "Operadores", "Departamento"],
    ["Ana", "(44) 99999-9999", "OP-ANA", "DEP-VENDAS"],
    ["Bia", "554488887777", "OP-BRUNO; OP-ANA", ""],
    ["Caio", "+55 11 98765-4321", "OP-CARLA", "DEP-SUPORTE"],
]


def invoke(runner, sandbox, args, token=TOKEN, **env):
    environ = {"PLUGCHAT_TOKEN": token, "PLUGCHAT_BASE_URL": sandbox.base_url if sandbox else None}
    environ.update(env)
    return runner.invoke(cli, args, env=environ, catch_exceptions=False)


def test_all_rows_started_exit_0(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    out = tmp_path / "results.csv"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    plan, rows_line, summary = result.stderr.splitlines()
    assert plan.startswith(f"batch-attend: Plan: {leads}, header row 1: phone 'Telefone' ")
    assert rows_line.endswith("3 rows: 3 ready to send, 0 invalid, 0 duplicates (skipped).")
    assert re.fullmatch(
        r"3 rows: 3 started in \d+\.\d s \([\d,.]+ rows/s\)\. Results: .*results\.csv", summary
    )
    rows = read_results_csv(out)
    assert [r["status"] for r in rows] == ["started"] * 3
    assert [r["row"] for r in rows] == ["2", "3", "4"]
    assert rows[1]["operators"] == "OP-BRUNO, OP-ANA"
    assert rows[0]["Nome"] == "Ana" and rows[0]["Telefone"] == "(44) 99999-9999"
    assert [e.get("departmentId", "(omitted)") for e in sorted(sandbox.state.log, key=lambda e: e["phone"])] == [
        "DEP-SUPORTE", "(omitted)", "DEP-VENDAS",
    ]  # fmt: skip


def test_rerun_resumes_from_the_journal_and_sends_nothing(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out)]).exit_code == 0
    first = out.read_bytes()
    result = invoke(runner, sandbox, [str(leads), "-o", str(out)])
    assert result.exit_code == 0
    assert "3 done by an earlier run" in result.stderr
    assert sum(sandbox.state.requests.values()) == 3
    assert out.read_bytes() == first


def test_fresh_rerun_reports_already_in_service(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out)]).exit_code == 0
    result = invoke(runner, sandbox, [str(leads), "-o", str(out), "--fresh"])
    assert result.exit_code == 0
    rows = read_results_csv(out)
    assert {r["status"] for r in rows} == {"already_in_service"}
    assert all(r["attendance_number"].isdigit() for r in rows)
    assert rows[1]["operators"] == "OP-BRUNO, OP-ANA"
    assert sum(sandbox.state.starts.values()) == 3


def test_invalid_rows_exit_1_and_are_never_sent(runner, sandbox, tmp_path):
    rows = [*GOOD, ["Duda", "12345", "OP-ANA", ""], ["Edu", "(44) 98888-7777", "", ""]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "results.csv"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out)])
    assert result.exit_code == 1
    results = read_results_csv(out)
    assert [r["status"] for r in results][3:] == ["invalid", "invalid"]
    assert results[3]["error"].startswith("invalid_phone: ")
    assert results[4]["error"].startswith("missing_operators: ")
    assert results[4]["phone"] == ""
    assert "5544988887777" not in sandbox.state.requests
    assert sum(sandbox.state.requests.values()) == 3


def test_operator_and_department_defaults(runner, sandbox, tmp_path):
    rows = [
        ["Telefone", "Operadores", "Setor"],
        ["(44) 98888-7777", "", ""],
        ["(44) 97777-6666", "OP-CARLA", "vendas"],  # a department name: resolved to its ID,
    ]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    args = [
        str(leads),
        "-o",
        str(out),
        "--operator",
        "OP-ANA",
        "--operator",
        "OP-BRUNO",
        "--department",
        "DEP-SUPORTE",
    ]
    assert invoke(runner, sandbox, args).exit_code == 0
    sent = {e["phone"]: e for e in sandbox.state.log}
    assert sent["5544988887777"]["operators"] == ["OP-ANA", "OP-BRUNO"]
    assert sent["5544988887777"]["departmentId"] == "DEP-SUPORTE"
    assert sent["5544977776666"]["operators"] == ["OP-CARLA"]
    assert sent["5544977776666"]["departmentId"] == "DEP-VENDAS"


def test_duplicate_phones_are_sent_once(runner, sandbox, tmp_path):
    rows = [*GOOD, ["Ana de novo", "+55 44 99999-9999", "OP-BRUNO", ""]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out)])
    assert result.exit_code == 0
    last = read_results_csv(out)[-1]
    assert (last["status"], last["error"]) == ("skipped", "duplicate_row: same phone as row 2")
    assert sandbox.state.requests["5544999999999"] == 1


@pytest.mark.parametrize("with_departments", [True, False])
def test_wrong_token_stops_and_exits_3(runner, sandbox, tmp_path, with_departments):
    rows = GOOD if with_departments else [r[:3] for r in GOOD]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    wrong = "tok-WRONG-abcdef123"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out), "-c", "1"], token=wrong)
    assert result.exit_code == 3
    assert "refused the token" in result.stderr
    rows = read_results_csv(out)
    assert {r["status"] for r in rows} == {"skipped"}
    assert all(r["error"].startswith("unauthorized: ") for r in rows)
    # The department lookup, or else the WhatsApp status asked before the first start, meets
    # the 401: no start request goes out.
    assert sum(sandbox.state.answers.values()) == 0
    for text in (result.stdout, result.stderr, out.read_text(encoding="utf-8-sig")):
        assert wrong not in text


def test_missing_token_is_a_usage_error_and_sends_nothing(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    result = invoke(runner, sandbox, [str(leads), "-o", str(tmp_path / "r.csv")], token=None)
    assert result.exit_code == 2
    assert "PLUGCHAT_TOKEN" in result.stderr
    assert not (tmp_path / "r.csv").exists()
    assert sandbox.state.answers == {}


def test_token_option_wins_over_environment(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    out = tmp_path / "r.csv"
    result = invoke(
        runner, sandbox, [str(leads), "-o", str(out), "--token", TOKEN], token="tok-other"
    )
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda leads, tmp: [str(leads), "-o", str(leads)], "overwrite the input"),
        (lambda leads, tmp: [str(leads), "-o", str(tmp / "no" / "r.csv")], "does not exist"),
        (lambda leads, tmp: [str(leads), "-o", str(tmp / "r.json")], "not '.json'"),
        (
            lambda leads, tmp: [str(tmp / "missing.csv"), "-o", str(tmp / "r.csv")],
            "missing.csv: no such file",
        ),
        (
            lambda leads, tmp: [str(leads), "-o", str(tmp / "r.csv"), "--phone-column", "Fax"],
            "no column named 'Fax'",
        ),
        (
            lambda leads, tmp: [str(leads), "-o", str(tmp / "r.csv"), "--base-url", "ftp://x"],
            "not an http",
        ),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(runner, sandbox, tmp_path, make_args, message):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    before = leads.read_bytes()
    result = invoke(runner, sandbox, make_args(leads, tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.startswith("batch-attend: error: ")
    assert sandbox.state.answers == {}
    assert leads.read_bytes() == before


def test_bad_option_values_exit_2(runner, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    assert runner.invoke(cli, [str(leads), "--concurrency", "0"]).exit_code == 2
    assert runner.invoke(cli, [str(leads), "--country-code", "abc"]).exit_code == 2


def test_dry_run_needs_no_token_and_sends_nothing(runner, sandbox, tmp_path):
    rows = [*GOOD, ["Duda", "12345", "OP-ANA", ""]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out), "--dry-run"], token=None)
    assert result.exit_code == 1  # one invalid row
    statuses = [(r["status"], r["error"].split(":")[0]) for r in read_results_csv(out)]
    assert statuses == [("skipped", "dry_run")] * 3 + [("invalid", "invalid_phone")]
    assert sandbox.state.answers == {}


def test_results_on_stdout(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    result = invoke(runner, sandbox, [str(leads), "-o", "-"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "Nome,Telefone,Operadores,Departamento,row,phone,status,attendance_number,operators,http_status,error,attempts,done_at,department"
    )
    assert len(lines) == 4
    assert "Results: stdout" in result.stderr
    # Results on stdout keep a ledger too, beside the input: a rerun sends nothing again.
    assert (tmp_path / "leads.csv.journal").is_file()
    again = invoke(runner, sandbox, [str(leads), "-o", "-"])
    assert again.exit_code == 0 and "3 done by an earlier run" in again.stderr
    assert sum(sandbox.state.requests.values()) == 3


def test_default_output_is_beside_the_input(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    assert invoke(runner, sandbox, [str(leads)]).exit_code == 0
    assert len(read_results_csv(tmp_path / "leads.results.csv")) == 3


def test_quiet_prints_nothing(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    result = invoke(runner, sandbox, [str(leads), "-o", str(tmp_path / "r.csv"), "-q"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_concurrency_bounds_requests_in_flight(runner, sandbox, tmp_path):
    sandbox.state.latency = 0.05
    rows = [["Telefone", "Operadores"]] + [[f"55449{i:08d}", "OP-ANA"] for i in range(40)]
    leads = write_csv(tmp_path / "leads.csv", rows)
    result = invoke(runner, sandbox, [str(leads), "-o", str(tmp_path / "r.csv"), "-c", "4"])
    assert result.exit_code == 0
    assert sandbox.state.max_in_flight == 4


def test_failed_rows_carry_code_and_http_status(runner, sandbox, tmp_path):
    sandbox.state.faults = {"5544999999999": Fault("fail"), "554488887777": Fault("html")}
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    out = tmp_path / "r.csv"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out), "--backoff", "0"])
    assert result.exit_code == 1
    rows = read_results_csv(out)
    assert (rows[0]["status"], rows[0]["http_status"], rows[0]["error"].split(":")[0]) == (
        "failed",
        "500",
        "server_error",
    )
    assert (rows[1]["status"], rows[1]["http_status"], rows[1]["error"].split(":")[0]) == (
        "failed",
        "200",
        "unexpected_response",
    )
    assert rows[2]["status"] == "started"


def test_sandbox_flag_runs_the_samples_without_token_or_internet(runner, tmp_path):
    out = tmp_path / "r.xlsx"
    result = runner.invoke(
        cli,
        [str(SAMPLES / "leads.xlsx"), "-o", str(out), "--sandbox"],
        env={"PLUGCHAT_TOKEN": None},
    )
    assert result.exit_code == 1, result.stderr  # the samples hold invalid rows on purpose
    assert result.stderr.splitlines()[-1].startswith("12 rows: 9 started, 2 invalid, 1 skipped in ")
    assert out.exists()


def test_token_appears_nowhere(runner, sandbox, tmp_path):
    """Success, failure and refusal paths: the token is in no output and no results file."""
    sandbox.state.faults = {"5544999999999": Fault("fail")}
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    outputs = []
    for args in [
        ["-o", "r.csv", "--verbose", "--backoff", "0"],
        ["-o", "r.xlsx", "--backoff", "0"],
        ["-o", "-", "--verbose", "--backoff", "0"],
        ["-o", "r2.csv", "--token", TOKEN, "--backoff", "0"],
    ]:
        args = [str(tmp_path / a) if a.startswith("r") else a for a in args]
        outputs.append(invoke(runner, sandbox, [str(leads), *args]))
    wrong = invoke(runner, sandbox, [str(leads), "-o", str(tmp_path / "w.csv")], token=TOKEN + "x")
    assert wrong.exit_code == 3
    outputs.append(wrong)
    for result in outputs:
        assert TOKEN not in result.stdout and TOKEN not in result.stderr
    written = sorted(p.name for p in tmp_path.iterdir())
    assert "r.csv.journal" in written and "w.csv" in written
    for path in tmp_path.iterdir():
        assert TOKEN.encode() not in path.read_bytes(), path


def test_version_and_help(runner):
    assert runner.invoke(cli, ["--version"]).stdout == f"batch-attend, version {__version__}\n"
    help_text = runner.invoke(cli, ["--help"]).stdout
    for option in ("--output", "--token", "--base-url", "--operator", "--department", "--country-code",
                   "--concurrency", "--timeout", "--phone-column", "--operators-column",
                   "--department-column", "--dry-run", "--sandbox", "--quiet", "--version"):  # fmt: skip
        assert option in help_text
    assert "batch-attend leads.xlsx -o results.csv" in help_text
    assert "sandbox" in help_text


def test_progress_bar_only_on_a_terminal(sandbox, tmp_path):
    import io

    from batch_attend.env import Env
    from batch_attend.run import run_batch
    from batch_attend.settings import RunOptions

    leads = write_csv(tmp_path / "leads.csv", GOOD)
    for isatty, quiet, drawn in [(True, False, True), (False, False, False), (True, True, False)]:
        stderr = io.StringIO()
        env = Env(stdout=io.StringIO(), stderr=stderr, environ={}, stderr_isatty=isatty)
        options = RunOptions.build(
            input=leads, output=str(tmp_path / "r.csv"), token=TOKEN, base_url=sandbox.base_url,
            quiet=quiet, fresh=True,
        )  # fmt: skip
        run_batch(options, env)
        assert ("Starting attendances" in stderr.getvalue()) is drawn
