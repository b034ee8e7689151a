"""The ledger: what it records, what survives a killed process, when it refuses, and the lock
that keeps two runs apart."""

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from batch_attend.api import Answer
from batch_attend.cli import cli
from batch_attend.engine import Engine
from batch_attend.journal import Journal, JournalError
from batch_attend.leads import Lead
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.retrying import RetryPolicy
from tests.conftest import TOKEN, write_csv

LEADS = [Lead(i, i + 2, f"55449999900{i:02d}", ("OP-1",), "", key=7 + i) for i in range(4)]
TARGET = "https://app.plugchat.com.br/api/integrations"


def open_journal(path, target=TARGET, fresh=False) -> Journal:
    return Journal.open(path, target=target, input="leads.csv", fresh=fresh)


def send(journal: Journal, lead: Lead) -> int:
    """One request recorded, as the engine does it: it returns once committed."""
    return asyncio.run(journal.sending(lead))


def answer(journal: Journal, attempt: int, lead: Lead, outcome: Outcome, **how) -> None:
    """One answer recorded, and the group it joins committed."""

    async def record():
        journal.answered(attempt, lead, outcome, **how)
        await asyncio.sleep(0)

    asyncio.run(record())


def started(attempts=1) -> Outcome:
    return Outcome(
        RowStatus.STARTED, http_status=200, operators=("OP-1",), attempts=attempts,
        done_at="2026-12-01T10:00:00+00:00",
    )  # fmt: skip


def failed(code=ErrorCode.SERVER_ERROR, http_status=503) -> Outcome:
    return Outcome(
        RowStatus.FAILED, http_status=http_status, operators=("OP-1",), error_code=code,
        error_message="x", attempts=1, done_at="2026-12-01T10:00:01+00:00",
    )  # fmt: skip


def test_requests_and_answers_survive_and_come_back(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    attempt = send(journal, LEADS[0])
    answer(journal, attempt, LEADS[0], started(), may_have_acted=False, decides=True)
    attempt = send(journal, LEADS[1])
    answer(journal, attempt, LEADS[1], failed(), may_have_acted=True, decides=True)
    attempt = send(journal, LEADS[2])
    answer(
        journal,
        attempt,
        LEADS[2],
        failed(ErrorCode.BAD_REQUEST, 400),
        may_have_acted=False,
        decides=True,
    )
    send(journal, LEADS[3])  # in flight when the run stopped
    journal.close("SIGINT")

    again = open_journal(path)
    assert again.done() == {LEADS[0].phone: ("started", 7)}
    assert again.history(LEADS[1].phone).may_have_acted == {frozenset({"OP-1"})}  # a 503
    assert again.history(LEADS[2].phone).may_have_acted == set()  # a 400: the API did not act
    assert again.history(LEADS[3].phone).may_have_acted == {frozenset({"OP-1"})}  # no answer
    records = {r.phone: r for r in again.records()}
    assert records[LEADS[0].phone].status == "started"
    assert records[LEADS[0].phone].http_status == 200
    assert records[LEADS[0].phone].done_at == "2026-12-01T10:00:00+00:00"
    assert records[LEADS[0].phone].asked_operators == ("OP-1",)
    assert records[LEADS[1].phone].error_code == "server_error"
    assert records[LEADS[3].phone].status is None and records[LEADS[3].phone].attempts == 1
    again.close()


def test_the_ledger_is_plain_sqlite_readable_while_a_run_writes(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    attempt = send(journal, LEADS[0])
    reader = sqlite3.connect(path)  # what `sqlite3 r.csv.journal` sees, with the run still open
    try:
        ((phone, operators, answered),) = reader.execute(
            "SELECT phone, operators, answered_at FROM attempts"
        )
        assert (phone, json.loads(operators), answered) == (LEADS[0].phone, ["OP-1"], None)
        answer(journal, attempt, LEADS[0], started(), may_have_acted=False, decides=True)
        assert reader.execute("SELECT status, attempts FROM leads").fetchall() == [("started", 1)]
        assert reader.execute("SELECT count(*) FROM runs WHERE finished_at IS NULL").fetchone() == (
            1,
        )
    finally:
        reader.close()
        journal.close()


def test_a_done_lead_never_loses_its_outcome(tmp_path):
    journal = open_journal(tmp_path / "r.csv.journal")
    attempt = send(journal, LEADS[0])
    answer(journal, attempt, LEADS[0], started(), may_have_acted=False, decides=True)
    attempt = send(journal, LEADS[0])  # nothing sends a done lead again; if something did:
    answer(journal, attempt, LEADS[0], failed(), may_have_acted=True, decides=True)
    assert journal.done() == {LEADS[0].phone: ("started", 7)}
    journal.close()


def test_a_request_is_committed_before_sending_returns(tmp_path):
    """The moment ``sending`` returns, the record survives the process dying (kill -9)."""
    path = tmp_path / "r.csv.journal"
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, time; from batch_attend.journal import Journal;"
         "from batch_attend.leads import Lead;"
         f"j = Journal.open(pathlib.Path({str(path)!r}), target='t', input='x', fresh=False);"
         "import asyncio; asyncio.run(j.sending(Lead(0, 2, '5544999990000', ('OP-1',), '')));"
         "print('sent', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "sent"
        writer.kill()  # SIGKILL: no close, no checkpoint, no flush of anything
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        writer.stdout.close()
    again = open_journal(path, target="t")
    history = again.history("5544999990000")
    assert (history.attempts, history.unanswered) == (0, 1)  # counted once shown to arrive
    assert history.may_have_acted == {frozenset({"OP-1"})}
    again.close()


def test_the_engine_stops_loudly_when_the_journal_cannot_write(tmp_path):
    """A full disk: the run stops with the error, and no request went out without its record."""

    class Client:
        sent = 0

        async def start_attendance(self, lead):
            Client.sent += 1
            return Answer(http_status=200, body=b"true")

        def scrub(self, text):
            return text

    journal = open_journal(tmp_path / "r.csv.journal")
    pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
    journal._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
    engine = Engine(Client(), concurrency=2, policy=RetryPolicy(retries=0), journal=journal)
    leads = [Lead(i, i + 2, f"5544{i:09d}", ("OP-1",), "") for i in range(2000)]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        asyncio.run(asyncio.wait_for(engine.run(leads), 10))
    recorded = journal._db.execute("SELECT count(*) FROM attempts").fetchone()[0]
    assert 0 < Client.sent == recorded < len(leads)
    journal.close()


def test_a_ledger_of_another_account_is_refused(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path, target="sandbox")
    answer(
        journal, send(journal, LEADS[0]), LEADS[0], started(), may_have_acted=False, decides=True
    )
    journal.close()
    with pytest.raises(JournalError, match=r"started through sandbox, and this run sends to https"):
        open_journal(path)
    fresh = open_journal(path, fresh=True)
    assert fresh.done() == {}
    fresh.close()


def test_second_run_on_the_same_journal_is_refused_while_the_first_holds_it(tmp_path):
    path = tmp_path / "r.csv.journal"
    first = open_journal(path)
    with pytest.raises(JournalError, match="another batch-attend run"):
        open_journal(path)
    first.close()
    open_journal(path).close()


def test_lock_of_a_killed_process_does_not_stay_stuck(tmp_path):
    path = tmp_path / "r.csv.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, time; from batch_attend.journal import Journal;"
         f"j = Journal.open(pathlib.Path({str(path)!r}), target='t', input='x', fresh=False);"
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JournalError):
            open_journal(path, target="t")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    time.sleep(0.05)
    open_journal(path, target="t").close()


def test_a_file_that_is_not_a_journal_is_refused_and_never_replaced(tmp_path):
    path = tmp_path / "r.csv.journal"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"not a batch-attend journal"):
        open_journal(path)
    with pytest.raises(JournalError, match=r"not a batch-attend journal .*left as it is"):
        open_journal(path, fresh=True)
    assert path.read_bytes() == b"this is not a database" * 100


def test_fresh_keeps_the_journal_it_forgets(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    answer(
        journal, send(journal, LEADS[0]), LEADS[0], started(), may_have_acted=False, decides=True
    )
    journal.close()
    fresh = open_journal(path, fresh=True)
    assert fresh.done() == {}
    aside = fresh.set_aside
    fresh.close()
    assert aside.name.startswith("r.csv.journal.") and aside.name.endswith(".old")
    kept = Journal.open_readonly(aside)
    assert kept.done() == {LEADS[0].phone: ("started", 7)}
    kept.close()


def test_a_journal_of_the_first_version_is_refused_with_a_way_out(tmp_path):
    path = tmp_path / "r.csv.journal"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("INSERT INTO meta VALUES ('schema', '1'), ('input_sha256', 'ab12')")
    old.execute("CREATE TABLE rows (idx INTEGER PRIMARY KEY, phone TEXT)")
    old.commit()
    old.close()
    with pytest.raises(JournalError, match=r"older batch-attend.*--fresh"):
        open_journal(path)
    with pytest.raises(JournalError, match=r"older batch-attend"):
        Journal.open_readonly(path)


def test_read_only_use_never_creates_a_journal(tmp_path):
    assert Journal.open_readonly(tmp_path / "none.journal") is None
    assert list(tmp_path.iterdir()) == []


def test_fresh_twice_in_one_second_keeps_both_journals_it_forgets(runner, sandbox, tmp_path):
    source = write_csv(
        tmp_path / "leads.csv", [["Telefone", "Operadores"], [LEADS[0].phone, "OP-ANA"]]
    )
    out = tmp_path / "r.csv"
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    runs = [runner.invoke(cli, [str(source), "-o", str(out), "--fresh"], env=env) for _ in range(3)]
    assert [r.exit_code for r in runs] == [0, 0, 0], runs[-1].stderr
    kept = sorted(tmp_path.glob("r.csv.journal.*.old"))
    assert len(kept) == 2
    statuses = []
    for path in kept:
        with contextlib.closing(sqlite3.connect(path)) as db:
            statuses += [s for (s,) in db.execute("SELECT status FROM leads")]
    assert sorted(statuses) == ["already_in_service", "started"]


def other_programs_database(path):
    """Another program's SQLite file, with a ``leads`` table of its own."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE leads (id INTEGER PRIMARY KEY, name TEXT, phone TEXT)")
        db.executemany("INSERT INTO leads (name, phone) VALUES (?, ?)", [("Ana", "44 99999")] * 50)
        db.commit()


def damaged_ledger(runner, sandbox, tmp_path, path):
    """A ledger of this version with one of its pages overwritten (not cut short)."""
    rows = [["Telefone", "Operadores"], *[[f"5544999{i:06d}", "OP-ANA"] for i in range(300)]]
    source = write_csv(tmp_path / "first.csv", rows)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    done = runner.invoke(cli, [str(source), "-o", str(tmp_path / "first.results.csv"),
                               "--journal", str(path)], env=env)  # fmt: skip
    assert done.exit_code == 0, done.stderr
    with path.open("r+b") as fh:
        page = int.from_bytes(fh.read(18)[16:18], "big")
        fh.seek(3 * page)  # the header of the 4th page: a b-tree page no longer
        fh.write(b"\xff" * 200)


@pytest.mark.parametrize("kind", ["another program's", "damaged"])
def test_a_journal_that_is_not_ours_or_damaged_is_refused_untouched_with_a_summary(
    runner, sandbox, tmp_path, kind
):
    path = tmp_path / "their.db"
    if kind == "damaged":
        damaged_ledger(runner, sandbox, tmp_path, path)
    else:
        other_programs_database(path)
    before = path.read_bytes()
    source = write_csv(
        tmp_path / "leads.csv", [["Telefone", "Operadores"], [LEADS[0].phone, "OP-ANA"]]
    )
    summary = tmp_path / "s.json"
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    for extra in ([], ["--fresh"], ["--dry-run"]):
        result = runner.invoke(
            cli,
            [str(source), "-o", str(tmp_path / "r.csv"), "--journal", str(path),
             "--summary-json", str(summary), *extra],
            env=env,
        )  # fmt: skip
        assert result.exit_code == 2, result.stderr
        assert "not a batch-attend journal" in result.stderr and "unexpected" not in result.stderr
        assert json.loads(summary.read_text())["exit_code"] == 2
        assert path.read_bytes() == before
        wal = tmp_path / "their.db-wal"  # as any reader of a database in WAL mode leaves it
        assert not wal.exists() or not wal.stat().st_size
    checked = runner.invoke(cli, ["check", str(source), "--journal", str(path)], env=env)
    assert checked.exit_code == 2 and path.read_bytes() == before
