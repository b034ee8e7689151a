"""``batch-attend check``, ``operators`` and ``departments``: preflight without starting anything."""

import csv
import io
import json

import pytest

from batch_attend.cli import cli
from tests.conftest import TOKEN, write_csv

GOOD = [
    ["Telefone", "Operadores", "Departamento"],
    ["44999990001", "Ana Souza", "Vendas"],
    ["44999990002", "OP-BRUNO", ""],
    ["44999990003", "OP-BRUNO", ""],
]


def env_for(sandbox, token=TOKEN, ticket="0000"):
    return {
        "PLUGCHAT_TOKEN": token,
        "PLUGCHAT_BASE_URL": sandbox.base_url,
        "PLUGCHAT_TICKET": ticket,
    }


def test_check_all_ready_exits_0_and_sends_nothing(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    result = runner.invoke(cli, ["check", str(leads)], env=env_for(sandbox))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"Plan: {leads}, header row 1: phone 'Telefone' (matched telefone), operators "
        "'Operadores' (matched operadores), department 'Departamento' (matched departamento), "
        "DDD: none.",
        "Empty operators cells: nothing (such rows are invalid); empty department cells: none. "
        "3 rows: 3 ready to send, 0 invalid, 0 duplicates (skipped).",
        "Token: accepted",
        "WhatsApp: connected",
        "Departments: 3 (2 active)",
        "Operators: 4 (3 active)",
        "Ready: yes",
    ]
    assert sandbox.state.answers == {}  # no start request
    assert not list(tmp_path.glob("*.results.*")) and not list(tmp_path.glob("*.journal"))


def test_check_lists_invalid_rows_and_exits_1(runner, sandbox, tmp_path):
    rows = [*GOOD, ["123", "OP-ANA", ""], ["44999990001", "OP-ANA", ""], ["44999990009", "Zé", ""]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    result = runner.invoke(cli, ["check", str(leads)], env=env_for(sandbox))
    assert result.exit_code == 1
    assert "6 rows: 3 ready to send, 2 invalid, 1 duplicate (skipped)." in result.stdout
    assert "  row 5: invalid_phone: '123' has 3 digits" in result.stdout
    assert "  row 7: unknown_operator: no operator 'Zé'" in result.stdout
    assert result.stdout.rstrip().endswith("Ready: no")


def test_check_with_refused_token_exits_3(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    result = runner.invoke(cli, ["check", str(leads)], env=env_for(sandbox, token="wrong-token-x1"))
    assert result.exit_code == 3
    assert "Token: refused by the API (HTTP 401)" in result.stdout
    assert "wrong-token-x1" not in result.stdout + result.stderr


def test_check_without_token_or_ticket_says_what_is_missing(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [GOOD[0], ["44999990002", "OP-BRUNO", ""]])
    no_token = runner.invoke(cli, ["check", str(leads)], env=env_for(sandbox, token=""))
    assert no_token.exit_code == 2
    assert "Token: not given" in no_token.stdout
    no_ticket = runner.invoke(cli, ["check", str(leads)], env=env_for(sandbox, ticket=""))
    assert no_ticket.exit_code == 0
    assert "Operators: not checked: no ticket" in no_ticket.stdout


def test_check_input_errors_exit_2(runner, sandbox, tmp_path):
    result = runner.invoke(cli, ["check", str(tmp_path / "nope.csv")], env=env_for(sandbox))
    assert result.exit_code == 2
    assert "nope.csv: no such file" in result.stderr


@pytest.mark.parametrize("kind", ["operators", "departments"])
def test_listing_formats(runner, sandbox, kind):
    as_csv = runner.invoke(cli, [kind], env=env_for(sandbox))  # not a terminal: CSV
    assert as_csv.exit_code == 0, as_csv.stderr
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert records[0]["id"] in ("OP-ANA", "DEP-VENDAS")
    as_json = runner.invoke(cli, [kind, "--format", "json"], env=env_for(sandbox))
    assert [r["id"] for r in json.loads(as_json.stdout)] == [r["id"] for r in records]
    table = runner.invoke(cli, [kind, "--format", "table"], env=env_for(sandbox))
    assert table.stdout.splitlines()[0].split()[:2] == ["id", "name"]
    assert len(table.stdout.splitlines()) == len(records) + 1


def test_operators_need_the_ticket(runner, sandbox):
    result = runner.invoke(cli, ["operators"], env=env_for(sandbox, ticket=""))
    assert result.exit_code == 2
    assert "PLUGCHAT_TICKET" in result.stderr
    bad = runner.invoke(cli, ["operators", "--ticket", "9999"], env=env_for(sandbox))
    assert bad.exit_code == 2
    assert "HTTP 500" in bad.stderr and "ticket" in bad.stderr


def test_listing_with_refused_token_exits_3(runner, sandbox):
    result = runner.invoke(cli, ["departments"], env=env_for(sandbox, token="nope-nope"))
    assert result.exit_code == 3
    assert "refused the token" in result.stderr
