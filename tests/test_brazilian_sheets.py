"""Sheets as Brazilian teams export them: title and group rows above the header, their own names
for phone and operators, a DDD apart from the number, and what check and dry runs say of it."""

import openpyxl
import pytest

from batch_attend.cli import cli
from batch_attend.leads import LeadDefaults, validate
from batch_attend.reading.files import read_table
from batch_attend.reading.headers import map_columns
from tests.conftest import TOKEN, said, write_csv

TITLE = ["Exportação CRM - novembro"]
GROUP = ["Contato", "", "", "Atendimento", "", ""]
HEADER = ["Nome", "Celular/WhatsApp", "DDD", "Responsável", "Setor", "Obs"]
DATA = [["Ana", "99999-8888", "(44)", "OP-ANA", "DEP-1", ""]]


def crm_xlsx(path, rows):
    """A workbook with a group row merged as a CRM writes it: the label in the first cell."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Leads"
    for row in rows:
        sheet.append([cell or None for cell in row])
    sheet.merge_cells("A2:C2")
    sheet.merge_cells("D2:F2")
    book.save(path)
    return path


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_header_is_found_under_title_and_group_rows(tmp_path, kind):
    rows = [TITLE, GROUP, HEADER, *DATA]
    if kind == "xlsx":
        path = crm_xlsx(tmp_path / "crm.xlsx", rows)
    else:
        path = write_csv(tmp_path / "crm.csv", rows)
    table = read_table(path)
    assert table.columns == HEADER
    assert table.header_row == 3 and list(table.row_numbers) == [4]
    columns = map_columns(table)
    assert (columns.phone, columns.ddd, columns.operators, columns.department) == (1, 2, 3, 4)


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("Responsável", "operators"),
        ("responsaveis", "operators"),
        ("Atendente", "operators"),
        ("Vendedor(a)", "operators"),
        ("Vendedores", "operators"),
        ("Consultores", "operators"),
        ("Corretor", "operators"),
        ("Agente", "operators"),
        ("Telefone 1", "phone"),
        ("Tel. celular", "phone"),
        ("Celular/WhatsApp", "phone"),
        ("WhatsApp/Celular", "phone"),
        ("Telefone (com DDD)", "phone"),
        ("Whats", "phone"),
        ("Zap", "phone"),
        ("Fone 1", "phone"),
        ("DDD", "ddd"),
        ("Código de área", "ddd"),
        ("Cód. Área", "ddd"),
        ("cod area", "ddd"),
        ("Area code", "ddd"),
        ("Prefixo", "ddd"),
    ],
)
def test_brazilian_column_names(tmp_path, header, role):
    names = {"phone": "Telefone", "operators": "Operadores", "ddd": "Nota"}
    names[role] = header
    row = [names["phone"], names["operators"], names["ddd"], "Nome"]
    table = read_table(write_csv(tmp_path / "l.csv", [row, ["1", "2", "3", "4"]]))
    assert getattr(map_columns(table), role) == row.index(header)


def test_exact_phone_name_wins_over_a_qualified_one_and_contato_is_weak(tmp_path):
    rows = [["Contato", "Telefone 2", "Telefone"], ["a", "1", "2"]]
    assert map_columns(read_table(write_csv(tmp_path / "a.csv", rows))).phone == 2
    rows = [["Contato", "Telefone 2", "Nome"], ["a", "1", "2"]]
    assert map_columns(read_table(write_csv(tmp_path / "b.csv", rows))).phone == 1
    rows = [["Contato", "Nome"], ["1", "2"]]
    assert map_columns(read_table(write_csv(tmp_path / "c.csv", rows))).phone == 0


def plan(tmp_path, rows):
    table = read_table(write_csv(tmp_path / "l.csv", rows))
    return validate(table, map_columns(table), LeadDefaults())


def test_ddd_column_is_joined_to_phones_that_lack_it(tmp_path):
    rows = [
        ["Telefone", "DDD", "Operadores"],
        ["99999-8888", "(44)", "A"],
        ["9999-8888", "044", "A"],
        ["11 98765-4321", "44", "A"],  # already has its area code
        ["99999-7777", "", "A"],
    ]
    got = plan(tmp_path, rows)
    assert got["phone"].tolist() == ["5544999998888", "554499998888", "5511987654321", ""]
    assert "'99999-7777' has 9 digits" in said(got["error_message"].iloc[3])
    assert "DDD cell" in said(got["error_message"].iloc[3])


def test_short_phone_without_ddd_column_hints_at_it(tmp_path):
    got = plan(tmp_path, [["Telefone", "Operadores"], ["99999-8888", "A"]])
    assert said(got["error_message"].iloc[0]) == (
        "'99999-8888' has 9 digits; a phone needs 10 to 15 (country code, area code, number); "
        "add the area code (DDD) in front, or a DDD column"
    )


def test_missing_operators_column_names_columns_and_option(tmp_path):
    got = plan(tmp_path, [["Nome", "Telefone", "Responsável X"], ["Ana", "44999998888", "A"]])
    assert said(got["error_message"].iloc[0]) == (
        "no operators column (columns: Nome, Telefone, Responsável X); name one with "
        "--operators-column, or give --operator"
    )


COLUMNS_TAKEN = (
    "header row 3: phone 'Celular/WhatsApp' (matched celularwhatsapp), operators 'Responsável' "
    "(matched responsavel), department 'Setor' (matched setor), DDD 'DDD' (matched ddd)."
)


def test_check_says_header_row_and_columns_taken(runner, sandbox, tmp_path):
    leads = crm_xlsx(tmp_path / "crm.xlsx", [TITLE, GROUP, HEADER, *DATA])
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    result = runner.invoke(cli, ["check", str(leads)], env=env)
    lines = result.stdout.splitlines()
    assert lines[0] == f"Plan: {leads}, sheet 'Leads', {COLUMNS_TAKEN}", result.stdout


def test_dry_run_says_header_row_and_columns_taken(runner, tmp_path):
    leads = crm_xlsx(tmp_path / "crm.xlsx", [TITLE, GROUP, HEADER, *DATA])
    args = [str(leads), "-o", str(tmp_path / "r.csv"), "--dry-run"]
    result = runner.invoke(cli, args, env={"PLUGCHAT_TOKEN": None})
    lines = result.stderr.splitlines()
    assert lines[0] == f"batch-attend: Plan: {leads}, sheet 'Leads', {COLUMNS_TAKEN}", lines
    assert lines[1].startswith("batch-attend: Empty operators cells: nothing (such rows are")
    assert "1 row: 1 ready to send, 0 invalid" in lines[1]
    assert lines[2].startswith("batch-attend: Not checked without asking the account: the token")
    quiet = runner.invoke(cli, [*args, "--quiet"], env={"PLUGCHAT_TOKEN": None})
    assert "Plan:" not in quiet.stderr


def test_ddd_column_named_with_the_option(runner, tmp_path):
    """A DDD column under a name no alias knows ("Região") is taken with --ddd-column."""
    leads = write_csv(
        tmp_path / "leads.csv",
        [["Telefone", "Região", "Operadores"], ["99999-8888", "44", "OP-ANA"]],
    )
    out = tmp_path / "r.csv"
    base = [str(leads), "-o", str(out), "--dry-run"]
    assert runner.invoke(cli, base).exit_code == 1  # 9 digits, no DDD column found
    result = runner.invoke(cli, [*base, "--ddd-column", "regiao"])
    assert result.exit_code == 0, result.output
    assert "DDD 'Região' (given by --ddd-column)" in result.stderr
    assert "5544999998888" in out.read_text(encoding="utf-8-sig")
    wrong = runner.invoke(cli, [*base, "--ddd-column", "Nada"])
    assert wrong.exit_code == 2 and "no column named 'Nada' (given by --ddd-column)" in wrong.stderr


def test_header_row_named_with_the_option_past_the_rows_searched(runner, tmp_path):
    """A header under 22 rows of notes is past the 20 rows searched: --header-row names it."""
    notes = [[f"Observação {i}", ""] for i in range(22)]
    rows = [*notes, ["Telefone", "Operadores"], ["44 99999-8888", "OP-ANA"]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    base = [str(leads), "-o", str(out), "--dry-run"]
    assert runner.invoke(cli, base).exit_code == 2  # no phone column found
    result = runner.invoke(cli, [*base, "--header-row", "23"])
    assert result.exit_code == 0, result.output
    assert "header row 23" in result.stderr
    row = out.read_text(encoding="utf-8-sig").splitlines()[1]
    assert '"5544999998888"' in row and ",24," in row  # the row number as the sheet shows it
    for bad in ("1000", "0"):
        wrong = runner.invoke(cli, [*base, "--header-row", bad])
        assert wrong.exit_code == 2
    assert (
        "row 1000 (given by --header-row) is empty or past the end"
        in runner.invoke(cli, [*base, "--header-row", "1000"]).stderr
    )
