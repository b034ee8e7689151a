"""Reruns whose results never lie: the ledger is keyed by the lead, so an edited sheet, a
forgotten option, a refused token or a results file handed back never resends a lead that is
done, and never reports it as anything but what it was."""

from __future__ import annotations

import json
import shutil

import openpyxl
import pytest

from batch_attend.cli import cli
from batch_attend.journal import Journal
from batch_attend.sandbox import Fault
from tests.conftest import TOKEN, read_results_csv, write_csv, write_xlsx

HEADER = ["Nome", "Telefone", "Operadores", "Departamento"]
FOUR = [
    ["Ana", "(44) 99999-0001", "OP-ANA", ""],
    ["Bia", "(44) 99999-0002", "OP-BRUNO", "DEP-VENDAS"],
    ["Caio", "(44) 99999-0003", "OP-ANA", ""],
    ["Duda", "(44) 99999-0004", "OP-CARLA", ""],
]


def invoke(runner, sandbox, *args, token=TOKEN, base_url=None):
    env = {"PLUGCHAT_TOKEN": token, "PLUGCHAT_BASE_URL": base_url or sandbox.base_url}
    return runner.invoke(cli, [str(a) for a in args], env=env)


def by_phone(path) -> dict[str, dict]:
    return {r["phone"]: r for r in read_results_csv(path) if r["phone"]}


def requests(sandbox) -> int:
    return sum(sandbox.state.requests.values())


def test_an_edited_sheet_sends_only_what_is_new(runner, sandbox, tmp_path):
    out = tmp_path / "results.csv"
    first = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR, ["Edu", "123", "OP-ANA", ""]])
    assert invoke(runner, sandbox, first, "-o", out).exit_code == 1  # one invalid phone
    before = by_phone(out)
    assert requests(sandbox) == 4

    # Re-sorted, renamed, re-exported as a workbook, one phone fixed and a row added.
    edited = [
        ["Fabi", "(44) 99999-0006", "OP-BRUNO", ""],
        *reversed(FOUR),
        ["Edu", "(44) 99999-0005", "OP-ANA", ""],
    ]
    second = write_xlsx(tmp_path / "leads-v2.xlsx", [HEADER, *edited])
    result = invoke(runner, sandbox, second, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "4 done by an earlier run" in result.stderr
    assert requests(sandbox) == 6  # the new row and the fixed one, nothing else
    assert set(sandbox.state.starts.values()) == {1}
    after = by_phone(out)
    for phone, row in before.items():
        if row["status"] != "started":
            continue
        again = after[phone]
        assert again["status"] == "started"  # never a fresh already_in_service
        for field in ("operators", "http_status", "attempts", "done_at", "attendance_number"):
            assert again[field] == row[field], field
    assert [r["Nome"] for r in read_results_csv(out)] == [r[0] for r in edited]  # input order
    assert after["5544999990005"]["status"] == after["5544999990006"]["status"] == "started"


def test_a_rerun_that_forgot_the_pool_keeps_every_started_row(runner, sandbox, tmp_path):
    rows = [[f"Lead {i}", f"(44) 99999-{i:04d}", "", ""] for i in range(6)]
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *rows])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out, "--pool", "OP-ANA,OP-BRUNO").exit_code == 0
    result = invoke(runner, sandbox, leads, "-o", out)  # --pool forgotten
    assert result.exit_code == 0, result.stderr
    rows = read_results_csv(out)
    assert [r["status"] for r in rows] == ["started"] * 6
    assert [r["operators"] for r in rows] == ["OP-ANA", "OP-BRUNO"] * 3
    assert requests(sandbox) == 6


@pytest.mark.parametrize("with_department", [True, False])
def test_a_rerun_with_a_refused_token_keeps_the_results(runner, sandbox, tmp_path, with_department):
    rows = FOUR if with_department else [[*r[:3], ""] for r in FOUR]
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *rows])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    before = by_phone(out)
    more = write_csv(
        tmp_path / "leads.csv", [HEADER, *rows, ["Eva", "(44) 99999-0005", "OP-ANA", ""]]
    )
    result = invoke(runner, sandbox, more, "-o", out, token="tok-WRONG")
    assert result.exit_code == 3
    after = by_phone(out)
    for phone, row in before.items():
        assert after[phone] == row  # every field of every started row, as it was
    assert after["5544999990005"]["status"] == "skipped"
    assert after["5544999990005"]["error"].startswith("unauthorized: ")


def test_a_run_refused_before_sending_leaves_the_results_byte_for_byte(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    written = out.read_bytes()
    refusals = [
        [leads, "-o", out, "--phone-column", "Fax"],
        [leads, "-o", out, "--pool", "OP-ANA", "--operator", "OP-BRUNO"],
        [tmp_path / "missing.csv", "-o", out],
    ]
    for args in refusals:
        result = invoke(runner, sandbox, *args)
        assert result.exit_code == 2, (args, result.stderr)
    # Another account's base URL: the ledger refuses to mix its starts in.
    other = invoke(
        runner, sandbox, leads, "-o", out, base_url="http://127.0.0.1:9/api/integrations"
    )
    assert other.exit_code == 2 and "records attendances started through" in other.stderr
    # Another run holding the results.
    holder = Journal.open(
        tmp_path / "results.csv.journal", target=sandbox.base_url, input="x", fresh=False
    )
    try:
        locked = invoke(runner, sandbox, leads, "-o", out)
        assert locked.exit_code == 2 and "another batch-attend run" in locked.stderr
    finally:
        holder.close()
    assert out.read_bytes() == written
    assert requests(sandbox) == 4


@pytest.mark.parametrize(
    ("fault", "options"),
    [("act-fail:1", []), ("slow:1", ["--timeout", "0.3"])],
    ids=["500 after acting", "time-out after acting"],
)
def test_an_own_start_hidden_by_a_failure_is_recognised_by_the_rerun(
    runner, sandbox, tmp_path, fault, options
):
    sandbox.state.faults = {"5544999990002": Fault.parse(fault)}
    sandbox.state.slow_seconds = 1.0
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "results.csv"
    first = invoke(runner, sandbox, leads, "-o", out, "--retries", "0", *options)
    assert first.exit_code == 1
    assert by_phone(out)["5544999990002"]["status"] == "failed"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    row = by_phone(out)["5544999990002"]
    assert row["status"] == "started"
    assert row["error"].startswith("confirmed_on_retry: ")
    assert row["attempts"] == "2" and row["attendance_number"]
    assert sandbox.state.starts["5544999990002"] == 1


def test_a_done_lead_whose_row_now_asks_for_others_is_not_resent(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    changed = [[*FOUR[0][:2], "OP-BRUNO", ""], *FOUR[1:]]
    write_csv(tmp_path / "leads.csv", [HEADER, *changed])
    result = invoke(runner, sandbox, leads, "-o", out)
    assert result.exit_code == 0, result.stderr
    row = by_phone(out)["5544999990001"]
    assert (row["status"], row["operators"]) == ("started", "OP-ANA")  # what was started
    assert row["error"].startswith("not_resent: started by an earlier run at ")
    assert "asked for OP-ANA; this run asks for OP-BRUNO, which was not sent" in row["error"]
    assert all(not r["error"] for p, r in by_phone(out).items() if p != "5544999990001")
    assert requests(sandbox) == 4


@pytest.mark.parametrize("form", ["csv", "xlsx"])
def test_a_results_file_handed_back_sends_only_what_is_left(runner, sandbox, tmp_path, form):
    sandbox.state.faults = {"5544999990003": Fault("fail")}
    # The user's own "status" column clashes with a contract column: "status (input)".
    rows = [
        ["status", *HEADER[1:]],
        *[["novo", *r[1:]] for r in FOUR],
        ["novo", "12345", "OP-ANA", ""],
    ]
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / f"results.{form}"
    first = invoke(runner, sandbox, leads, "-o", out, "--retries", "0")
    assert first.exit_code == 1, first.stderr
    assert requests(sandbox) == 4
    sandbox.state.faults = {}

    # A person fixes the invalid phone in the results file and hands the file back.
    handed = tmp_path / f"fixed.{form}"
    if form == "csv":
        fixed = read_results_csv(out)
        fixed[-1]["Telefone"] = "(44) 99999-0005"
        write_csv(handed, [list(fixed[0]), *[list(r.values()) for r in fixed]])
    else:
        book = openpyxl.load_workbook(out)
        sheet = book["Results"]
        telefone = [c.value for c in sheet[1]].index("Telefone") + 1
        sheet.cell(row=6, column=telefone, value="(44) 99999-0005")
        book.save(handed)
    again = tmp_path / f"again.{form}"
    result = invoke(runner, sandbox, handed, "-o", again)
    assert result.exit_code == 0, result.stderr
    assert requests(sandbox) == 6  # the failed row and the fixed one
    assert set(sandbox.state.starts.values()) == {1}
    if form == "csv":
        back = read_results_csv(again)
        header = list(back[0])
    else:
        sheet = openpyxl.load_workbook(again)["Results"]
        header = [c.value for c in sheet[1]]
        back = [
            dict(zip(header, [c.value or "" for c in r], strict=True))
            for r in sheet.iter_rows(min_row=2)
        ]
    assert header[:4] == ["status (input)", "Telefone", "Operadores", "Departamento"]
    assert header.count("status") == 1  # the handed-back contract columns are not repeated
    assert [r["status"] for r in back] == ["started"] * 5
    assert [str(r["row"]) for r in back] == ["2", "3", "4", "5", "6"]


def test_a_results_file_can_be_handed_back_onto_itself(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR, ["Edu", "12345", "OP-ANA", ""]])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 1
    fixed = read_results_csv(out)
    fixed[-1]["Telefone"] = "(44) 99999-0005"
    write_csv(out, [list(fixed[0]), *[list(r.values()) for r in fixed]])
    result = invoke(runner, sandbox, out, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert [r["status"] for r in read_results_csv(out)] == ["started"] * 5
    assert requests(sandbox) == 5


def test_a_dry_run_reads_the_ledger_and_leaves_it_alone(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR[:2]])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    journal = tmp_path / "results.csv.journal"
    shutil.copy(journal, tmp_path / "before.journal")
    write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "dry.csv", "--dry-run",
                    "--journal", journal, token=None)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    statuses = [
        (r["status"], r["error"].split(":")[0]) for r in read_results_csv(tmp_path / "dry.csv")
    ]
    assert statuses == [
        ("started", ""),
        ("started", ""),
        ("skipped", "dry_run"),
        ("skipped", "dry_run"),
    ]
    assert journal.read_bytes() == (tmp_path / "before.journal").read_bytes()
    assert requests(sandbox) == 2


def test_the_ledger_records_what_was_asked_and_every_answer(runner, sandbox, tmp_path):
    import sqlite3

    sandbox.state.faults = {"5544999990002": Fault.parse("fail:1")}
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR[:2]])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out, "--backoff", "0").exit_code == 0
    db = sqlite3.connect(tmp_path / "results.csv.journal")
    attempts = db.execute(
        "SELECT phone, operators, department, http_status, result FROM attempts ORDER BY id"
    ).fetchall()
    db.close()
    assert sorted(attempts) == sorted([
        ("5544999990001", json.dumps(["OP-ANA"]), "", 200, "started"),
        ("5544999990002", json.dumps(["OP-BRUNO"]), "DEP-VENDAS", 500, "server_error"),
        ("5544999990002", json.dumps(["OP-BRUNO"]), "DEP-VENDAS", 200, "started"),
    ])  # fmt: skip


def test_names_resolved_again_give_no_note(runner, sandbox, tmp_path):
    rows = [["Nome", "Telefone", "Operadores", "Departamento"],
            ["Ana", "(44) 99999-0001", "Ana Souza", "Vendas"]]  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", rows)
    out = tmp_path / "results.csv"
    for _ in range(2):
        result = invoke(runner, sandbox, leads, "-o", out, "--ticket", "0000")
        assert result.exit_code == 0, result.stderr
    (row,) = read_results_csv(out)
    assert (row["status"], row["operators"], row["error"]) == ("started", "OP-ANA", "")
    assert requests(sandbox) == 1


def test_a_row_whose_names_do_not_resolve_claims_no_phone(runner, sandbox, tmp_path):
    rows = [HEADER, ["X", "(44) 99999-0031", "Fulano Inexistente", ""],
            ["Y", "5544999990031", "OP-ANA", ""]]  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", rows)
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv", "--ticket", "0000")
    assert result.exit_code == 1
    first, second = read_results_csv(tmp_path / "r.csv")
    assert first["error"].startswith("unknown_operator: ")
    assert second["status"] == "started"


def test_a_results_file_with_a_column_added_or_deleted_is_still_one(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    rows = read_results_csv(out)
    edited = [[*list(rows[0])[:-2], "Notas"]] + [[*list(r.values())[:-2], "ok"] for r in rows]
    handed = write_csv(tmp_path / "handed.csv", edited)  # attempts and done_at gone, a note added
    result = invoke(runner, sandbox, handed, "-o", tmp_path / "again.csv")
    assert result.exit_code == 0, result.stderr
    again = read_results_csv(tmp_path / "again.csv")
    assert list(again[0])[:5] == [*HEADER, "Notas"]
    assert [r["status"] for r in again] == ["started"] * 4
    assert requests(sandbox) == 4


def test_rows_carried_from_a_results_file_join_the_new_ledger(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    assert invoke(runner, sandbox, leads, "-o", tmp_path / "r.csv").exit_code == 0
    new = tmp_path / "new.csv"
    assert invoke(runner, sandbox, tmp_path / "r.csv", "-o", new).exit_code == 0
    assert invoke(runner, sandbox, leads, "-o", new).exit_code == 0  # the sheet, onto new.csv
    assert [r["status"] for r in read_results_csv(new)] == ["started"] * 4
    assert requests(sandbox) == 4


def test_hand_edited_counts_in_a_results_file_do_not_stop_the_run(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "r.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    rows = read_results_csv(out)
    rows[0]["attempts"], rows[1]["attempts"], rows[2]["http_status"] = "9" * 20, "²", "200.0"
    handed = write_csv(tmp_path / "handed.csv", [list(rows[0]), *[list(r.values()) for r in rows]])
    result = invoke(runner, sandbox, handed, "-o", tmp_path / "again.csv")
    assert result.exit_code == 0, result.stderr
    again = read_results_csv(tmp_path / "again.csv")
    assert [r["status"] for r in again] == ["started"] * 4
    assert [r["attempts"] for r in again][:2] == ["0", "0"] and again[2]["http_status"] == "200"


def test_the_journal_may_be_neither_the_input_nor_the_results(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    before = leads.read_bytes()
    for journal in (leads, tmp_path / "r.csv"):
        result = invoke(
            runner, sandbox, leads, "-o", tmp_path / "r.csv", "--journal", journal, "--fresh"
        )
        assert result.exit_code == 2 and "the journal would overwrite" in result.stderr
    assert leads.read_bytes() == before and requests(sandbox) == 0


def test_fresh_with_a_refused_token_loses_no_ledger(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "r.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    refused = invoke(runner, sandbox, leads, "-o", out, "--fresh", token="tok-WRONG")
    assert refused.exit_code == 3
    (aside,) = tmp_path.glob("r.csv.journal.*.old")
    assert f"kept as {aside}" in refused.stderr
    kept = Journal.open_readonly(aside)
    assert len(kept.done()) == 4
    kept.close()


def test_a_link_to_the_results_is_the_same_results(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *FOUR])
    out = tmp_path / "r.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    (tmp_path / "link.csv").symlink_to(out)
    result = invoke(runner, sandbox, leads, "-o", tmp_path / "link.csv")
    assert result.exit_code == 0 and "4 done by an earlier run" in result.stderr
    assert (tmp_path / "link.csv").is_symlink() and requests(sandbox) == 4


def test_check_reads_the_ledger_of_the_results_it_is_told(runner, sandbox, tmp_path):
    leads = write_csv(
        tmp_path / "leads.csv", [HEADER, *FOUR, ["Eva", "(44) 99999-0005", "OP-ANA", ""]]
    )
    write_csv(tmp_path / "part.csv", [HEADER, *FOUR])
    assert invoke(runner, sandbox, tmp_path / "part.csv", "-o", tmp_path / "r.csv").exit_code == 0
    result = invoke(runner, sandbox, "check", leads, "-o", tmp_path / "r.csv")
    assert "1 ready to send" in result.stdout and "4 done by an earlier run" in result.stdout


def test_a_lead_done_is_not_sent_again_in_its_other_ninth_digit_form(runner, sandbox, tmp_path):
    out = tmp_path / "results.csv"
    first = write_csv(tmp_path / "leads.csv", [HEADER, ["Ana", "(44) 99999-9999", "OP-ANA", ""]])
    assert invoke(runner, sandbox, first, "-o", out).exit_code == 0
    second = write_csv(tmp_path / "leads.csv", [HEADER, ["Ana", "44 9999-9999", "OP-ANA", ""]])
    result = invoke(runner, sandbox, second, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert requests(sandbox) == 1
    (row,) = read_results_csv(out)
    assert (row["status"], row["phone"], row["Telefone"]) == (
        "started",
        "5544999999999",
        "44 9999-9999",
    )
