"""Retries, time-outs, ambiguous answers, 429s and a token revoked mid-run, over real loopback."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import time

import pytest
from aiohttp import web

from batch_attend.env import Env
from batch_attend.outcomes import ErrorCode, ExitStatus, RowStatus, exit_status_for
from batch_attend.run import run_batch
from batch_attend.sandbox import Fault, SandboxServer, SandboxState
from batch_attend.settings import RunOptions
from tests.conftest import TOKEN, read_results_csv, write_csv
from tests.scripted import ScriptedServer, reply

PHONE = "5544999990001"


def phones(n: int) -> list[str]:
    return [f"55449999{i:05d}" for i in range(1, n + 1)]


def run(tmp_path, base_url, phone_list, token=TOKEN, operators="OP-ANA", **opts):
    leads = write_csv(
        tmp_path / "leads.csv", [["Telefone", "Operadores"], *[[p, operators] for p in phone_list]]
    )
    options = RunOptions.build(
        input=leads,
        output=str(tmp_path / "r.csv"),
        token=token,
        base_url=base_url,
        backoff=opts.pop("backoff", 0.01),
        **opts,
    )
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), environ={})
    report = run_batch(options, env)
    return report, env.stderr.getvalue()


def only(report):
    (outcome,) = report.outcomes
    return outcome


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [("fail:2", 3), ("bad-gateway:1", 2), ("drop:2", 3)],
)
def test_transient_faults_are_retried_until_started(sandbox, tmp_path, fault, attempts):
    sandbox.state.faults = {PHONE: Fault.parse(fault)}
    report, _ = run(tmp_path, sandbox.base_url, [PHONE])
    outcome = only(report)
    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        RowStatus.STARTED,
        "",
        attempts,
    )
    assert sandbox.state.requests[PHONE] == attempts
    assert sandbox.state.starts[PHONE] == 1


def test_permanent_500_fails_after_all_retries(sandbox, tmp_path):
    sandbox.state.faults = {PHONE: Fault("fail")}
    report, _ = run(tmp_path, sandbox.base_url, [PHONE], retries=2)
    outcome = only(report)
    assert (outcome.status, outcome.error_code, outcome.http_status) == (
        RowStatus.FAILED,
        ErrorCode.SERVER_ERROR,
        500,
    )
    assert outcome.attempts == 3 and sandbox.state.requests[PHONE] == 3
    assert report.summary.retries == 2


def test_retries_zero_sends_once(sandbox, tmp_path):
    sandbox.state.faults = {PHONE: Fault("fail")}
    report, _ = run(tmp_path, sandbox.base_url, [PHONE], retries=0)
    assert only(report).attempts == 1


@pytest.mark.parametrize(
    ("fault", "code"),
    [("html", ErrorCode.UNEXPECTED_RESPONSE), ("badjson", ErrorCode.UNEXPECTED_RESPONSE),
     ("empty", ErrorCode.UNEXPECTED_RESPONSE)],
)  # fmt: skip
def test_odd_success_bodies_are_not_retried(sandbox, tmp_path, fault, code):
    sandbox.state.faults = {PHONE: Fault(fault)}
    report, _ = run(tmp_path, sandbox.base_url, [PHONE])
    outcome = only(report)
    assert (outcome.status, outcome.error_code, outcome.attempts) == (RowStatus.FAILED, code, 1)


@pytest.mark.parametrize("status", [400, 403, 404, 405, 415, 422])
def test_client_errors_are_never_retried(tmp_path, status):
    with ScriptedServer() as server:
        server.handler = reply(status, '{"error": "no"}', "application/json")
        report, _ = run(tmp_path, server.origin + "/api/integrations", [PHONE])
        assert len(server.requests) == 1
    assert only(report).attempts == 1 and only(report).http_status == status


def test_server_acted_then_dropped_is_confirmed_on_retry(sandbox, tmp_path):
    sandbox.state.faults = {PHONE: Fault.parse("act-drop:1")}
    report, _ = run(tmp_path, sandbox.base_url, [PHONE])
    outcome = only(report)
    assert outcome.status is RowStatus.STARTED
    assert outcome.error.startswith("confirmed_on_retry: ")
    assert outcome.attendance_number and outcome.attempts == 2
    assert sandbox.state.starts[PHONE] == 1
    assert exit_status_for(report.summary) is ExitStatus.SUCCESS


def test_slow_answer_past_the_timeout_is_confirmed_on_retry(sandbox, tmp_path):
    sandbox.state.faults = {PHONE: Fault.parse("slow:1")}
    sandbox.state.slow_seconds = 2.0
    report, _ = run(tmp_path, sandbox.base_url, [PHONE], timeout=0.3)
    outcome = only(report)
    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        RowStatus.STARTED,
        ErrorCode.CONFIRMED_ON_RETRY,
        2,
    )
    assert sandbox.state.starts[PHONE] == 1


def test_ambiguous_retry_finding_other_operators_is_already_in_service(sandbox, tmp_path):
    sandbox.state.attendances[PHONE] = (7777, ["OP-BRUNO"])  # someone else's attendance
    sandbox.state.faults = {PHONE: Fault.parse("drop:1")}
    report, _ = run(tmp_path, sandbox.base_url, [PHONE])
    outcome = only(report)
    assert (outcome.status, outcome.attendance_number, outcome.operators) == (
        RowStatus.ALREADY_IN_SERVICE,
        "7777",
        ("OP-BRUNO",),
    )
    assert outcome.error_code == ""


def test_progress_without_an_earlier_lost_request_is_not_claimed(sandbox, tmp_path):
    sandbox.state.attendances[PHONE] = (7777, ["OP-ANA"])  # same operators, but not ours
    report, _ = run(tmp_path, sandbox.base_url, [PHONE])
    assert only(report).status is RowStatus.ALREADY_IN_SERVICE


@pytest.mark.parametrize("retry_after", ["seconds", "date", "none"])
def test_rate_limited_run_ends_with_every_row_started(tmp_path, retry_after):
    state = SandboxState(token=TOKEN, rate_limit=50, limit_status=429, retry_after=retry_after)
    with SandboxServer(state) as sandbox:  # slow start passes 50/s within the first rows
        report, stderr = run(
            tmp_path, sandbox.base_url, phones(20), concurrency=8, retries=8, backoff=0.2
        )
    statuses = {o.status for o in report.outcomes}
    assert statuses == {RowStatus.STARTED}
    assert report.summary.pushbacks > 0
    refused = report.summary.pushbacks
    assert f"{refused} request{'s' * (refused > 1)} refused by a rate limit" in stderr
    assert sum(o.attempts for o in report.outcomes) == sum(state.requests.values())
    assert set(state.starts.values()) == {1}


def test_retry_after_pauses_every_worker(tmp_path):
    """After one 429 with Retry-After: 1, no new request starts for a second, whoever sends it."""
    starts: list[float] = []
    first = True

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal first
        starts.append(time.monotonic())
        if first:
            first = False
            return web.Response(status=429, headers={"Retry-After": "1"})
        await asyncio.sleep(0.05)
        return web.json_response(True)

    with ScriptedServer() as server:
        server.handler = handler
        report, _ = run(tmp_path, server.origin + "/api/integrations", phones(12), concurrency=4)
    assert {o.status for o in report.outcomes} == {RowStatus.STARTED}
    t429 = starts[0]
    later = sorted(starts[4:])  # the first four went out together, before the 429 came back
    assert later and later[0] >= t429 + 0.95


def test_token_revoked_mid_run_stops_sending_and_resumes(tmp_path):
    state = SandboxState(token=TOKEN, revoke_after=5)
    with SandboxServer(state) as sandbox:
        report, _ = run(tmp_path, sandbox.base_url, phones(30), concurrency=3)
        assert exit_status_for(report.summary) is ExitStatus.TOKEN_REFUSED
        counts = report.summary.counts
        assert counts[RowStatus.STARTED] == 5
        assert counts[RowStatus.SKIPPED] == 25
        assert state.answers["401"] <= 3  # only requests already in flight saw the 401 too
        assert set(state.answers) == {"started", "401"}  # nothing else was ever sent
        rows = read_results_csv(tmp_path / "r.csv")
        assert all(
            r["error"].startswith("unauthorized: ") for r in rows if r["status"] == "skipped"
        )
        # The token works again; the same command resumes and finishes the rest.
        state.revoke_after = None
        again, _ = run(tmp_path, sandbox.base_url, phones(30), concurrency=3)
    assert exit_status_for(again.summary) is ExitStatus.SUCCESS
    assert again.summary.resumed == 5
    assert {o.status for o in again.outcomes} == {RowStatus.STARTED}
    assert set(state.starts.values()) == {1} and len(state.starts) == 30


def test_failed_rows_are_retried_by_a_rerun_and_done_rows_are_not(sandbox, tmp_path):
    sandbox.state.faults = {phones(3)[1]: Fault.parse("fail:4")}
    first, _ = run(tmp_path, sandbox.base_url, phones(3), retries=1)
    assert [o.status for o in first.outcomes] == ["started", "failed", "started"]
    second, _ = run(tmp_path, sandbox.base_url, phones(3), retries=3)
    assert [o.status for o in second.outcomes] == ["started"] * 3
    assert second.outcomes[1].attempts == 2 + 3  # every request the row ever cost
    assert sandbox.state.requests[phones(3)[0]] == 1


def test_verbose_traces_each_request_without_the_token(sandbox, tmp_path):
    sandbox.state.faults = {PHONE: Fault.parse("fail:1")}
    _, stderr = run(tmp_path, sandbox.base_url, [PHONE], verbose=True)
    lines = [line for line in stderr.splitlines() if line.startswith("row 2 ")]
    assert len(lines) == 2
    assert "*********0001 attempt 1: HTTP 500 server_error" in lines[0] and "retry in" in lines[0]
    assert "attempt 2: HTTP 200 started" in lines[1]
    assert TOKEN not in stderr


def test_a_few_thousand_rows_through_a_faulty_server(tmp_path):
    """Every row ends started or already in service, except the ones whose fault is permanent."""
    numbers = phones(2000)
    transient = ["fail:2", "drop:1", "act-drop:1", "bad-gateway:1", "slow:1"]
    permanent = ["fail", "html", "badjson"]
    faults = {}
    for i, phone in enumerate(numbers):
        if i % 10 == 0:
            faults[phone] = Fault.parse(transient[(i // 10) % len(transient)])
        elif i % 97 == 0:
            faults[phone] = Fault.parse(permanent[(i // 97) % len(permanent)])
    state = SandboxState(
        token=TOKEN,
        jitter=0.005,
        rate_limit=1500,
        burst=32,
        slow_seconds=1.0,
        faults=faults,
        keep_log=False,
    )
    for phone in numbers[1::50]:
        state.attendances[phone] = (90000, ["OP-BRUNO"])  # already someone else's
    with SandboxServer(state) as sandbox:
        report, _ = run(
            tmp_path,
            sandbox.base_url,
            numbers,
            concurrency=32,
            timeout=0.5,
            retries=5,
            backoff=0.05,
        )
    broken = {
        p for p, f in faults.items() if f.kind in ("fail", "html", "badjson") and f.times is None
    }
    for phone, outcome in zip(numbers, report.outcomes, strict=True):
        if phone in broken:
            assert outcome.status is RowStatus.FAILED, phone
        else:
            assert outcome.status in (RowStatus.STARTED, RowStatus.ALREADY_IN_SERVICE), (
                phone,
                outcome,
            )
    assert all(count == 1 for count in state.starts.values())
    assert report.summary.counts[RowStatus.ALREADY_IN_SERVICE] == 40


def test_a_token_that_appears_inside_answers_does_not_change_them(tmp_path):
    """Masking the token is for messages only: a short token found inside `true` or inside the
    "progress" body must not change how the answer is read."""
    state = SandboxState(token="e")
    with SandboxServer(state) as sandbox:
        first, _ = run(tmp_path, sandbox.base_url, [PHONE], token="e")
        again, _ = run(tmp_path, sandbox.base_url, [PHONE], token="e", fresh=True)
    assert only(first).status is RowStatus.STARTED
    assert only(again).status is RowStatus.ALREADY_IN_SERVICE
    assert only(again).operators == ("OP-ANA",)


def late_first(seconds: float):
    """Answers ``true``, the first request only after ``seconds``."""
    first = True

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal first
        if first:
            first = False
            await asyncio.sleep(seconds)
        return web.json_response(True)

    return handler


@pytest.mark.timeout(60)
def test_an_answer_twelve_seconds_late_is_taken_in_without_a_crash(tmp_path):
    """Inside the default 30 s time-out (it used to end the run: IndexError, exit 1)."""
    with ScriptedServer() as server:
        server.handler = late_first(12.0)
        report, stderr = run(tmp_path, server.origin + "/api/integrations", phones(3))
    assert report.exit_status is ExitStatus.SUCCESS, stderr
    assert [(o.status, o.attempts) for o in report.outcomes] == [(RowStatus.STARTED, 1)] * 3


@pytest.mark.parametrize(
    ("late", "code", "attempts"), [(0.6, None, 1), (1.4, ErrorCode.TIMEOUT, 2)]
)
def test_an_answer_just_before_or_after_the_time_out_is_judged_as_it_came(
    tmp_path, late, code, attempts
):
    """Just before: started. Just after: a time-out, sent again (and started then)."""
    log = tmp_path / "log.jsonl"
    with ScriptedServer() as server:
        server.handler = late_first(late)
        report, _ = run(
            tmp_path, server.origin + "/api/integrations", [PHONE], timeout=1.0, log_file=log
        )
    assert (only(report).status, only(report).attempts) == (RowStatus.STARTED, attempts)
    first = json.loads(log.read_text().splitlines()[0])
    assert first["error"] == code


def test_a_start_cut_off_on_a_reused_connection_is_sent_again_at_once_and_known_as_ours(
    sandbox, tmp_path
):
    """The sandbox acts, then hangs up on the pooled connection before answering: the start is
    sent again at once on a new connection (no retry spent), and its "already in service" is
    this lead's own start; the ledger keeps the request as one the API may have acted on."""
    first, second = phones(2)
    sandbox.state.faults = {second: Fault.parse("act-drop:1")}
    report, _ = run(tmp_path, sandbox.base_url, [first, second], concurrency=1, retries=0)
    outcome = report.outcomes[1]
    assert (outcome.status, outcome.error_code, outcome.attempts) == (
        RowStatus.STARTED,
        ErrorCode.CONFIRMED_ON_RETRY,
        2,
    )
    assert sandbox.state.requests[second] == 2 and sandbox.state.starts[second] == 1
    assert report.summary.retries == 0
    with sqlite3.connect(tmp_path / "r.csv.journal") as db:
        acted = db.execute("SELECT may_have_acted FROM attempts WHERE phone = ?", (second,))
        assert [a for (a,) in acted] == [1]
