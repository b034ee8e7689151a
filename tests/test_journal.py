"""The journal: what it records, when it refuses, and the lock that keeps two runs apart."""

import asyncio
import sqlite3
import subprocess
import sys
import time

import pytest

from batch_attend.journal import Journal, JournalError
from batch_attend.leads import Lead
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus

OPTIONS = {"operators": [], "country_code": "55"}
LEADS = [Lead(i, i + 2, f"55449999900{i:02d}", ("OP-1",), None) for i in range(4)]


def open_journal(path, digest="abc", options=OPTIONS, fresh=False) -> Journal:
    return Journal.open(path, input_digest=digest, request_options=options, fresh=fresh)


def test_records_survive_and_come_back(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)

    async def a_run_that_dies():
        await journal.sending(LEADS[0], 1)
        journal.done(
            LEADS[0], Outcome(RowStatus.STARTED, http_status=200, operators=("OP-1",), attempts=1)
        )
        await journal.sending(LEADS[1], 1)
        journal.done(
            LEADS[1],
            Outcome(RowStatus.FAILED, http_status=503, error_code=ErrorCode.SERVER_ERROR,
                    error_message="x", attempts=4),
        )  # fmt: skip
        await journal.sending(LEADS[2], 1)  # in flight when the run died
        journal.done(
            LEADS[3],
            Outcome(RowStatus.FAILED, error_code=ErrorCode.TIMEOUT, error_message="t", attempts=2),
        )

    asyncio.run(a_run_that_dies())
    journal.close(complete=False)

    again = open_journal(path)
    prior = again.prior
    assert prior[0].outcome.status is RowStatus.STARTED and not prior[0].maybe_sent
    assert prior[1].outcome.error_code == "server_error" and prior[1].attempts == 4
    assert not prior[1].maybe_sent
    assert prior[2].outcome is None and prior[2].maybe_sent and prior[2].attempts == 1
    assert prior[3].maybe_sent  # a time-out may have reached the server
    again.close(complete=True)


def test_sending_is_committed_before_it_returns(tmp_path):
    """The moment ``sending`` returns, the record survives the process dying (kill -9)."""
    path = tmp_path / "r.csv.journal"
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import asyncio, pathlib, time; from batch_attend.journal import Journal;"
         "from batch_attend.leads import Lead;"
         f"j = Journal.open(pathlib.Path({str(path)!r}), input_digest='abc',"
         " request_options={}, fresh=False);"
         "asyncio.run(j.sending(Lead(0, 2, '5544999990000', ('OP-1',), None), 1));"
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
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT state, attempts FROM rows WHERE idx = 0").fetchall() == [
            ("sending", 1)
        ]
    finally:
        reader.close()


def full_disk(journal: Journal):
    """Make every commit of ``journal`` fail as on a full disk."""
    real = journal._db

    class FullDisk:
        def __getattr__(self, name):
            return getattr(real, name)

        def __enter__(self):
            return real.__enter__()

        def __exit__(self, *exc_info):
            return real.__exit__(*exc_info)

        def executemany(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

    journal._db = FullDisk()
    return real


def quiet_loop():
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # the flush's own report
    return loop


def test_a_journal_that_cannot_write_stops_the_requests_waiting_for_it(tmp_path):
    """A failed commit (a full disk, say) reaches every request waiting for it: none goes out."""
    journal = open_journal(tmp_path / "r.csv.journal")
    real = full_disk(journal)

    async def two_workers():
        both = asyncio.gather(
            journal.sending(LEADS[0], 1), journal.sending(LEADS[1], 1), return_exceptions=True
        )
        return await asyncio.wait_for(both, 5)  # waiting forever is the failure to catch

    loop = quiet_loop()
    try:
        results = loop.run_until_complete(two_workers())
    finally:
        loop.close()
    assert [type(r) for r in results] == [sqlite3.OperationalError] * 2
    journal._db = real
    journal.close(complete=False)


def test_the_engine_stops_loudly_when_the_journal_cannot_write(tmp_path):
    from batch_attend.api import Answer
    from batch_attend.engine import Engine
    from batch_attend.retrying import RetryPolicy

    class Client:
        sent = 0

        async def start_attendance(self, lead):
            Client.sent += 1
            return Answer(http_status=200, body=b"true")

        def scrub(self, text):
            return text

    journal = open_journal(tmp_path / "r.csv.journal")
    real = full_disk(journal)
    engine = Engine(Client(), concurrency=2, policy=RetryPolicy(retries=0), journal=journal)
    loop = quiet_loop()
    try:
        with pytest.raises(sqlite3.OperationalError):
            loop.run_until_complete(asyncio.wait_for(engine.run(LEADS), 5))
    finally:
        loop.close()
    assert Client.sent == 0
    journal._db = real
    journal.close(complete=False)


def test_unfinished_journal_for_another_input_is_refused(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    asyncio.run(journal.sending(LEADS[0], 1))
    journal.close(complete=False)
    with pytest.raises(JournalError, match=r"different input file.*--fresh"):
        open_journal(path, digest="other")
    with pytest.raises(JournalError, match=r"different options \(country_code\)"):
        open_journal(path, options={**OPTIONS, "country_code": "351"})
    fresh = open_journal(path, digest="other", fresh=True)
    assert fresh.prior == {}
    fresh.close(complete=True)


def test_finished_journal_for_another_input_starts_over(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)

    async def finish():
        journal.done(LEADS[0], Outcome(RowStatus.STARTED, attempts=1))

    asyncio.run(finish())
    journal.close(complete=True)
    again = open_journal(path, digest="tonight's file")
    assert again.prior == {}
    assert "different input file" in again.restarted_reason
    again.close(complete=True)


def test_second_run_on_the_same_journal_is_refused_while_the_first_holds_it(tmp_path):
    path = tmp_path / "r.csv.journal"
    first = open_journal(path)
    with pytest.raises(JournalError, match="another batch-attend run"):
        open_journal(path)
    first.close(complete=True)
    open_journal(path).close(complete=True)


def test_lock_of_a_killed_process_does_not_stay_stuck(tmp_path):
    path = tmp_path / "r.csv.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from batch_attend.journal import Journal;"
         f"Journal.open(__import__('pathlib').Path({str(path)!r}), input_digest='abc',"
         " request_options={}, fresh=False); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JournalError):
            open_journal(path, options={})
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    open_journal(path, options={}).close(complete=True)


def test_damaged_journal_is_refused_then_replaced_with_fresh(tmp_path):
    path = tmp_path / "r.csv.journal"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalError, match=r"not a batch-attend journal.*--fresh"):
        open_journal(path)
    open_journal(path, fresh=True).close(complete=True)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_write_ahead_log_stays_bounded_over_a_long_run(tmp_path):
    """Checkpoints are rare (each one stalls the run on an fsync) but do happen: the WAL file
    never grows past about WAL_CHECKPOINT_PAGES pages, and every record survives."""
    from batch_attend.journal import WAL_CHECKPOINT_PAGES

    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    wal = tmp_path / "r.csv.journal-wal"
    page = journal._db.execute("PRAGMA page_size").fetchone()[0]
    largest = 0
    rows = 2 * WAL_CHECKPOINT_PAGES  # a commit a row, a page or more each: past the limit

    async def a_long_run():
        nonlocal largest
        for i in range(rows):
            lead = Lead(i, i + 2, f"5544{i:09d}", ("OP-1",), None)
            await journal.sending(lead, 1)  # commits the previous row's outcome with it
            journal.done(lead, Outcome(RowStatus.STARTED, http_status=200, attempts=1))
            largest = max(largest, wal.stat().st_size)

    asyncio.run(a_long_run())
    journal.close(complete=True)
    assert WAL_CHECKPOINT_PAGES * page / 2 < largest < (WAL_CHECKPOINT_PAGES + 100) * page
    again = open_journal(path)
    assert len(again.prior) == rows
    assert all(row.outcome.status is RowStatus.STARTED for row in again.prior.values())
    again.close(complete=True)
