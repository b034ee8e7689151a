"""``batch-attend undo``: what the ledger shows this tool started is finished, once, and nothing
else; the ledger holds each finish as it holds a start; the results say it; a later run starts
the undone leads anew. Against the sandbox over loopback, whose record proves what was done."""

from __future__ import annotations

import os
import pty
import sqlite3
import subprocess

import openpyxl
import pytest

from batch_attend.cli import cli
from batch_attend.sandbox import Fault
from tests.conftest import PYTHON, TOKEN, clean_env, read_results_csv, write_csv
from tests.test_interrupt import wait_until

HEADER = ["Nome", "Telefone", "Operadores", "Departamento"]
ROWS = [
    ["Ana", "(44) 99999-0001", "OP-ANA", ""],
    ["Bia", "(44) 99999-0002", "OP-BRUNO; OP-ANA", "DEP-VENDAS"],
    ["Caio", "(44) 99999-0003", "OP-ANA", "DEP-SUPORTE"],
    ["Duda", "(44) 99999-0004", "OP-CARLA", ""],  # already in service: someone else's
    ["Edu", "(44) 99999-0005", "OP-CARLA", ""],  # its first answer lost: confirmed on retry
    ["Fabi", "123", "OP-ANA", ""],  # invalid: never sent
]
PHONES = [f"554499999000{i}" for i in range(1, 6)]
THEIRS, LOST = PHONES[3], PHONES[4]


def invoke(runner, sandbox, *args, token=TOKEN):
    env = {"PLUGCHAT_TOKEN": token, "PLUGCHAT_BASE_URL": sandbox.base_url}
    return runner.invoke(cli, [str(a) for a in args], env=env)


def by_phone(path) -> dict[str, dict]:
    return {r["phone"]: r for r in read_results_csv(path) if r["phone"]}


def finishes(sandbox) -> list[dict]:
    return [body for body in sandbox.state.log if "operatorId" in body]


@pytest.fixture
def ran(runner, sandbox, tmp_path):
    """The sheet sent: four started (one confirmed on retry), one someone else's, one invalid."""
    sandbox.state.attendances[THEIRS] = (77, ["OP-BRUNO"])
    sandbox.state.faults[LOST] = Fault.parse("act-drop:1")
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *ROWS])
    out = tmp_path / "results.csv"
    result = invoke(runner, sandbox, leads, "-o", out, "--backoff", "0.01")
    assert result.exit_code == 1, result.stderr
    statuses = {p: r["status"] for p, r in by_phone(out).items()}
    assert statuses == {**dict.fromkeys(PHONES, "started"), THEIRS: "already_in_service"}
    assert by_phone(out)[LOST]["error"].startswith("confirmed_on_retry")
    sandbox.state.log.clear()
    return leads, out


def test_undo_finishes_once_what_this_tool_started_and_nothing_else(runner, sandbox, ran):
    out = ran[1]
    before = by_phone(out)
    result = invoke(runner, sandbox, "undo", out, "--yes")
    assert result.exit_code == 0, result.stderr
    assert "4 attendances batch-attend started will be finished in PlugChat. Conversations " in result.stderr  # fmt: skip
    assert "4 rows: 4 undone in " in result.stderr
    mine = [p for p in PHONES if p != THEIRS]
    assert sandbox.state.finished == dict.fromkeys(mine, 1)
    assert set(sandbox.state.attendances) == {THEIRS}  # someone else's, untouched
    sent = {body["phone"]: body for body in finishes(sandbox)}
    assert sent[PHONES[1]] == {"phone": PHONES[1], "operatorId": "OP-BRUNO", "autoTransfer": True}
    after = by_phone(out)
    for phone in mine:
        row = after[phone]
        assert row["status"] == "undone" and row["done_at"] >= before[phone]["done_at"]
        assert row["error"].startswith("finished: the attendance batch-attend started was finished")
        assert row["operators"] == before[phone]["operators"] and row["http_status"] == "200"
    assert after[THEIRS] == before[THEIRS]
    assert [r["status"] for r in read_results_csv(out)][-1] == "invalid"
    again = invoke(runner, sandbox, "undo", out, "--yes")
    assert again.exit_code == 0 and "nothing to undo" in again.stderr
    assert len(finishes(sandbox)) == 4


@pytest.mark.parametrize(
    ("narrowing", "finished"),
    [
        (["--operator", "OP-BRUNO"], [1]),
        (["--operator", "OP-CARLA", "--operator", "OP-ANA"], [0, 1, 2, 4]),
        (["--department", "DEP-SUPORTE"], [2]),
        (["--rows", "2,4-5"], [0, 2]),
        (["--rows", "5", "--operator", "OP-BRUNO"], []),
    ],
)
def test_undo_narrowed_by_operator_department_or_rows(runner, sandbox, ran, narrowing, finished):
    result = invoke(runner, sandbox, "undo", ran[1], "--yes", *narrowing)
    assert result.exit_code == 0, result.stderr
    assert sorted(sandbox.state.finished) == [PHONES[i] for i in finished]


def test_undo_narrowed_to_the_last_run(runner, sandbox, ran, tmp_path):
    out = ran[1]
    more = write_csv(tmp_path / "more.csv", [HEADER, *ROWS, ["Gil", "(44) 99999-0007", "OP-ANA", ""]])  # fmt: skip
    assert invoke(runner, sandbox, more, "-o", out).exit_code == 1
    result = invoke(runner, sandbox, "undo", out, "--yes", "--last-run")
    assert result.exit_code == 0, result.stderr
    assert sandbox.state.finished == {"5544999990007": 1}
    again = invoke(runner, sandbox, "undo", out, "--yes", "--last-run")  # that run: all undone
    assert "nothing to undo" in again.stderr and len(sandbox.state.finished) == 1


def test_a_dry_run_lists_the_rows_and_without_a_terminal_nothing_is_sent(runner, sandbox, ran):
    out = ran[1]
    listed = invoke(runner, sandbox, "undo", out, "--dry-run", "--no-auto-transfer")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "row,phone,operator,department",
        f"2,{PHONES[0]},OP-ANA,",
        f"3,{PHONES[1]},OP-BRUNO,DEP-VENDAS",
        f"4,{PHONES[2]},OP-ANA,DEP-SUPORTE",
        f"6,{PHONES[4]},OP-CARLA,",
    ]
    assert "Their chats go to the general department" not in listed.stderr
    asked = invoke(runner, sandbox, "undo", out)  # no terminal to ask on, no --yes
    assert asked.exit_code == 2 and "add --yes" in asked.stderr
    assert finishes(sandbox) == [] and {r["status"] for r in read_results_csv(out)} != {"undone"}


def test_no_auto_transfer_and_a_chat_already_closed(runner, sandbox, ran):
    del sandbox.state.attendances[PHONES[0]]  # closed in PlugChat meanwhile
    result = invoke(runner, sandbox, "undo", ran[1], "--yes", "--no-auto-transfer")
    assert result.exit_code == 0, result.stderr
    assert {body["autoTransfer"] for body in finishes(sandbox)} == {False}
    rows = by_phone(ran[1])
    assert rows[PHONES[0]]["status"] == "undone"
    assert rows[PHONES[0]]["error"].startswith("nothing_to_finish: PlugChat found no attendance")
    assert "moved to the general department" not in rows[PHONES[1]]["error"]


def test_a_refused_token_stops_undo_and_leaves_the_rest_started(runner, sandbox, ran):
    result = invoke(runner, sandbox, "undo", ran[1], "--yes", "-c", "1", token="tok-WRONG")
    assert result.exit_code == 3, result.stderr
    assert "unauthorized: the API refused the token" in result.stderr
    assert "undo stopped (unauthorized); the rest stays started" in result.stderr
    assert sandbox.state.finished == {} and sum(sandbox.state.answers.values()) > 0
    assert {r["status"] for r in by_phone(ran[1]).values()} == {"started", "already_in_service"}
    assert invoke(runner, sandbox, "undo", ran[1], "--yes").exit_code == 0
    assert len(sandbox.state.finished) == 4


def test_a_rate_limiter_in_front_slows_undo_down_and_every_finish_goes_through(runner, sandbox, ran):  # fmt: skip
    state = sandbox.state
    state.rate_limit, state.limit_status, state.retry_after = 8, 429, "seconds"
    result = invoke(runner, sandbox, "undo", ran[1], "--yes")
    assert result.exit_code == 0, result.stderr
    assert state.answers["429"] > 0 and "refused by a rate limit" in result.stderr  # waited for
    assert sandbox.state.finished == {p: 1 for p in PHONES if p != THEIRS}


def test_a_later_run_starts_undone_leads_anew_and_never_takes_another_start_for_its_own(
    runner, sandbox, ran
):
    leads, out = ran
    assert invoke(runner, sandbox, "undo", out, "--yes").exit_code == 0
    sandbox.state.attendances[LOST] = (88, ["OP-CARLA"])  # someone started it since, as OP-CARLA
    requests = dict(sandbox.state.requests)
    result = invoke(runner, sandbox, leads, "-o", out)
    assert result.exit_code == 1, result.stderr
    rows = by_phone(out)
    assert rows[LOST]["status"] == "already_in_service"  # not confirmed_on_retry: not ours
    for phone in PHONES[:3]:
        assert rows[phone]["status"] == "started" and sandbox.state.starts[phone] == 2
        assert sandbox.state.requests[phone] == requests[phone] + 1  # sent once more
    assert rows[THEIRS]["status"] == "already_in_service"
    assert sandbox.state.requests[THEIRS] == requests[THEIRS]  # done: never sent again


def test_results_handed_back_with_undone_rows_send_those_again(runner, sandbox, ran, tmp_path):
    assert invoke(runner, sandbox, "undo", ran[1], "--yes", "--rows", "2").exit_code == 0
    again = tmp_path / "again.csv"
    result = invoke(runner, sandbox, ran[1], "-o", again)
    assert result.exit_code == 1, result.stderr
    rows = by_phone(again)
    assert rows[PHONES[0]]["status"] == "started" and sandbox.state.starts[PHONES[0]] == 2
    assert all(sandbox.state.starts[p] == 1 for p in PHONES[1:] if p != THEIRS)


def test_portuguese_results_are_rewritten_in_portuguese(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *ROWS[:3]])
    out = tmp_path / "resultados.xlsx"
    sent = invoke(runner, sandbox, leads, "-o", out, "--results-lang", "pt_BR")
    assert sent.exit_code == 0, sent.stderr
    result = invoke(runner, sandbox, "undo", out, "--yes", "--rows", "3")
    assert result.exit_code == 0, result.stderr
    book = openpyxl.load_workbook(out)
    rows = list(book["Resultados"].iter_rows(values_only=True))
    assert rows[0][4:7] == ("linha", "telefone enviado", "situação")
    assert [row[6] for row in rows[1:]] == ["iniciada", "desfeita", "iniciada"]
    assert rows[2][10].startswith("o atendimento que o batch-attend iniciou foi encerrado")
    assert "Resumo" in book.sheetnames
    assert invoke(runner, sandbox, "undo", out, "--yes").exit_code == 0  # recognised again
    assert len(sandbox.state.finished) == 3


def test_a_ledger_of_an_earlier_version_gains_its_finishes_table(runner, sandbox, ran):
    ledger = f"{ran[1]}.journal"
    db = sqlite3.connect(ledger)
    db.execute("DROP TABLE finishes")
    db.commit()
    db.close()
    assert invoke(runner, sandbox, "undo", ran[1], "--yes").exit_code == 0
    db = sqlite3.connect(ledger)
    assert db.execute("SELECT count(*) FROM finishes WHERE answered_at IS NOT NULL").fetchone() == (4,)  # fmt: skip
    db.close()


def test_run_undo_and_a_rerun_with_another_pool_start_each_lead_once_with_it(runner, sandbox, tmp_path):  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", [["Telefone"], *([f"(44) 98888-{i:04d}"] for i in range(8))])  # fmt: skip
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out, "--pool", "OP-ANA,OP-BRUNO").exit_code == 0
    assert invoke(runner, sandbox, "undo", out, "--yes").exit_code == 0
    assert sandbox.state.attendances == {}
    assert invoke(runner, sandbox, leads, "-o", out, "--pool", "OP-CARLA").exit_code == 0
    phones = [f"5544988880{i:03d}" for i in range(8)]
    assert {p: a[1] for p, a in sandbox.state.attendances.items()} == {p: ["OP-CARLA"] for p in phones}  # fmt: skip
    assert sandbox.state.starts == dict.fromkeys(phones, 2)  # one a run
    assert sandbox.state.finished == dict.fromkeys(phones, 1)
    assert {r["operators"] for r in read_results_csv(out)} == {"OP-CARLA"}


def _undo(base_url, out, *extra, **how):
    return subprocess.Popen(
        [*PYTHON, "undo", str(out), "--backoff", "0.01", *extra],
        env=clean_env(PLUGCHAT_TOKEN=TOKEN, PLUGCHAT_BASE_URL=base_url),
        text=True,
        **how,
    )


def test_kill_9_mid_undo_then_undo_again_finishes_each_attendance_once(runner, sandbox, tmp_path):  # fmt: skip
    leads = write_csv(tmp_path / "leads.csv", [["Telefone", "Operadores"], *([f"55449{i:08d}", "OP-ANA"] for i in range(120))])  # fmt: skip
    out = tmp_path / "results.csv"
    state = sandbox.state
    assert invoke(runner, sandbox, leads, "-o", out, "-c", "16").exit_code == 0
    state.latency = 0.05  # the undo killed mid-way
    proc = _undo(sandbox.base_url, out, "--yes", "-c", "8", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    wait_until(lambda: len(dict(state.finished)) >= 30, "30 finishes")
    proc.kill()  # SIGKILL: no handler, no cleanup
    proc.wait(10)
    assert 30 <= len(dict(state.finished)) < 120
    state.latency = 0.0
    again = invoke(runner, sandbox, "undo", out, "--yes", "-c", "8", "--backoff", "0.01")
    assert again.exit_code == 0, again.stderr
    wait_until(lambda: state.in_flight == 0, "what the killed undo left in flight answered")
    assert len(state.finished) == 120 and set(state.finished.values()) == {1}
    assert state.attendances == {}
    assert {r["status"] for r in read_results_csv(out)} == {"undone"}
    db = sqlite3.connect(f"{out}.journal")
    unanswered = db.execute("SELECT count(*) FROM finishes WHERE answered_at IS NULL").fetchone()[0]
    db.close()
    assert 0 < unanswered <= 8  # those in flight at the kill: sent again, found nothing left


def test_undo_asks_on_a_terminal(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", [["Telefone", "Operadores"], ["(44) 99999-0001", "OP-ANA"]])  # fmt: skip
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
    for answer, code, finished in (("n", 2, {}), ("y", 0, {"5544999990001": 1})):
        main, terminal = pty.openpty()  # a terminal only a process of its own can have
        proc = _undo(sandbox.base_url, out, stdin=terminal, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        os.close(terminal)
        os.write(main, f"{answer}\n".encode())  # kept by the terminal until read
        stderr = proc.communicate(timeout=30)[1]
        os.close(main)
        assert proc.returncode == code, stderr
        assert "Finish them? [y/N]" in stderr
        assert sandbox.state.finished == finished
    assert read_results_csv(out)[0]["status"] == "undone"


def test_the_page_undoes_a_finished_run_and_follows_it_as_a_run(tmp_path):
    from tests.test_serve import leads_csv, results_rows
    from tests.web_client import on_slow_sandbox

    with on_slow_sandbox(tmp_path / "data", 0) as (state, web):
        web.login()
        url = web.new_run(leads_csv(tmp_path / "leads.csv", 5))
        state.attendances["5544998000004"] = (7, ["OP-BRUNO"])  # someone else's
        end = web.run_to_end(url)
        assert end["counts"] == {"started": 4, "already_in_service": 1}
        assert end["undo"]["label"] == "Undo: end 4 attendances"
        assert "Conversations operators have begun in them are closed too" in end["undo"]["confirm"]
        assert web.post(url + "/undo").status == 200
        events = web.events(url)
        end = {**events[-2][1], "downloads": events[-1][1]}
        assert [kind for kind, _data in events[-2:]] == ["end", "files"]
        assert end["state"] == "finished" and end["undo"] is None
        assert end["counts"] == {"undone": 4, "already_in_service": 1}
        assert "4 rows: 4 undone in " in end["summary"]
        assert end["not_done"] == {"rows": [], "more": 0}  # undone on purpose: no problem
        assert web.post(url + "/undo").status == 409  # nothing left to undo
        folder = web.server.store.get(url.rsplit("/", 1)[1]).folder
    assert state.finished == {f"5544998{i:06d}": 1 for i in range(4)}
    for fmt in ("csv", "xlsx"):
        rows = results_rows(folder / f"results.{fmt}")
        assert [r["status"] for r in rows] == ["undone"] * 4 + ["already_in_service"], fmt


def test_each_finish_is_in_the_ledger_before_it_reaches_the_api(runner, monkeypatch, tmp_path):
    from batch_attend import sandbox as stand_in

    seen = []
    act = stand_in._finish

    def finish(state, phone, operators):  # what the ledger holds as the request arrives
        db = sqlite3.connect(f"file:{out}.journal?mode=ro", uri=True)
        seen.append(db.execute("SELECT answered_at FROM finishes WHERE phone = ?", (phone,)).fetchall())  # fmt: skip
        db.close()
        return act(state, phone, operators)

    monkeypatch.setattr(stand_in, "_finish", finish)
    leads = write_csv(tmp_path / "leads.csv", [HEADER, *ROWS[:3]])
    out = tmp_path / "results.csv"
    with stand_in.SandboxServer(stand_in.SandboxState(token=TOKEN)) as sandbox:
        assert invoke(runner, sandbox, leads, "-o", out).exit_code == 0
        assert invoke(runner, sandbox, "undo", out, "--yes").exit_code == 0
    assert seen == [[(None,)]] * 3  # recorded, not yet answered
