"""Operator and department names instead of IDs, and operator pools, against the sandbox."""

import pytest

from batch_attend.cli import cli
from tests.conftest import TOKEN, read_results_csv, write_csv

TICKET = "0000"


def run(runner, sandbox, tmp_path, rows, *args, ticket=TICKET):
    leads = write_csv(tmp_path / "leads.csv", [["Telefone", "Operadores", "Departamento"], *rows])
    out = tmp_path / "r.csv"
    env = {
        "PLUGCHAT_TOKEN": TOKEN,
        "PLUGCHAT_BASE_URL": sandbox.base_url,
        "PLUGCHAT_TICKET": ticket,
    }
    result = runner.invoke(cli, [str(leads), "-o", str(out), *args], env=env)
    return result, read_results_csv(out) if out.exists() else []


def sent(sandbox):
    return {e["phone"]: e for e in sandbox.state.log}


def test_ids_logins_names_and_emails_resolve_to_ids(runner, sandbox, tmp_path):
    rows = [
        ["44999990001", "OP-ANA", "DEP-VENDAS"],
        ["44999990002", "bruno.lima", "vendas"],
        ["44999990003", "ANA SOUZA; carla@example.com.br", "Suporte"],
        ["44999990004", "Bruno Lima | op-carla", ""],
    ]
    result, results = run(runner, sandbox, tmp_path, rows)
    assert result.exit_code == 0, result.stderr
    requests = sent(sandbox)
    assert requests["5544999990001"]["operators"] == ["OP-ANA"]
    assert requests["5544999990002"] == {
        "phone": "5544999990002", "operators": ["OP-BRUNO"], "departmentId": "DEP-VENDAS",
    }  # fmt: skip
    assert requests["5544999990003"]["operators"] == ["OP-ANA", "OP-CARLA"]
    assert requests["5544999990003"]["departmentId"] == "DEP-SUPORTE"
    assert requests["5544999990004"]["operators"] == ["OP-BRUNO", "OP-CARLA"]
    assert "departmentId" not in requests["5544999990004"]
    assert [r["operators"] for r in results] == [
        "OP-ANA",
        "OP-BRUNO",
        "OP-ANA, OP-CARLA",
        "OP-BRUNO, OP-CARLA",
    ]
    assert sandbox.state.directory_requests == {"departments": 1, "operators": 1}  # fetched once


@pytest.mark.parametrize(
    ("operators", "department", "code", "words"),
    [
        ("Zé Ninguém", "", "unknown_operator", "no operator 'Zé Ninguém'"),
        ("Diego Araújo", "", "inactive_operator", "Diego Araújo (OP-DIEGO) is inactive"),
        ("OP-ANA", "Marketing", "unknown_department", "no department 'Marketing'"),
        ("OP-ANA", "pos-venda (antigo)", "inactive_department", "Pós-venda (antigo) (DEP-ANTIGO) is inactive"),
    ],
)  # fmt: skip
def test_unresolvable_cells_make_the_row_invalid(
    runner, sandbox, tmp_path, operators, department, code, words
):
    result, results = run(runner, sandbox, tmp_path, [["44999990001", operators, department]])
    assert result.exit_code == 1
    assert results[0]["status"] == "invalid"
    assert results[0]["error"].startswith(f"{code}: ") and words in results[0]["error"]
    assert sandbox.state.log == []  # never sent


def test_ambiguous_name_names_both_operators(runner, sandbox, tmp_path):
    sandbox.state.operators.append(
        {"id": "OP-ANA2", "name": "Ana Souza", "login": "asouza", "active": True}
    )
    result, results = run(runner, sandbox, tmp_path, [["44999990001", "ana souza", ""]])
    assert result.exit_code == 1
    error = results[0]["error"]
    assert error.startswith("ambiguous_operator: ")
    assert "Ana Souza (OP-ANA)" in error and "Ana Souza (OP-ANA2)" in error


def test_without_a_ticket_ids_are_sent_and_names_are_explained(runner, sandbox, tmp_path):
    rows = [["44999990001", "OP-ANA", ""], ["44999990002", "Ana Souza", ""]]
    result, results = run(runner, sandbox, tmp_path, rows, ticket="")
    assert result.exit_code == 1
    assert results[0]["status"] == "started"
    assert results[1]["error"].startswith("unknown_operator: 'Ana Souza' looks like a name")
    assert "--ticket" in results[1]["error"]
    assert "operators" not in sandbox.state.directory_requests


def test_no_lookup_sends_cells_as_they_are(runner, sandbox, tmp_path):
    result, _ = run(
        runner, sandbox, tmp_path, [["44999990001", "Ana Souza", "Vendas"]], "--no-lookup"
    )
    # Sent as written; the sandbox, like an account, has no operator of that ID.
    assert result.exit_code == 1
    assert sent(sandbox)["5544999990001"]["operators"] == ["Ana Souza"]
    assert sandbox.state.directory_requests == {}
    assert sandbox.state.answers == {"400": 1}


def test_round_robin_pool(runner, sandbox, tmp_path):
    rows = [[f"4499999000{i}", "", ""] for i in range(1, 6)] + [["44999990006", "OP-CARLA", ""]]
    result, results = run(runner, sandbox, tmp_path, rows, "--pool", "OP-ANA,Bruno Lima")
    assert result.exit_code == 0, result.stderr
    assert [r["operators"] for r in results] == [
        "OP-ANA",
        "OP-BRUNO",
        "OP-ANA",
        "OP-BRUNO",
        "OP-ANA",
        "OP-CARLA",
    ]


def test_balanced_pool_counts_rows_that_already_name_members(runner, sandbox, tmp_path):
    rows = [
        ["44999990001", "OP-ANA", ""],
        ["44999990002", "OP-ANA", ""],
        ["44999990003", "", ""],
        ["44999990004", "", ""],
        ["44999990005", "", ""],
        ["44999990006", "", ""],
    ]
    pool_file = tmp_path / "pool.txt"
    pool_file.write_text("# equipe de vendas\nOP-ANA\nOP-BRUNO\n\nOP-CARLA  # meio período\n")
    result, results = run(
        runner, sandbox, tmp_path, rows, "--pool-file", str(pool_file), "--distribute", "balanced"
    )
    assert result.exit_code == 0, result.stderr
    assert [r["operators"] for r in results] == [
        "OP-ANA",
        "OP-ANA",
        "OP-BRUNO",
        "OP-CARLA",
        "OP-BRUNO",
        "OP-CARLA",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "OP-ANA", "--operator", "OP-BRUNO"], "not both"),
        (["--pool", " , "], "pool is empty"),
        (["--pool", "Zé Ninguém"], "--pool: no operator 'Zé Ninguém'"),
        (["--pool-file", "missing.txt"], "cannot read the pool file"),
    ],
)
def test_bad_pools_are_usage_errors(runner, sandbox, tmp_path, args, message):
    result, _ = run(runner, sandbox, tmp_path, [["44999990001", "", ""]], *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert sandbox.state.log == []
