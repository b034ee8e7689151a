"""One plan: check, --dry-run, the page's preview and the run read a sheet the same way, row by
row, and the run sends exactly the plan's requests; the sheet is understood by its content, an
owner it names is never overridden, and a rehearsal never gets in the live run's way."""

from __future__ import annotations

import io
import json
import sqlite3
from collections import Counter
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from batch_attend.cli import cli
from batch_attend.env import Env
from batch_attend.plan import check_plan
from batch_attend.reading.files import read_table
from batch_attend.reading.headers import map_columns
from batch_attend.run import run_batch
from batch_attend.settings import RunOptions
from batch_attend.web.runs import RunStore, preview
from tests.conftest import TOKEN, read_results_csv, said, write_csv, write_xlsx

SHEET = [
    ["Nome", "Telefone", "Operadores", "Departamento"],
    ["Ana", "(44) 99999-0001", "OP-ANA", ""],
    ["Bia", "44 99999-0002", "", "DEP-VENDAS"],  # the pool fills it
    ["Caio", "123", "OP-ANA", ""],  # invalid phone
    ["Duda", "44999990001", "OP-BRUNO", ""],  # Ana's phone again
    ["Eva", "44999990005", "Ana Souza", ""],  # a name, and no ticket to look it up
    ["Fábio", "'44999990006", "OP-CARLA", "DEP-SUPORTE"],  # a CRM's text mark
    ["Total: 6 leads", "", "", ""],  # not a lead
]


def quiet() -> Env:
    return Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ={})


def rows_of(plan) -> list[tuple]:
    """Every row as the plan decided it, with the body of its request when it is to be sent."""
    bodies = {lead.row: lead.body() for lead in plan.leads()}
    return [
        (row, None if pd.isna(status) else status, code, message, bodies.get(row))
        for row, status, code, message in plan.frame[
            ["row", "status", "error_code", "error_message"]
        ].itertuples(index=False, name=None)
    ]


def test_check_dry_run_preview_and_run_agree_row_by_row(sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", SHEET)
    out = tmp_path / "r.csv"
    settings = dict(base_url=sandbox.base_url, token=TOKEN)
    options = RunOptions.build(input=leads, output=str(out), pool="OP-BRUNO", **settings)

    checked = rows_of(check_plan(options, quiet()))
    dry = run_batch(
        RunOptions.build(input=leads, output=str(out), dry_run=True, pool="OP-BRUNO", **settings),
        quiet(),
    )
    store = RunStore(tmp_path / "web")
    page_run = store.new("leads.csv", ".csv")
    page_run.input.write_bytes(leads.read_bytes())
    page_run.choices = {"pool": ["OP-BRUNO"]}
    view = preview(page_run, settings, {})
    report = run_batch(options, quiet())

    assert rows_of(dry.plan) == checked == rows_of(report.plan)
    by_row = {row: (status, code, said(message)) for row, status, code, message, _body in checked}
    assert by_row[3] == (None, "", "")  # the pool's member, sent like any other
    assert by_row[4][:2] == ("invalid", "invalid_phone")
    assert by_row[5] == ("skipped", "duplicate_row", "same phone as row 2")
    assert by_row[6][:2] == ("invalid", "unknown_operator")  # in all four: no ticket
    assert by_row[7] == (None, "", "")  # the apostrophe is not part of the phone
    assert by_row[8][:2] == ("skipped", "not_a_lead")
    # The page shows the same problems, in its words, and the same first requests.
    invalid = {row: code for row, (status, code, _m) in by_row.items() if status == "invalid"}
    assert [shown["row"] for shown in view["problems"]] == list(invalid)
    assert {code: n for code, _label, n in view["groups"]} == Counter(invalid.values())
    assert view["problems"][0]["reason"] == by_row[4][2]  # the phone's, as check says it
    assert "--ticket" in by_row[6][2] and "--" not in view["problems"][1]["reason"]
    bodies = [body for *_rest, body in checked if body]
    assert [lead.body() for lead in view["requests"]] == bodies[:3]
    # The run sends exactly the plan's requests; a dry run only differs in not sending them.
    assert sorted(sandbox.state.log, key=lambda b: b["phone"]) == bodies  # in any order
    assert dry.exit_status == report.exit_status == 1  # the invalid rows
    for sent, rehearsed in zip(report.outcomes, dry.outcomes, strict=True):
        if sent.status == "started":
            assert (rehearsed.status, rehearsed.error_code) == ("skipped", "dry_run")
        else:
            assert (rehearsed.status, rehearsed.error_code) == (sent.status, sent.error_code)


def test_with_a_ticket_names_resolve_alike_and_a_dry_run_says_it_did_not_check_them(
    sandbox, tmp_path
):
    rows = [["Telefone", "Responsável", "Setor"], ["44999990001", "Ana Souza", "Vendas"],
            ["44999990002", "diego", ""], ["44999990003", "bruno.lima", "suporte"]]  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", rows)
    settings = dict(base_url=sandbox.base_url, token=TOKEN, ticket="0000")
    options = RunOptions.build(input=leads, output=str(tmp_path / "r.csv"), **settings)
    checked = check_plan(options, quiet())
    report = run_batch(options, quiet())
    assert rows_of(checked) == rows_of(report.plan)
    assert sorted(sandbox.state.log, key=lambda body: body["phone"]) == [  # sent concurrently
        {"phone": "5544999990001", "operators": ["OP-ANA"], "departmentId": "DEP-VENDAS"},
        {"phone": "5544999990003", "operators": ["OP-BRUNO"], "departmentId": "DEP-SUPORTE"},
    ]
    assert rows_of(checked)[1][2] == "inactive_operator"
    dry = check_plan(RunOptions.build(input=leads, output=str(tmp_path / "d.csv"),
                                      dry_run=True, ticket="0000"), quiet())  # fmt: skip
    err = io.StringIO()
    dry_report = run_batch(
        RunOptions.build(input=leads, output=str(tmp_path / "d.csv"), dry_run=True, ticket="0000"),
        Env(stdout=io.StringIO(), stderr=err, environ={}),
    )
    assert dry.account.token == "missing" and dry_report.plan.unchecked
    assert "Not checked without asking the account: the token, names against" in err.getvalue()


CRM = [
    ["Nome", "Celular", "E-mail", "Vendedor responsável", "Setor"],
    ["Lia", "(44) 99999-1001", "lia@x.com", "Ana Souza", "Vendas"],
    ["Rui", "(44) 99999-1002", "rui@x.com", "", "Vendas"],
    ["Téo", "(44) 99999-1003", "teo@x.com", "Diego Araújo", "Vendas"],
    ["Bel", "(44) 99999-1004", "bel@x.com", "Zé Ninguém", "Vendas"],
    ["Gil", "(44) 99999-1005", "gil@x.com", "bruno.lima", "Vendas"],
    ["Noa", "(44) 99999-1006", "noa@x.com", "", "Vendas"],
]


def test_a_pool_never_overrides_the_owner_a_crm_export_names(runner, sandbox, tmp_path):
    leads = write_xlsx(tmp_path / "crm.xlsx", CRM)
    out = tmp_path / "r.csv"
    env = {
        "PLUGCHAT_TOKEN": TOKEN,
        "PLUGCHAT_BASE_URL": sandbox.base_url,
        "PLUGCHAT_TICKET": "0000",
    }
    args = [str(leads), "-o", str(out), "--pool", "Ana Souza,Bruno Lima", "-v"]
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 1, result.stderr
    plan_line = result.stderr.splitlines()[0]
    assert "operators 'Vendedor responsável' (matched vendedorresponsavel)" in plan_line
    assert "department 'Setor' (matched setor)" in plan_line
    sent = {entry["phone"]: entry["operators"] for entry in sandbox.state.log}
    assert sent == {
        "5544999991001": ["OP-ANA"],  # the owner the sheet names
        "5544999991002": ["OP-ANA"],  # no owner: the pool, in turn
        "5544999991005": ["OP-BRUNO"],
        "5544999991006": ["OP-BRUNO"],
    }
    rows = read_results_csv(out)
    assert [r["error"].split(":")[0] for r in rows[2:4]] == [
        "inactive_operator",
        "unknown_operator",
    ]
    assert {r["department"] for r in rows if r["status"] == "started"} == {"DEP-VENDAS"}


@pytest.mark.parametrize(
    "header",
    [
        "Vendedor responsável", "Operador responsável", "Atendente responsável",
        "Responsável pelo lead", "Usuário responsável", "Proprietário do lead", "Owner", "SDR",
        "Closer", "Lead owner", "operator_ids",
    ],
)  # fmt: skip
def test_owners_headers_are_recognised(tmp_path, header):
    table = read_table(
        write_csv(tmp_path / "l.csv", [["Telefone", "Nome", header], ["1", "2", "3"]])
    )
    assert map_columns(table).operators == 2


@pytest.mark.parametrize("header", ["Nome do cliente", "Usuário", "Responsável financeiro"])
def test_other_headers_are_not_taken_for_owners(tmp_path, header):
    table = read_table(write_csv(tmp_path / "l.csv", [["Telefone", header], ["1", "2"]]))
    assert map_columns(table).operators is None


def test_a_column_of_the_accounts_operators_is_theirs_whatever_its_name(sandbox, tmp_path):
    rows = [["Telefone", "Equipe"], ["44999990001", "Ana Souza"], ["44999990002", "bruno.lima"],
            ["44999990003", "carla@example.com.br"], ["44999990004", "OP-ANA; OP-CARLA"]]  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", rows)
    with_list = check_plan(
        RunOptions.build(input=leads, base_url=sandbox.base_url, token=TOKEN, ticket="0000"),
        quiet(),
    )
    assert with_list.columns.operators == 1
    assert with_list.columns.why["operators"] == "holds the account's operators (100% of its cells)"
    assert with_list.ready == 4
    # Without the account's list, the header alone decides: no operators column.
    offline = check_plan(RunOptions.build(input=leads, dry_run=True), quiet())
    assert offline.columns.operators is None and offline.ready == 0


def test_two_owner_columns_are_refused_until_one_is_chosen_or_set_aside(runner, sandbox, tmp_path):
    rows = [["Telefone", "Vendedor", "SDR"], ["44999990001", "OP-ANA", "OP-CARLA"]]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    base = [str(leads), "-o", str(out), "--pool", "OP-BRUNO"]
    refused = runner.invoke(cli, base, env=env)
    assert refused.exit_code == 2
    assert "several columns look like the lead's owner: 'Vendedor', 'SDR'" in refused.stderr
    assert "--operators-column NAME" in refused.stderr and "--ignore-column NAME" in refused.stderr
    assert sandbox.state.requests == {} and not out.exists()
    chosen = runner.invoke(cli, [*base, "--operators-column", "SDR"], env=env)
    assert chosen.exit_code == 0, chosen.stderr
    set_aside = runner.invoke(cli, [*base, "--ignore-column", "SDR", "--fresh"], env=env)
    assert set_aside.exit_code == 0, set_aside.stderr
    # The second run set SDR aside: Vendedor's operator went, and found SDR's attendance.
    assert [e["operators"] for e in sandbox.state.log] == [["OP-CARLA"], ["OP-ANA"]]
    row = read_results_csv(out)[0]
    assert (row["status"], row["operators"]) == ("already_in_service", "OP-CARLA")


def test_the_page_offers_the_same_choice(sandbox, tmp_path):
    rows = [["Telefone", "Vendedor", "SDR"], ["44999990001", "OP-ANA", "OP-CARLA"]]
    store = RunStore(tmp_path / "web")
    page_run = store.new("leads.csv", ".csv")
    write_csv(page_run.input, rows)
    settings = dict(base_url=sandbox.base_url, token=TOKEN)
    view = preview(page_run, settings, {})
    assert view["owners"] == ["Vendedor", "SDR"]
    assert view["error"] == "Several columns look like the lead's owner: 'Vendedor', 'SDR'."
    page_run.choices = {"ignore_columns": ["SDR"]}
    assert preview(page_run, settings, {})["taken"]["operators"] == "Vendedor"


def test_the_sheet_that_holds_the_phones_is_taken_not_the_first_that_mentions_one(tmp_path):
    book = tmp_path / "leads.xlsx"
    writer = __import__("xlsxwriter").Workbook(book)
    notes = writer.add_worksheet("Instruções")
    for r, line in enumerate(["Preencha a planilha Leads", "Telefone", "com DDD"]):
        notes.write_string(r, 0, line)
    sheet = writer.add_worksheet("Leads")
    for r, row in enumerate([["Nome", "Telefone", "Operadores"], ["Ana", "44999990001", "OP-ANA"],
                             ["Bia", "44999990002", "OP-ANA"], ["Caio", "44999990003", "OP-ANA"]]):  # fmt: skip
        sheet.write_row(r, 0, row)
    writer.close()
    table = read_table(book)
    assert (table.sheet, len(table)) == ("Leads", 3)


def test_a_rehearsal_never_gets_in_the_way_of_the_live_run(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", SHEET[:3])
    rehearsal = runner.invoke(cli, [str(leads), "--sandbox", "--pool", "OP-ANA"])
    assert rehearsal.exit_code == 0, rehearsal.stderr
    assert (tmp_path / "leads.sandbox.results.csv").exists()
    assert (tmp_path / "leads.sandbox.results.csv.journal").exists()
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    check = runner.invoke(cli, ["check", str(leads), "--pool", "OP-ANA"], env=env)
    assert "2 rows: 2 ready to send" in check.stdout and "earlier run" not in check.stdout
    live = runner.invoke(cli, [str(leads), "--pool", "OP-ANA"], env=env)
    assert live.exit_code == 0, live.stderr
    assert sandbox.state.total_starts() == 2
    assert {r["status"] for r in read_results_csv(tmp_path / "leads.results.csv")} == {"started"}


def test_a_totals_row_under_a_clean_sheet_is_not_a_lead(runner, sandbox, tmp_path):
    rows = [["Nome", "Telefone", "Operadores"], ["Ana", "44999990001", "OP-ANA"],
            ["", "", ""], ["Total: 1 lead", "", ""]]  # fmt: skip
    out = tmp_path / "r.csv"
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    result = runner.invoke(
        cli, [str(write_xlsx(tmp_path / "l.xlsx", rows)), "-o", str(out)], env=env
    )
    assert result.exit_code == 0, result.stderr
    total = read_results_csv(out)[1]
    assert (total["status"], total["error"].split(":")[0]) == ("skipped", "not_a_lead")


def test_the_summary_counts_what_was_started_by_id_and_name(runner, sandbox, tmp_path):
    rows = [["Telefone", "Operadores", "Setor"], ["44999990001", "Ana Souza", "Vendas"],
            ["44999990002", "OP-ANA", "Vendas"], ["44999990003", "OP-CARLA", ""],
            ["123", "OP-CARLA", "Suporte"]]  # fmt: skip
    out = tmp_path / "r.xlsx"
    env = {
        "PLUGCHAT_TOKEN": TOKEN,
        "PLUGCHAT_BASE_URL": sandbox.base_url,
        "PLUGCHAT_TICKET": "0000",
    }
    assert (
        runner.invoke(
            cli, [str(write_csv(tmp_path / "l.csv", rows)), "-o", str(out)], env=env
        ).exit_code
        == 1
    )
    book = openpyxl.load_workbook(out)
    counts = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}
    assert counts["OP-ANA (Ana Souza)"] == 2 and counts["OP-CARLA (Carla Nogueira)"] == 1
    assert counts["DEP-VENDAS (Vendas)"] == 2 and "DEP-SUPORTE (Suporte)" not in counts
    sheet = book["Results"]
    header = [c.value for c in sheet[1]]
    departments = [
        row[header.index("department")] for row in sheet.iter_rows(min_row=2, values_only=True)
    ]
    assert departments == ["DEP-VENDAS", "DEP-VENDAS", None, None]


def test_after_a_resort_the_row_that_was_started_stays_the_started_one(runner, sandbox, tmp_path):
    header = ["Nome", "Telefone", "Operadores"]
    ana, bia = ["Ana", "44999990001", "OP-ANA"], ["Bia", "(44) 99999-0001", "OP-BRUNO"]
    out = tmp_path / "r.csv"
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    first = runner.invoke(
        cli, [str(write_csv(tmp_path / "a.csv", [header, ana, bia])), "-o", str(out)], env=env
    )
    assert first.exit_code == 0, first.stderr
    resorted = write_csv(tmp_path / "b.csv", [header, bia, ana])
    again = runner.invoke(cli, [str(resorted), "-o", str(out)], env=env)
    assert again.exit_code == 0, again.stderr
    rows = {r["Nome"]: r for r in read_results_csv(out)}
    assert (rows["Ana"]["status"], rows["Ana"]["operators"]) == ("started", "OP-ANA")
    assert rows["Bia"]["error"] == "duplicate_row: same phone as row 3"
    assert sandbox.state.total_starts() == 1


def test_the_plan_is_kept_in_the_summary_json_and_the_ledger(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", SHEET[:3])
    out, summary = tmp_path / "r.csv", tmp_path / "s.json"
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    args = [str(leads), "-o", str(out), "--pool", "OP-BRUNO", "-q", "--summary-json", str(summary)]
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0 and result.stderr == ""  # --quiet: not shown, but kept
    plan = json.loads(summary.read_text())["plan"]
    assert plan["columns"]["operators"] == {"name": "Operadores", "why": "matched operadores"}
    assert (plan["empty_operators"], plan["distribute"], plan["ready"]) == (
        ["OP-BRUNO"],
        "round-robin",
        2,
    )
    with sqlite3.connect(Path(f"{out}.journal")) as db:
        (kept,) = db.execute("SELECT plan FROM runs").fetchone()
    assert json.loads(kept) == plan


def test_cells_edited_and_values_mapped_before_sending_are_what_check_and_the_run_use(
    sandbox, tmp_path
):
    """A person's fixes (the page's): a cell edited by row and column, and an unknown name
    mapped once to an operator for every row holding it; check and the run agree, and the
    results show the cells as edited."""
    rows = [["Nome", "Telefone", "Operadores", "Setor"], ["Ana", "123", "OP-ANA", ""],
            ["Bia", "44999990002", "Zé Ninguém", "Vendas X"],
            ["Caio", "44999990003", "OP-ANA, Zé Ninguém", "Vendas X"],
            ["Duda", "44999990004", "OP-BRUNO", "DEP-VENDAS"]]  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "r.csv"
    fixes = dict(
        cell_edits={2: {"Telefone": "(44) 99999-0001"}},
        value_map={
            "operators": {"Zé Ninguém": "OP-CARLA"},
            "department": {"Vendas X": "DEP-VENDAS"},
        },
    )
    settings = dict(base_url=sandbox.base_url, token=TOKEN, ticket="0000")
    before = check_plan(RunOptions.build(input=leads, output=str(out), **settings), quiet())
    assert [c for c in before.frame["error_code"]] == [
        "invalid_phone", "unknown_operator", "unknown_operator", ""
    ]  # fmt: skip
    options = RunOptions.build(input=leads, output=str(out), **settings, **fixes)
    checked = rows_of(check_plan(options, quiet()))
    report = run_batch(options, quiet())
    assert rows_of(report.plan) == checked
    assert [body for *_rest, body in checked] == [
        {"phone": "5544999990001", "operators": ["OP-ANA"]},
        {"phone": "5544999990002", "operators": ["OP-CARLA"], "departmentId": "DEP-VENDAS"},
        {"phone": "5544999990003", "operators": ["OP-ANA", "OP-CARLA"],
         "departmentId": "DEP-VENDAS"},
        {"phone": "5544999990004", "operators": ["OP-BRUNO"], "departmentId": "DEP-VENDAS"},
    ]  # fmt: skip
    assert sorted(sandbox.state.log, key=lambda b: b["phone"]) == [b for *_r, b in checked]
    results = read_results_csv(out)
    assert [r["status"] for r in results] == ["started"] * 4
    assert [(r["Telefone"], r["Operadores"], r["Setor"]) for r in results] == [
        ("(44) 99999-0001", "OP-ANA", ""), ("44999990002", "OP-CARLA", "DEP-VENDAS"),
        ("44999990003", "OP-ANA, OP-CARLA", "DEP-VENDAS"), ("44999990004", "OP-BRUNO", "DEP-VENDAS"),
    ]  # fmt: skip
    assert leads.read_text(encoding="utf-8").count("Zé Ninguém") == 2  # the file is unchanged
