"""``batch-attend template``: the workbook to start from, and that it runs once filled in."""

import openpyxl
import pytest

from batch_attend.cli import cli
from batch_attend.directory import Operator
from batch_attend.sandbox import SANDBOX_TICKET
from batch_attend.template import operator_choices
from tests.conftest import TOKEN, read_results_csv


def make(runner, sandbox, path, *args, ticket=SANDBOX_TICKET):
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url, "PLUGCHAT_TICKET": None}
    extra = ["--ticket", ticket] if ticket else []
    return runner.invoke(cli, ["template", str(path), *extra, *args], env=env)


def active_names(items):
    return [item["name"] for item in items if item["active"]]


def test_sheets_headers_and_phone_column_as_text(runner, sandbox, tmp_path):
    result = make(runner, sandbox, tmp_path / "leads.xlsx")
    assert result.exit_code == 0, result.stderr
    book = openpyxl.load_workbook(tmp_path / "leads.xlsx")
    assert book.sheetnames == ["Instruções", "Leads", "Listas"]
    assert [ws.sheet_state for ws in book] == ["visible", "visible", "hidden"]
    leads = book["Leads"]
    assert [c.value for c in leads[1]] == ["Nome", "Telefone", "Operadores", "Departamento", "Observação"]  # fmt: skip
    assert all(c.font.b for c in leads[1]) and leads.freeze_panes == "A2"
    assert leads.column_dimensions["B"].number_format == "@"  # the whole column: Excel keeps digits
    guide = "\n".join(str(row[0]) for row in book["Instruções"].values if row[0])
    for words in ("(44) 99999-9999", "DDD", "ponto e vírgula", "opcional", "batch-attend leads.xlsx"):  # fmt: skip
        assert words in guide


def test_drop_downs_list_the_active_operators_and_departments(runner, sandbox, tmp_path):
    assert make(runner, sandbox, tmp_path / "leads.xlsx").exit_code == 0
    book = openpyxl.load_workbook(tmp_path / "leads.xlsx")
    lists = list(book["Listas"].iter_cols(values_only=True))
    operators = [v for v in lists[0][1:] if v]
    departments = [v for v in lists[1][1:] if v]
    assert operators == active_names(sandbox.state.operators) == ["Ana Souza", "Bruno Lima", "Carla Nogueira"]  # fmt: skip
    assert departments == active_names(sandbox.state.departments) == ["Vendas", "Suporte"]
    rules = {str(dv.sqref): dv for dv in book["Leads"].data_validations.dataValidation}
    assert set(rules) == {"C2:C1048576", "D2:D1048576"}
    assert rules["C2:C1048576"].type == "list" and rules["D2:D1048576"].type == "list"
    assert rules["C2:C1048576"].formula1 == "Listas!$A$2:$A$4"
    assert rules["D2:D1048576"].formula1 == "Listas!$B$2:$B$3"
    assert rules["C2:C1048576"].errorStyle == "warning"  # "Ana Souza; Bruno Lima" may be typed


def test_without_a_ticket_there_is_no_operators_drop_down(runner, sandbox, tmp_path):
    result = make(runner, sandbox, tmp_path / "leads.xlsx", ticket=None)
    assert result.exit_code == 0, result.stderr
    assert "no ticket" in result.stderr and "no operators drop-down" in result.stderr
    book = openpyxl.load_workbook(tmp_path / "leads.xlsx")
    rules = book["Leads"].data_validations.dataValidation
    assert [(str(dv.sqref), dv.formula1) for dv in rules] == [("D2:D1048576", "Listas!$B$2:$B$3")]
    assert [row[0] for row in book["Listas"].values if row[0]] == ["Operadores"]  # empty
    assert sandbox.state.directory_requests.get("operators", 0) == 0


def test_an_existing_file_is_kept_unless_forced(runner, sandbox, tmp_path):
    path = tmp_path / "leads.xlsx"
    path.write_bytes(b"mine")
    result = make(runner, sandbox, path)
    assert result.exit_code == 2
    assert "already exists" in result.stderr and "--force" in result.stderr
    assert path.read_bytes() == b"mine"
    assert make(runner, sandbox, path, "--force").exit_code == 0
    assert openpyxl.load_workbook(path).sheetnames[1] == "Leads"
    assert [p.name for p in tmp_path.iterdir()] == ["leads.xlsx"]  # no temporary file left


@pytest.mark.parametrize("name", ["leads.csv", "leads.xls", "leads"])
def test_the_output_must_be_xlsx(runner, sandbox, tmp_path, name):
    result = make(runner, sandbox, tmp_path / name)
    assert result.exit_code == 2
    assert "ending in .xlsx" in result.stderr
    assert list(tmp_path.iterdir()) == [] and sandbox.state.log == []


def test_names_that_would_not_resolve_are_listed_by_id():
    operators = [
        Operator("OP-1", "Ana Souza"),
        Operator("OP-2", "Ana Souza"),  # two of one name: the run would call it ambiguous
        Operator("OP-3", "Lima, Bruno"),  # the comma would split the cell in two
        Operator("OP-4", ""),
        Operator("OP-5", "Carla"),
        Operator("OP-6", "Diego", active=False),
    ]
    assert operator_choices(operators) == ["OP-1", "OP-2", "OP-3", "OP-4", "Carla"]


def test_a_filled_in_template_runs_as_it_is(runner, sandbox, tmp_path):
    assert make(runner, sandbox, tmp_path / "leads.xlsx").exit_code == 0
    book = openpyxl.load_workbook(tmp_path / "leads.xlsx")
    operators, departments = (
        [v for v in col[1:] if v] for col in book["Listas"].iter_cols(values_only=True)
    )
    leads = book["Leads"]
    leads.append(["Maria", "(44) 99999-0001", operators[0], departments[0], "ligar à tarde"])
    leads.append(["João", "44 99999-0002", f"{operators[1]}; {operators[2]}", None])
    leads.append(["Zé", "(21) 98765-0003", operators[2], departments[1]])
    book.save(tmp_path / "filled.xlsx")
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    out = tmp_path / "r.csv"
    result = runner.invoke(
        cli, [str(tmp_path / "filled.xlsx"), "-o", str(out), "--ticket", SANDBOX_TICKET], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in read_results_csv(out)] == ["started"] * 3
    sent = {e["phone"]: e for e in sandbox.state.log}
    assert sent["5544999990001"] == {
        "phone": "5544999990001", "operators": ["OP-ANA"], "departmentId": "DEP-VENDAS",
    }  # fmt: skip
    assert sent["5544999990002"]["operators"] == ["OP-BRUNO", "OP-CARLA"]
    assert "departmentId" not in sent["5544999990002"]
    assert sent["5521987650003"]["departmentId"] == "DEP-SUPORTE"


def test_without_a_token_nothing_is_written(runner, tmp_path):
    env = {"PLUGCHAT_TOKEN": None, "PLUGCHAT_TICKET": None}
    result = runner.invoke(cli, ["template", str(tmp_path / "leads.xlsx")], env=env)
    assert result.exit_code == 2
    assert "no API token" in result.stderr
    assert list(tmp_path.iterdir()) == []
