"""--summary-json and --log-file: what a scheduler reads after the run, never the token."""

import json
import re

from batch_attend.cli import cli
from batch_attend.sandbox import Fault
from tests.conftest import TOKEN, read_results_csv, write_csv

ROWS = [
    ["Telefone", "Operadores"],
    ["44999990001", "OP-ANA"],
    ["44999990002", "OP-ANA"],
    ["123", "OP-ANA"],
]


def invoke(runner, sandbox, tmp_path, *args, token=TOKEN):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    env = {"PLUGCHAT_TOKEN": token, "PLUGCHAT_BASE_URL": sandbox.base_url}
    return runner.invoke(
        cli, [str(leads), "-o", str(tmp_path / "r.csv"), "--backoff", "0", *args], env=env
    )


def test_summary_json_after_a_run(runner, sandbox, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = invoke(runner, sandbox, tmp_path, "--summary-json", str(summary_path))
    assert result.exit_code == 1
    data = json.loads(summary_path.read_text())
    assert data["exit_code"] == 1
    assert data["counts"] == {"invalid": 1, "started": 2}
    assert data["errors"] == {"invalid_phone": 1}
    assert data["rows"] == 3 and data["requests"] == 2
    assert data["input"].endswith("leads.csv") and data["output"].endswith("r.csv")
    assert data["journal"].endswith("r.csv.journal")
    assert data["elapsed_s"] > 0 and data["rows_per_s"] > 0
    done_at = read_results_csv(tmp_path / "r.csv")[0]["done_at"]  # one format: -03:00, not -0300
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", data["started_at"])
    assert len(data["started_at"]) == len(done_at) and data["started_at"][19:] == done_at[19:]
    assert TOKEN not in summary_path.read_text()


def test_summary_json_on_usage_error_and_refused_token(runner, sandbox, tmp_path):
    summary_path = tmp_path / "summary.json"
    result = invoke(
        runner, sandbox, tmp_path, "--summary-json", str(summary_path), "--phone-column", "Fax"
    )
    assert result.exit_code == 2
    data = json.loads(summary_path.read_text())
    assert data["exit_code"] == 2 and "no column named 'Fax'" in data["error"]
    result = invoke(
        runner, sandbox, tmp_path, "--summary-json", str(summary_path), token=TOKEN + "-wrong"
    )
    assert result.exit_code == 3
    data = json.loads(summary_path.read_text())
    assert data["exit_code"] == 3 and data["errors"]["unauthorized"] == 2
    assert TOKEN not in summary_path.read_text()


def test_log_file_has_one_line_per_request(runner, sandbox, tmp_path):
    sandbox.state.faults = {"5544999990002": Fault.parse("fail:1")}
    log = tmp_path / "requests.jsonl"
    result = invoke(runner, sandbox, tmp_path, "--log-file", str(log))
    assert result.exit_code == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 3  # two rows, one of them retried once
    by_row = sorted((x["row"], x["attempt"], x["status"], x["http_status"]) for x in lines)
    assert by_row == [(2, 1, "started", 200), (3, 1, "failed", 500), (3, 2, "started", 200)]
    assert {x["phone"] for x in lines} == {"*********0001", "*********0002"}
    assert all(x["latency_ms"] >= 0 for x in lines)
    assert lines[0]["time"].endswith("+00:00")
    assert TOKEN not in log.read_text()
