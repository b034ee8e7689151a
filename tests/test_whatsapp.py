"""The account's WhatsApp number: asked before the first start, and again when answers fail in
a row; a number that is not connected sends nothing (exit 4)."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from batch_attend.cli import cli
from tests.conftest import TOKEN, read_results_csv, write_csv
from tests.scripted import CONNECTED, ScriptedServer, reply

DROPPED = {
    "connected": True,
    "session": False,
    "smartphoneConnected": False,
    "error": "You need to restore the session.",
}


def phones(n: int) -> list[str]:
    return [f"55449999{i:05d}" for i in range(1, n + 1)]


def leads(tmp_path, n):
    rows = [["Telefone", "Operadores"], *[[p, "OP-ANA"] for p in phones(n)]]
    return write_csv(tmp_path / "leads.csv", rows)


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted


def invoke(runner, server, *args):
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": server.origin + "/api/integrations"}
    return runner.invoke(cli, [str(a) for a in args], env=env)


def test_a_number_not_connected_sends_nothing_and_exits_4(runner, server, tmp_path):
    server.status = reply(200, json.dumps(DROPPED), "application/json")
    out, summary = tmp_path / "r.csv", tmp_path / "s.json"
    result = invoke(runner, server, leads(tmp_path, 5), "-o", out, "--summary-json", summary)
    assert result.exit_code == 4, result.stderr
    assert "session, smartphoneConnected false" in result.stderr
    assert "You need to restore the session." in result.stderr
    assert server.requests == [] and server.status_requests == 1
    assert not out.exists() and not (tmp_path / "r.csv.journal").exists()
    assert json.loads(summary.read_text())["exit_code"] == 4


def test_no_status_check_sends_without_asking(runner, server, tmp_path):
    server.status = reply(200, json.dumps(DROPPED), "application/json")
    result = invoke(
        runner, server, leads(tmp_path, 3), "-o", tmp_path / "r.csv", "--no-status-check"
    )
    assert result.exit_code == 0, result.stderr
    assert server.status_requests == 0 and len(server.requests) == 3


def test_a_status_that_cannot_be_read_is_not_sent_blind(runner, server, tmp_path):
    server.status = reply(404, "Not Found")
    result = invoke(runner, server, leads(tmp_path, 3), "-o", tmp_path / "r.csv")
    assert result.exit_code == 2, result.stderr
    assert "--no-status-check" in result.stderr and "HTTP 404" in result.stderr
    assert server.requests == []


def dropping_after(server, starts: int):
    """Start ``starts`` leads, then the number drops: every start answers 503, and the status
    says so."""
    done = 0

    async def handler(request):
        nonlocal done
        if done < starts:
            done += 1
            return web.json_response(True)
        server.status = reply(200, json.dumps(DROPPED), "application/json")
        return web.json_response({"error": "You are not connected."}, status=503)

    return handler


def test_a_number_that_drops_mid_run_stops_it_and_a_rerun_resumes(runner, server, tmp_path):
    server.handler = dropping_after(server, 30)
    source, out = leads(tmp_path, 200), tmp_path / "r.csv"
    first = invoke(runner, server, source, "-o", out, "-c", "4", "--backoff", "0.01")
    assert first.exit_code == 4, first.stderr
    assert "smartphoneConnected false" in first.stderr and "sending stopped" in first.stderr
    assert server.status_requests == 2  # before the first start, and after 10 failures in a row
    rows = read_results_csv(out)
    statuses = [r["status"] for r in rows]
    assert statuses.count("started") == 30
    skipped = [r for r in rows if r["status"] == "skipped"]
    assert len(skipped) >= 150 and {r["error"].split(":")[0] for r in skipped} == {
        "whatsapp_disconnected"
    }
    assert len(server.requests) < 30 + 10 + 4 * 4  # stopped soon after the 10th failure

    server.handler, server.status = reply(200, "true"), reply(200, CONNECTED, "application/json")
    server.requests.clear()
    again = invoke(runner, server, source, "-o", out, "-c", "4")
    assert again.exit_code == 0, again.stderr
    assert len(server.requests) == 170  # every lead not started, once
    assert {r["status"] for r in read_results_csv(out)} == {"started"}


def test_answers_failing_while_the_number_is_connected_do_not_stop_the_run(
    runner, server, tmp_path
):
    server.handler = reply(500, '{"error": "internal"}', "application/json")
    out = tmp_path / "r.csv"
    result = invoke(runner, server, leads(tmp_path, 30), "-o", out, "--retries", "0")
    assert result.exit_code == 1, result.stderr
    assert len(server.requests) == 30 and server.status_requests >= 2
    assert {r["status"] for r in read_results_csv(out)} == {"failed"}


def test_check_says_the_whatsapp_status_and_exits_4_when_it_is_down(runner, server, tmp_path):
    source = leads(tmp_path, 2)
    server.handler = reply(200, "[]", "application/json")  # the departments: none
    up = invoke(runner, server, "check", source)
    assert "WhatsApp: connected" in up.stdout, up.stdout
    server.status = reply(200, json.dumps(DROPPED), "application/json")
    down = invoke(runner, server, "check", source)
    assert down.exit_code == 4, down.stdout
    assert "WhatsApp: the account's WhatsApp number is not connected" in down.stdout
    assert not [r for r in server.requests if r["path"].endswith("/start-attendance")]


# --- --verify-whatsapp, against the sandbox's seeded numbers ---------------------------------

NO_WHATSAPP = "554430251234"  # a landline: no other form to try
WRITTEN, REGISTERED = "554488880777", "5544988880777"  # only the ninth-digit form has WhatsApp
PLAIN = "5544999990001"


def verify_leads(tmp_path):
    rows = [["Telefone", "Operadores"], [PLAIN, "OP-ANA"], [NO_WHATSAPP, "OP-ANA"]]
    rows.append([WRITTEN, "OP-ANA"])
    return write_csv(tmp_path / "leads.csv", rows)


def run_sandbox(runner, sandbox, *args):
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    return runner.invoke(cli, [str(a) for a in args], env=env)


def test_verify_whatsapp_sends_only_numbers_with_whatsapp_in_the_form_that_has_it(
    runner, sandbox, tmp_path
):
    source, out = verify_leads(tmp_path), tmp_path / "r.csv"
    result = run_sandbox(runner, sandbox, source, "-o", out, "--verify-whatsapp")
    assert result.exit_code == 1, result.stderr
    by_row = {r["Telefone"]: r for r in read_results_csv(out)}
    assert (by_row[PLAIN]["status"], by_row[PLAIN]["phone"]) == ("started", PLAIN)
    assert by_row[NO_WHATSAPP]["status"] == "invalid"
    assert by_row[NO_WHATSAPP]["error"].startswith("no_whatsapp: PlugChat says")
    moved = by_row[WRITTEN]
    assert (moved["status"], moved["phone"]) == ("started", REGISTERED)
    assert moved["error"].startswith("ninth_digit_added: sent as " + REGISTERED)
    assert set(sandbox.state.starts) == {PLAIN, REGISTERED}  # never the other two
    asked = dict(sandbox.state.phone_exists_requests)
    assert asked == {PLAIN: 1, NO_WHATSAPP: 1, WRITTEN: 1, REGISTERED: 1}
    assert "asked PlugChat whether 4 phones have WhatsApp" in result.stderr

    again = run_sandbox(runner, sandbox, source, "-o", out, "--verify-whatsapp")
    assert again.exit_code == 1, again.stderr
    assert dict(sandbox.state.phone_exists_requests) == asked  # the ledger answered
    assert sum(sandbox.state.starts.values()) == 2
    assert {r["Telefone"]: r["status"] for r in read_results_csv(out)} == {
        PLAIN: "started",
        NO_WHATSAPP: "invalid",
        WRITTEN: "started",
    }


def test_without_verify_whatsapp_no_phone_is_asked_or_changed(runner, sandbox, tmp_path):
    source, out = verify_leads(tmp_path), tmp_path / "r.csv"
    result = run_sandbox(runner, sandbox, source, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert sandbox.state.phone_exists_requests == {}
    assert set(sandbox.state.starts) == {PLAIN, NO_WHATSAPP, WRITTEN}


def test_a_dry_run_with_verify_whatsapp_asks_says_so_and_starts_nothing(runner, sandbox, tmp_path):
    source, out = verify_leads(tmp_path), tmp_path / "r.csv"
    result = run_sandbox(runner, sandbox, source, "-o", out, "--verify-whatsapp", "--dry-run")
    assert result.exit_code == 1, result.stderr
    assert "asked PlugChat whether 4 phones have WhatsApp" in result.stderr
    assert sandbox.state.starts == {} and len(sandbox.state.phone_exists_requests) == 4
    by_row = {r["Telefone"]: r for r in read_results_csv(out)}
    assert by_row[NO_WHATSAPP]["status"] == "invalid"
    assert (by_row[WRITTEN]["phone"], by_row[WRITTEN]["status"]) == (REGISTERED, "skipped")
    assert not (tmp_path / "r.csv.journal").exists()


def test_the_sandbox_number_dropping_mid_run_then_reconnected(runner, tmp_path):
    from batch_attend.sandbox import SandboxServer, SandboxState

    with SandboxServer(SandboxState(token=TOKEN, disconnect_after=25)) as sandbox:
        source, out = leads(tmp_path, 120), tmp_path / "r.csv"
        first = run_sandbox(runner, sandbox, source, "-o", out, "-c", "4", "--backoff", "0.01")
        assert first.exit_code == 4, first.stderr
        rows = read_results_csv(out)
        assert sum(r["status"] == "started" for r in rows) == 25
        assert "whatsapp_disconnected" in {r["error"].split(":")[0] for r in rows}
        sandbox.state.disconnect_after, sandbox.state.connected = None, True  # reconnected
        again = run_sandbox(runner, sandbox, source, "-o", out, "-c", "4")
        assert again.exit_code == 0, again.stderr
        assert set(sandbox.state.starts.values()) == {1} and len(sandbox.state.starts) == 120


# --- --online-only, against the sandbox's operators (OP-ANA and OP-CARLA online) --------------


def online_leads(tmp_path):
    rows = [["Telefone", "Operadores"]]
    rows += [[p, ""] for p in phones(6)]
    rows += [["5544999990101", "OP-ANA; OP-BRUNO"], ["5544999990102", "OP-BRUNO, OP-DIEGO"]]
    rows += [["5544999990103", "OP-BRUNO"]]
    return write_csv(tmp_path / "leads.csv", rows)


def test_online_only_gives_rows_to_the_operators_online_now(runner, sandbox, tmp_path):
    out = tmp_path / "r.csv"
    result = run_sandbox(
        runner, sandbox, online_leads(tmp_path), "-o", out, "--online-only",
        "--account-id", "sandbox-account", "--pool", "OP-ANA,OP-BRUNO,OP-CARLA",
        "--distribute", "balanced",
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    rows = read_results_csv(out)
    pooled = [r["operators"] for r in rows[:6]]
    # OP-BRUNO is offline; OP-ANA already has row 7, so balanced evens them out at 4 and 3
    assert sorted(pooled) == ["OP-ANA"] * 3 + ["OP-CARLA"] * 3
    assert rows[6]["operators"] == "OP-ANA"  # OP-BRUNO, offline, left out of the cell
    assert (rows[7]["status"], rows[7]["error"].split(":")[0]) == ("skipped", "operators_offline")
    assert (rows[8]["status"], rows[8]["operators"]) == ("started", "OP-BRUNO")  # as written
    assert sandbox.state.online_requests == 1


def test_online_only_with_no_pool_member_online_is_refused_naming_them(runner, sandbox, tmp_path):
    sandbox.state.online = set()
    out = tmp_path / "r.csv"
    result = run_sandbox(
        runner, sandbox, online_leads(tmp_path), "-o", out, "--online-only",
        "--account-id", "sandbox-account", "--pool", "OP-ANA,OP-BRUNO",
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert "no pool member is online" in result.stderr and "OP-BRUNO" in result.stderr
    assert sandbox.state.starts == {} and not out.exists()


def test_online_only_needs_the_account_id(runner, sandbox, tmp_path):
    result = run_sandbox(runner, sandbox, online_leads(tmp_path), "-o", tmp_path / "r.csv",
                         "--online-only", "--pool", "OP-ANA")  # fmt: skip
    assert result.exit_code == 2 and "--account-id" in result.stderr
    assert sandbox.state.starts == {}


def test_check_shows_it_all_in_one_screen(runner, sandbox, tmp_path):
    result = run_sandbox(
        runner, sandbox, "check", verify_leads(tmp_path), "--verify-whatsapp",
        "--account-id", "sandbox-account",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Token: accepted" in lines and "WhatsApp: connected" in lines
    assert (
        "Operators online now: Ana Souza (OP-ANA), Carla Nogueira (OP-CARLA); "
        "offline: Bruno Lima (OP-BRUNO)"
    ) in lines
    assert (
        "Rows: 3: 2 ready to send, 1 invalid (1 without WhatsApp), 0 duplicates (skipped)" in lines
    )
    assert "asked PlugChat whether 4 phones have WhatsApp" in result.stderr
    assert sandbox.state.starts == {}


def test_operators_online_lists_who_is_online(runner, sandbox):
    result = run_sandbox(
        runner, sandbox, "operators", "--online", "--account-id", "sandbox-account",
        "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    states = {o["id"]: o["online"] for o in json.loads(result.stdout)}
    assert states == {"OP-ANA": True, "OP-BRUNO": False, "OP-CARLA": True}


def test_a_refused_token_while_asking_about_phones_is_exit_3_not_a_crash(runner, sandbox, tmp_path):
    """The phone checks run in a task group: the refusal comes out as itself, not as a group."""
    leads = write_csv(tmp_path / "leads.csv", [["Telefone", "Operadores"], ["5544999999999", "A"]])
    env = {"PLUGCHAT_TOKEN": "wrong", "PLUGCHAT_BASE_URL": sandbox.base_url}
    args = [str(leads), "-o", str(tmp_path / "r.csv"), "--dry-run", "--verify-whatsapp"]
    result = runner.invoke(cli, [*args, "--no-status-check"], env=env)
    assert result.exit_code == 3, result.output
    assert "refused the token (HTTP 401) when asked whether a phone has WhatsApp" in result.stderr
    assert "unexpected error" not in result.stderr
