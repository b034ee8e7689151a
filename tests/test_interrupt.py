"""Real processes stopped the hard ways: Ctrl-C, SIGTERM, a second Ctrl-C, ``kill -9``, and two
runs on the same results. Every run talks to a sandbox over loopback, served by the test's own
process (which reads its record, and shortens its latency once a run's interruption is over),
whose record proves what was sent and started."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import time
import urllib.request

import pytest
from click.testing import CliRunner

from batch_attend.cli import cli
from batch_attend.sandbox import SandboxServer, SandboxState
from tests.conftest import PYTHON, TOKEN, clean_env, read_results_csv, write_csv


@contextlib.contextmanager
def sandbox_at(latency: float = 0.0):
    """A sandbox served by this process; yields its base URL and its state."""
    state = SandboxState(token=TOKEN, latency=latency)
    with SandboxServer(state) as sandbox:
        yield sandbox.base_url, state


def sandbox_state(base_url: str) -> dict:
    url = base_url.replace("/api/integrations", "/_sandbox/state")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def done_phones(journal: str) -> set[str]:
    """Phones the ledger records as decided, read with plain SQLite (as `sqlite3` would)."""
    db = sqlite3.connect(journal)
    try:
        return {p for (p,) in db.execute("SELECT phone FROM leads WHERE status IS NOT NULL")}
    finally:
        db.close()


def make_leads(tmp_path, n: int, name="leads.csv"):
    rows = [["Telefone", "Operadores"]] + [[f"55449{i:08d}", "OP-ANA"] for i in range(n)]
    return write_csv(tmp_path / name, rows)


def start_run(base_url, leads, out, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [*PYTHON, str(leads), "-o", str(out), "--backoff", "0.01", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(PLUGCHAT_TOKEN=TOKEN, PLUGCHAT_BASE_URL=base_url),
    )


def run_to_end(base_url, leads, out, *extra):
    """A run no signal stops: in this process (a process of its own costs a second or more)."""
    return CliRunner().invoke(
        cli,
        [str(leads), "-o", str(out), "--backoff", "0.01", *extra],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": base_url},
    )


def wait_for_requests(base_url: str, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(sandbox_state(base_url)["requests"].values()) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {at_least} requests arrived in {timeout} s")


def requests_in(state: SandboxState) -> int:
    return sum(dict(state.requests).values())  # a copy: the sandbox's thread adds meanwhile


def wait_until(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.01)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_writes_results_and_rerun_resumes(tmp_path, sig, code):
    leads = make_leads(tmp_path, 200)
    out = tmp_path / "results.csv"
    with sandbox_at(latency=0.05) as (base_url, state):
        proc = start_run(base_url, leads, out, "-c", "4")
        wait_until(lambda: requests_in(state) >= 20, "20 requests")
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == code, stderr
        assert "Run the same command again to resume" in stderr
        rows = read_results_csv(out)
        assert len(rows) == 200
        statuses = {r["status"] for r in rows}
        assert statuses <= {"started", "skipped"} and "skipped" in statuses
        assert all(r["error"].startswith("interrupted: ") for r in rows if r["status"] == "skipped")
        finished = {r["phone"] for r in rows if r["status"] == "started"}

        state.latency = 0.0  # the interruption is over: the rest at once
        rerun = run_to_end(base_url, leads, out, "-c", "4")
        assert rerun.exit_code == 0, rerun.stderr
        assert f"{len(finished)} done by an earlier run" in rerun.stderr
    assert {r["status"] for r in read_results_csv(out)} == {"started"}
    assert len(state.starts) == 200 and set(state.starts.values()) == {1}
    assert all(state.requests[p] == 1 for p in finished)
    for text in (stdout, stderr, rerun.stdout, rerun.stderr):
        assert TOKEN not in text
    for path in tmp_path.iterdir():  # results, journal and anything else the runs left
        assert TOKEN.encode() not in path.read_bytes(), path


def test_second_ctrl_c_exits_at_once_and_the_journal_stays_sound(tmp_path):
    leads = make_leads(tmp_path, 40)
    out = tmp_path / "results.csv"
    with sandbox_at(latency=3.0) as (base_url, state):
        proc = start_run(base_url, leads, out, "-c", "4")
        # counted when they arrive, not when answered
        wait_until(lambda: state.in_flight >= 4, "4 requests in flight")
        proc.send_signal(signal.SIGINT)  # in-flight requests get a grace period...
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)  # ...unless the user insists
        proc.communicate(timeout=10)
        assert proc.returncode == 130
        assert time.monotonic() - t0 < 1.5
        journal = sqlite3.connect(str(out) + ".journal")
        assert journal.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        journal.close()
        state.latency = 0.0  # the four cut off still wait out their 3 s, and act then
        rerun = run_to_end(base_url, leads, out, "-c", "40")
        assert rerun.exit_code == 0, rerun.stderr
        wait_until(lambda: state.in_flight == 0, "the requests cut off answered")
    assert len(state.starts) == 40 and set(state.starts.values()) == {1}


def test_kill_9_and_rerun_match_an_undisturbed_run(tmp_path):
    n, concurrency = 400, 8
    leads = make_leads(tmp_path, n)
    out = tmp_path / "results.csv"
    with sandbox_at(latency=0.02) as (base_url, state):
        proc = start_run(base_url, leads, out, "-c", str(concurrency))
        wait_until(lambda: requests_in(state) >= 150, "150 requests")
        assert len(done_phones(str(out) + ".journal")) > 0  # readable while the run sends
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        recorded = done_phones(str(out) + ".journal")
        sent_before = dict(state.requests)
        assert len(recorded) >= 100

        rerun = run_to_end(base_url, leads, out, "-c", str(concurrency))
        assert rerun.exit_code == 0, rerun.stderr

    # Every phone started exactly once, whatever the kill interrupted.
    assert len(state.starts) == n and set(state.starts.values()) == {1}
    # No row whose outcome the journal had recorded was sent again.
    assert all(state.requests[p] == 1 for p in recorded)
    # At most the rows in flight at the kill were sent twice.
    resent = [p for p, count in state.requests.items() if count > 1]
    assert len(resent) <= concurrency
    assert all(sent_before.get(p) == 1 for p in resent)

    with sandbox_at() as (base_url, _calm_state):
        calm = run_to_end(base_url, leads, tmp_path / "undisturbed.csv")
        assert calm.exit_code == 0, calm.stderr
    fields = ("row", "phone", "status", "operators")
    after_kill = [tuple(r[f] for f in fields) for r in read_results_csv(out)]
    undisturbed = [
        tuple(r[f] for f in fields) for r in read_results_csv(tmp_path / "undisturbed.csv")
    ]
    assert after_kill == undisturbed


def test_two_runs_on_the_same_results_and_a_crashed_lock(tmp_path):
    leads = make_leads(tmp_path, 30)
    out = tmp_path / "results.csv"
    with sandbox_at(latency=0.5) as (base_url, state):
        first = start_run(base_url, leads, out, "-c", "1")
        wait_until(lambda: requests_in(state) >= 1, "the first request")
        second = run_to_end(base_url, leads, out)
        assert second.exit_code == 2
        assert "another batch-attend run is writing these results" in second.stderr
        first.kill()
        first.communicate(timeout=10)
        state.latency = 0.0
        third = run_to_end(base_url, leads, out, "-c", "8")
        assert third.exit_code == 0, third.stderr
        wait_until(lambda: state.in_flight == 0, "the killed run's request answered")
    assert len(state.starts) == 30 and set(state.starts.values()) == {1}


def test_results_on_a_pipe_that_closes_early_lose_nothing(tmp_path):
    """``batch-attend leads.csv -o - | head -1``: the reader goes away, the ledger keeps it all."""
    leads = make_leads(tmp_path, 2000)  # results far larger than a pipe's buffer
    with sandbox_at() as (base_url, state):
        proc = subprocess.Popen(
            [*PYTHON, str(leads), "-o", "-", "-c", "16"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(PLUGCHAT_TOKEN=TOKEN, PLUGCHAT_BASE_URL=base_url),
        )
        assert proc.stdout.readline().startswith(b"Telefone,")
        proc.stdout.close()  # what `head -1` does after its line
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=60)
        assert proc.returncode == 1, stderr
        assert "cut off (broken pipe)" in stderr and "Traceback" not in stderr
        rerun = run_to_end(base_url, leads, "-")
    assert rerun.exit_code == 0, rerun.stderr
    assert "2,000 done by an earlier run" in rerun.stderr
    assert len(rerun.stdout.splitlines()) == 2001
    assert len(state.starts) == 2000 and requests_in(state) == 2000


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_once_the_last_answers_are_in_still_writes_every_row(tmp_path, sig, code):
    """Sending is over, the results are being written: the signal waits until they are."""
    leads = make_leads(tmp_path, 3000)
    first_part = write_csv(tmp_path / "part.csv", [["Telefone", "Operadores"]] + [
        [f"55449{i:08d}", "OP-ANA"] for i in range(2990)
    ])  # fmt: skip
    out = tmp_path / "results.xlsx"  # a workbook takes a moment to write: the signal lands then
    with sandbox_at() as (base_url, state):
        assert run_to_end(base_url, first_part, out, "-c", "32", "-q").exit_code == 0
        proc = start_run(base_url, leads, out, "-c", "32")
        wait_until(lambda: requests_in(state) >= 3000, "3000 requests")
        time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert "before any request was sent" not in stderr
    import openpyxl

    sheet = openpyxl.load_workbook(out, read_only=True)["Results"]
    header = next(sheet.iter_rows(max_row=1, values_only=True))
    statuses = [r[header.index("status")] for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(statuses) == 3000 and set(statuses) <= {"started", "skipped"}
    assert statuses[:2990] == ["started"] * 2990
