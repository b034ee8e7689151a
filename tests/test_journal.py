"""The journal: what it records, when it refuses, and the lock that keeps two runs apart."""

import asyncio
import errno
import itertools
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from batch_attend.journal import Journal, JournalError, log_path, read_log
from batch_attend.leads import Lead
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus

OPTIONS = {"operators": [], "country_code": "55"}
LEADS = [Lead(i, i + 2, f"55449999900{i:02d}", ("OP-1",), None) for i in range(4)]


def open_journal(path, digest="abc", options=OPTIONS, fresh=False) -> Journal:
    return Journal.open(path, input_digest=digest, request_options=options, fresh=fresh)


def die(journal: Journal) -> None:
    """What the process dying does to a journal: its files are closed, nothing is folded."""
    os.close(journal._log_fd)
    journal._db.close()
    os.close(journal._lock_fd)


def read_log_list(path) -> list:
    """The chunks of a journal's log, as the fold reads them."""
    return list(read_log(log_path(path)))


def started(attempts=1) -> Outcome:
    return Outcome(RowStatus.STARTED, http_status=200, operators=("OP-1",), attempts=attempts)


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
    assert prior[0].outcome == Outcome(  # the usual outcome, kept in short, comes back whole
        RowStatus.STARTED, http_status=200, operators=("OP-1",), attempts=1
    )
    assert not prior[0].maybe_sent
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
    assert log_path(path).stat().st_size > 0  # the record is in the log, not yet folded
    again = open_journal(path, options={})
    assert again.prior[0].outcome is None and again.prior[0].attempts == 1
    assert again.prior[0].maybe_sent
    again.close(complete=False)


def full_disk(journal: Journal) -> int:
    """Make every commit of ``journal`` fail as on a full disk (the log's writes go to
    /dev/full); returns the real log's descriptor."""
    real = journal._log_fd
    journal._log_fd = os.open("/dev/full", os.O_WRONLY)
    return real


def mend_disk(journal: Journal, real: int) -> None:
    os.close(journal._log_fd)
    journal._log_fd = real
    journal._failure = None


def is_full_disk(exc) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


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
    assert len(results) == 2 and all(map(is_full_disk, results))
    mend_disk(journal, real)
    journal.close(complete=False)
    assert open_journal(tmp_path / "r.csv.journal").prior == {}  # nothing was recorded


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
        with pytest.raises(OSError) as raised:
            loop.run_until_complete(asyncio.wait_for(engine.run(LEADS), 5))
    finally:
        loop.close()
    assert is_full_disk(raised.value)
    assert Client.sent == 0
    mend_disk(journal, real)
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


def test_a_run_writes_its_log_and_folds_it_into_the_database_when_it_ends(tmp_path, monkeypatch):
    """Between two folds, the database is not written (its WAL does not grow); at close every
    record is folded in, the log is removed and the WAL is emptied."""
    monkeypatch.setattr("batch_attend.journal.FOLD_EVERY", 3600.0)  # no fold while it sends
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    wal = tmp_path / "r.csv.journal-wal"
    wal_at_start = wal.stat().st_size
    rows = 5_000

    async def a_long_run():
        for i in range(rows):
            lead = Lead(i, i + 2, f"5544{i:09d}", ("OP-1",), None)
            await journal.sending(lead, 1)  # commits the previous row's outcome with it
            journal.done(lead, started())

    asyncio.run(a_long_run())
    assert wal.stat().st_size == wal_at_start
    assert log_path(path).stat().st_size > rows * 50
    journal.close(complete=True)
    assert not log_path(path).exists()
    assert not wal.exists() or wal.stat().st_size == 0
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT state, count(*) FROM rows GROUP BY state").fetchall() == [
            ("done", rows)
        ]
    finally:
        db.close()
    again = open_journal(path)
    assert len(again.prior) == rows
    assert all(row.outcome.status is RowStatus.STARTED for row in again.prior.values())
    again.close(complete=True)


def test_while_a_run_sends_the_database_follows_its_log(tmp_path, monkeypatch):
    """Every FOLD_EVERY seconds the log is folded in: the database can be read during a run,
    and at a real API's pace the fold is done while the run waits for answers."""
    monkeypatch.setattr("batch_attend.journal.FOLD_EVERY", 0.0)  # at every commit
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    seen = []

    async def rows_while_someone_reads():
        for lead in LEADS:
            await journal.sending(lead, 1)
            journal.done(lead, started())
            await asyncio.sleep(0)  # the done record's commit, and its fold
            reader = sqlite3.connect(path)
            try:
                seen.append(
                    reader.execute("SELECT count(*) FROM rows WHERE state = 'done'").fetchone()[0]
                )
            finally:
                reader.close()

    asyncio.run(rows_while_someone_reads())
    assert seen == [1, 2, 3, 4]
    assert log_path(path).exists()  # removed only at close, once checkpointed
    journal.close(complete=True)
    assert not log_path(path).exists()
    again = open_journal(path)
    assert [row.outcome.status for row in again.prior.values()] == [RowStatus.STARTED] * 4
    again.close(complete=True)


def test_a_long_run_empties_its_log_once_folded_and_on_disk(tmp_path, monkeypatch):
    monkeypatch.setattr("batch_attend.journal.FOLD_EVERY", 0.0)
    monkeypatch.setattr("batch_attend.journal.LOG_ROTATE_BYTES", 2_000)
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    sizes = []
    rows = 200

    async def a_long_run():
        for i in range(rows):
            lead = Lead(i, i + 2, f"5544{i:09d}", ("OP-1",), None)
            await journal.sending(lead, 1)
            journal.done(lead, started())
            sizes.append(log_path(path).stat().st_size)

    asyncio.run(a_long_run())
    assert max(sizes) < 2_500  # emptied as soon as it passed the limit...
    assert sum(after < before for before, after in itertools.pairwise(sizes)) >= 5  # ...each time
    die(journal)  # killed: whatever the log no longer holds must be in the database
    again = open_journal(path)
    assert len(again.prior) == rows
    assert all(again.prior[i].outcome.status is RowStatus.STARTED for i in range(rows - 1))
    again.close(complete=True)


def test_the_log_of_a_run_that_died_is_folded_by_the_next_one(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)

    async def some_rows():
        await journal.sending(LEADS[0], 1)
        journal.done(LEADS[0], started())
        await journal.sending(LEADS[1], 2)

    asyncio.run(some_rows())
    die(journal)
    with pytest.raises(JournalError, match="unfinished run"):  # the log's rows count
        open_journal(path, digest="another file")
    assert not log_path(path).exists()  # folded, even by the run that was refused
    again = open_journal(path)
    assert again.prior[0].outcome == started()
    assert again.prior[1].outcome is None and again.prior[1].attempts == 2
    again.close(complete=True)


def test_the_fold_stops_at_a_damaged_or_torn_chunk(tmp_path):
    """A power cut can tear the last chunk or leave garbage where one was: the length and CRC
    find it, and the fold keeps what came before (as SQLite stops at a bad WAL frame)."""
    path = tmp_path / "r.csv.journal"

    def a_run_that_dies() -> list[int]:
        """Four rows, a commit for each record; returns where each chunk ends in the log."""
        for suffix in ("", "-wal", "-shm", "-log"):
            (tmp_path / f"r.csv.journal{suffix}").unlink(missing_ok=True)
        journal = open_journal(path)
        ends = []

        async def one_record_a_commit():
            for lead in LEADS:
                await journal.sending(lead, 1)
                ends.append(log_path(path).stat().st_size)
                journal.done(lead, started())
                journal.flush()
                ends.append(log_path(path).stat().st_size)

        asyncio.run(one_record_a_commit())
        die(journal)
        return ends

    def outcomes():
        again = open_journal(path)
        try:
            assert log_path(path).stat().st_size == 0  # folded; this run's log is empty
            return [
                (row.outcome.status if row.outcome else "sending") for row in again.prior.values()
            ]
        finally:
            again.close(complete=True)

    ends = a_run_that_dies()
    assert len(read_log_list(path)) == 8
    assert outcomes() == [RowStatus.STARTED] * 4

    ends = a_run_that_dies()
    with open(log_path(path), "r+b") as log:  # row 2's outcome: one byte changed
        log.seek(ends[4] + 20)
        byte = log.read(1)
        log.seek(ends[4] + 20)
        log.write(bytes([byte[0] ^ 0xFF]))
    assert outcomes() == [RowStatus.STARTED, RowStatus.STARTED, "sending"]

    ends = a_run_that_dies()
    os.truncate(log_path(path), ends[-1] - 3)  # row 3's outcome: torn
    assert outcomes() == [RowStatus.STARTED] * 3 + ["sending"]

    ends = a_run_that_dies()
    os.truncate(log_path(path), ends[1] + 5)  # row 1's "sending": a torn chunk header
    assert outcomes() == [RowStatus.STARTED]


def test_a_log_naming_a_class_is_refused_not_run(tmp_path):
    """The log is read by an unpickler that refuses globals: a planted chunk cannot run code."""
    import pickle
    import struct
    import zlib

    path = tmp_path / "r.csv.journal"
    marker = tmp_path / "ran"

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    open_journal(path).close(complete=False)
    payload = pickle.dumps([[], [Planted()]], 5)
    log_path(path).write_bytes(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    assert read_log_list(path) == []
    again = open_journal(path)
    assert again.prior == {}
    again.close(complete=True)
    assert not marker.exists()


def test_after_a_full_disk_what_was_written_is_still_folded(tmp_path):
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    real = None

    async def a_row_then_a_full_disk():
        nonlocal real
        await journal.sending(LEADS[0], 1)
        real = full_disk(journal)
        journal.done(LEADS[0], started())
        await journal.sending(LEADS[1], 1)

    loop = quiet_loop()
    try:
        with pytest.raises(OSError):
            loop.run_until_complete(a_row_then_a_full_disk())
    finally:
        loop.close()
    os.close(journal._log_fd)
    journal._log_fd = real
    journal.close(complete=False)
    again = open_journal(path)
    assert set(again.prior) == {0} and again.prior[0].outcome is None
    again.close(complete=True)


def test_a_log_kept_by_a_busy_checkpoint_is_folded_again_in_order(tmp_path, monkeypatch):
    """A reader holding the journal open can keep a checkpoint from finishing: the log then
    stays (its records are not on disk yet), the next run appends to it, and the next fold
    applies both runs' records in order, the newer last."""
    import batch_attend.journal as journal_module

    connect = journal_module._connect

    def impatient_connect(path):
        db = connect(path)
        db.execute("PRAGMA busy_timeout=50")
        return db

    monkeypatch.setattr(journal_module, "_connect", impatient_connect)
    path = tmp_path / "r.csv.journal"
    journal = open_journal(path)
    failed = Outcome(RowStatus.FAILED, error_code=ErrorCode.SERVER_ERROR, attempts=1)

    async def first_run():
        await journal.sending(LEADS[0], 1)
        journal.done(LEADS[0], started())
        await journal.sending(LEADS[1], 1)
        journal.done(LEADS[1], failed)

    asyncio.run(first_run())
    reader = sqlite3.connect(path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM rows").fetchone()  # holds a snapshot
        journal.close(complete=False)
        assert log_path(path).stat().st_size > 0  # kept: the checkpoint could not finish
        with open(log_path(path), "ab") as log:
            log.write(b"\x07torn")  # and a torn chunk at its end (a power cut)
        second = open_journal(path)
        assert second.prior[1].outcome.status is RowStatus.FAILED
        assert log_path(path).stat().st_size > 0  # kept again

        async def second_run_dies_sending_row_1_again():
            await second.sending(LEADS[1], 2)

        asyncio.run(second_run_dies_sending_row_1_again())
        die(second)
    finally:
        reader.close()
    assert len(read_log_list(path)) == 4  # both runs' commits, in one log, the torn one gone
    third = open_journal(path)
    assert third.prior[0].outcome.status is RowStatus.STARTED
    assert third.prior[1].outcome is None and third.prior[1].attempts == 2  # the newer record
    third.close(complete=True)
    assert not log_path(path).exists()
