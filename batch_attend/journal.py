"""A durable record of what was sent and answered, so a rerun resumes instead of starting over.

The journal is an SQLite database beside the results (``results.csv.journal``). Before a row's
first request in a run, the row is recorded as *sending*, and the request waits until that is
committed; when its outcome is known, the row is recorded as *done*. Records made in the same turn
of the event loop are committed together (group commit), so a run killed at any moment
(``kill -9`` included) leaves a journal that tells which rows finished and which may have reached
the server without an answer.

While a run sends, a group commit is one chunk appended, with one ``write``, to the *log* beside
the database (``results.csv.journal-log``): its length and CRC32 (two little-endian 32-bit
numbers), then a pickle (protocol 5) of ``[sending records, done records]``, read back by an
unpickler that refuses every global, so a planted file cannot run code. The log is folded into
the database every ``FOLD_EVERY`` seconds while the run sends (one transaction for many group
commits), then when the run ends, or after a crash when the next run opens the journal; once
the database is checkpointed, the log is removed. An SQLite transaction per group commit cost up
to a fifth of a zero-latency run's time on a 2-core machine; a chunk costs a few microseconds
(JSON, tried first, took seven times as long to write and five times to read back).

A written chunk survives the process dying, as an SQLite commit in WAL mode with
``synchronous=NORMAL`` does; only a power cut can lose or tear the last chunks, and then the fold
stops at the first one whose length or CRC is wrong (as SQLite stops at a bad WAL frame) and
those rows are simply sent again (the API answers "already in service" rather than starting
twice).

The journal also locks the run: a second batch-attend writing the same results refuses to start.
The lock is an ``flock`` on the journal file, which the kernel drops when a process dies, so a
crashed run never leaves it stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import io
import itertools
import json
import operator
import os
import pickle
import sqlite3
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from batch_attend import __version__
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.leads import Lead
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus

SCHEMA_VERSION = "1"
WAL_CHECKPOINT_PAGES = 10_000  # of 4 KiB: the WAL file stays under about 40 MiB
LOG_SUFFIX = "-log"
FOLD_CHUNKS = 1_000  # log chunks (group commits) folded into the database per transaction
#: While a run sends, the log is folded into the database this often (seconds): the database
#: is never further behind than that, and at a real API's pace the fold happens while the run
#: waits for answers instead of at its end.
FOLD_EVERY = 1.0
LOG_ROTATE_BYTES = 64 << 20  # a folded log this long is emptied (about 650,000 rows)
_CHUNK_HEADER = struct.Struct("<II")  # payload length, CRC32 of the payload
#: The records of the log, told apart by their length (the columns of ``rows``, in order):
_SENDING_SQL = (  # idx, row, phone, attempts, updated
    "INSERT OR REPLACE INTO rows (idx, row, phone, state, attempts, updated) "
    "VALUES (?, ?, ?, 'sending', ?, ?)"
)
_STARTED_SQL = (  # idx, row, phone, operators, attempts, updated: the usual outcome, in short
    "INSERT OR REPLACE INTO rows (idx, row, phone, state, status, attendance_number, operators, "
    "http_status, error_code, error_message, attempts, updated) "
    "VALUES (?, ?, ?, 'done', 'started', '', ?, 200, '', '', ?, ?)"
)
_DONE_SQL = (  # idx, row, phone, status, ..., attempts, updated: any outcome
    "INSERT OR REPLACE INTO rows (idx, row, phone, state, status, attendance_number, operators, "
    "http_status, error_code, error_message, attempts, updated) "
    "VALUES (?, ?, ?, 'done', ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_BY_LENGTH = {5: _SENDING_SQL, 6: _STARTED_SQL, 11: _DONE_SQL}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    idx INTEGER PRIMARY KEY,
    row INTEGER NOT NULL,
    phone TEXT NOT NULL,
    state TEXT NOT NULL,             -- 'sending' or 'done'
    status TEXT,
    attendance_number TEXT,
    operators TEXT,
    http_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL,
    updated REAL NOT NULL
);
"""


class JournalError(BatchAttendError):
    """The journal cannot be used for this run (another run holds it, or it belongs to another)."""


@dataclass(frozen=True, slots=True)
class PriorRow:
    """What an earlier run recorded for one row."""

    outcome: Outcome | None  # None while the row was still being sent
    attempts: int

    @property
    def maybe_sent(self) -> bool:
        """A request may have reached the server without its answer reaching us: the row was
        cut off mid-request, or its last answer was a time-out or a dropped connection."""
        return self.outcome is None or self.outcome.error_code in (
            ErrorCode.TIMEOUT,
            ErrorCode.CONNECTION_LOST,
        )


def file_digest(path: Path) -> str:
    """SHA-256 of the input file's content (the same file renamed or moved still matches)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_journal_path(output: str) -> Path:
    return Path(output + ".journal")


class Journal:
    """Open with :meth:`open`; record with :meth:`sending` and :meth:`done`; end with :meth:`close`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self.log_path = log_path(path)
        self._db = connection
        self._lock_fd = lock_fd
        self._log_fd: int | None = None
        self._log_size = 0  # bytes of whole chunks in the log
        self._folded_to = 0  # bytes of the log already folded into the database
        self._unfolded: list[tuple[list, list]] = []  # the records of the log past _folded_to
        self._next_fold = 0.0  # time.monotonic() of the next fold while the run sends
        self.prior: dict[int, PriorRow] = {}
        self.restarted_reason = ""
        self._pending_sending: list[tuple] = []
        self._pending_done: list[tuple] = []
        self._flushes = 0  # group commits so far
        self._failure: Exception | None = None  # why the journal cannot be written any more
        self._flush_scheduled = False

    @classmethod
    def open(cls, path: Path, *, input_digest: str, request_options: dict, fresh: bool) -> Journal:
        """Open (or create) the journal, lock it, and load what an earlier run recorded.

        A journal of an unfinished run for another input file or other request options is
        refused; one of a finished run is simply started over.
        """
        lock_fd = _lock(path)
        try:
            journal = cls._open_locked(path, lock_fd, input_digest, request_options, fresh)
        except BaseException:
            os.close(lock_fd)
            raise
        return journal

    @classmethod
    def _open_locked(cls, path, lock_fd, input_digest, request_options, fresh) -> Journal:
        options_json = json.dumps(request_options, sort_keys=True)
        if fresh:  # start from an empty file, even if the old one is damaged
            os.truncate(path, 0)
            for suffix in ("-wal", "-shm", LOG_SUFFIX):
                Path(str(path) + suffix).unlink(missing_ok=True)
        db = _connect(path)
        journal = cls(path, db, lock_fd)
        try:
            if journal.log_path.exists():  # what a run that died left in its log
                journal._fold_log()
                journal._settle()
                if journal.log_path.exists():
                    # Kept (see _settle): cut off a torn tail, if any, or this run's chunks
                    # would come after it, where no fold reaches.
                    os.truncate(journal.log_path, journal._folded_to)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            has_rows = db.execute("SELECT 1 FROM rows LIMIT 1").fetchone() is not None
            if meta and has_rows and not fresh:
                if meta.get("schema") != SCHEMA_VERSION:
                    mismatch = _("an incompatible version of batch-attend")
                elif meta.get("input_sha256") != input_digest:
                    mismatch = _("a different input file")
                elif meta.get("request_options") != options_json:
                    changed = _changed_options(json.loads(meta["request_options"]), request_options)
                    mismatch = _("different options ({changed})").format(changed=changed)
                else:
                    mismatch = ""
                if mismatch and meta.get("complete") != "1":
                    raise JournalError(
                        _(
                            "{path}: this journal belongs to an unfinished run made with {mismatch}. Run the original command again to finish it, or add --fresh to start over (rows it started would then be reported as already in service)."
                        ).format(path=path, mismatch=mismatch)
                    )
                if mismatch:
                    journal.restarted_reason = _(
                        "the previous run (finished) used {mismatch}"
                    ).format(mismatch=mismatch)
                    fresh = True
            if fresh or not has_rows:
                journal.log_path.unlink(missing_ok=True)  # records of the run before, if any
                with db:
                    db.execute("DELETE FROM rows")
                    db.execute("DELETE FROM meta")
            with db:
                db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("schema", SCHEMA_VERSION),
                        ("input_sha256", input_digest),
                        ("request_options", options_json),
                        ("version", __version__),
                        ("complete", "0"),
                    ],
                )
            journal.prior = journal._load()
            # Appended to, not emptied: a log still there holds records already folded in but
            # not yet checkpointed (see _settle); the next fold applies them again, in order.
            journal._log_fd = os.open(
                journal.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
            )
            journal._log_size = journal._folded_to = os.fstat(journal._log_fd).st_size
            journal._next_fold = time.monotonic() + FOLD_EVERY
        except BaseException:
            db.close()
            raise
        return journal

    def _load(self) -> dict[int, PriorRow]:
        prior = {}
        for (
            idx,
            state,
            status,
            number,
            operators,
            http_status,
            code,
            message,
            attempts,
        ) in self._db.execute(
            "SELECT idx, state, status, attendance_number, operators, http_status, "
            "error_code, error_message, attempts FROM rows"
        ):
            outcome = None
            if state == "done":
                outcome = Outcome(
                    RowStatus(status),
                    attendance_number=number or "",
                    operators=tuple(json.loads(operators or "[]")),
                    http_status=http_status,
                    error_code=code or "",
                    error_message=message or "",
                    attempts=attempts,
                )
            prior[idx] = PriorRow(outcome=outcome, attempts=attempts)
        return prior

    async def sending(self, lead: Lead, attempts: int) -> None:
        """Record that the row is going out; returns once that is committed, so the request
        is never sent before the journal knows about it.

        ``attempts`` already counts that request, so a run killed while it is in flight still
        accounts for it."""
        if self._failure is not None:
            raise self._failure
        self._pending_sending.append((lead.index, lead.row, lead.phone, attempts, time.time()))
        batch = self._flushes  # this record goes out with the next group commit
        self._schedule()
        # That commit is already scheduled, and the loop runs callbacks in order: after one
        # yield it has usually run (waiting on a future would cost a second turn of the loop).
        await asyncio.sleep(0)
        while self._flushes <= batch:
            await asyncio.sleep(0)
        if self._failure is not None:
            raise self._failure

    def done(self, lead: Lead, outcome: Outcome) -> None:
        """Record the row's outcome; committed within the same turn of the event loop (before
        this worker's next request, which waits for its own record)."""
        self._pending_done.append(_done_record(lead, outcome))
        self._schedule()

    def _schedule(self) -> None:
        """Group commit: everything recorded in one turn of the loop is committed together."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Commit what is pending (one chunk of the log); the requests waiting for it then go
        out."""
        self._flush_scheduled = False
        sending, done = self._pending_sending, self._pending_done
        self._pending_sending, self._pending_done = [], []
        try:
            if self._failure is not None:
                raise self._failure
            if sending or done:
                payload = pickle.dumps([sending, done], 5)
                self._append(_CHUNK_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
                self._unfolded.append((sending, done))
                if time.monotonic() >= self._next_fold:
                    self._fold_unfolded()
                    self._next_fold = time.monotonic() + FOLD_EVERY
                    if self._folded_to >= LOG_ROTATE_BYTES:
                        self._rotate()
        except Exception as exc:  # a full disk, say: the requests waiting for it must not go out
            self._failure = exc
            raise
        finally:
            self._flushes += 1

    def _append(self, chunk: bytes) -> None:
        """Write one whole chunk, or leave the log as it was."""
        try:
            written = os.write(self._log_fd, chunk)
            while written < len(chunk):  # rare on a local disk, but write() may do part of it
                written += os.write(self._log_fd, memoryview(chunk)[written:])
        except OSError:
            # A torn chunk would hide every later one from the fold: cut it off.
            with contextlib.suppress(OSError):
                os.ftruncate(self._log_fd, self._log_size)
            raise
        self._log_size += len(chunk)

    def _fold_log(self) -> None:
        """Copy the records of a log left by a run that died into the database (the log is
        removed by :meth:`_settle`, once they are on disk).

        The fold stops at a chunk cut short or damaged (by a power cut, say). Folding the same
        records twice gives the same database, so a fold cut short is simply done again."""
        with open(self.log_path, "rb") as log:
            chunks = _chunks(log)
            for batch in iter(lambda: list(itertools.islice(chunks, FOLD_CHUNKS)), []):
                self._fold((sending, done) for sending, done, _end in batch)
                self._folded_to = batch[-1][2]

    def _fold_unfolded(self) -> None:
        """Copy this run's records written to the log since the last fold into the database
        (from memory: reading them back from the log would cost as much again)."""
        if self._unfolded:
            self._fold(self._unfolded)
            self._unfolded = []
            self._folded_to = self._log_size

    def _fold(self, chunks: Iterable[tuple[list, list]]) -> None:
        """One transaction; of the records of a row, only the last is written."""
        latest: dict[int, tuple] = {}
        for sending, done in chunks:  # a row is in a chunk once at most
            latest.update(zip(map(_first, sending), sending, strict=True))
            latest.update(zip(map(_first, done), done, strict=True))
        by_length: dict[int, list[tuple]] = {}
        for record in latest.values():
            by_length.setdefault(len(record), []).append(record)
        with self._db:
            for length, records in by_length.items():
                self._db.executemany(_SQL_BY_LENGTH[length], records)

    def _checkpoint(self) -> bool:
        """Copy the WAL into the database, with an fsync of each; False when a reader kept it
        from finishing (what was folded may then not be on disk yet)."""
        busy, _wal_pages, _copied = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    def _settle(self) -> None:
        """Checkpoint, and only then remove the log; if the checkpoint could not finish, the
        log stays, to be folded again by the next run."""
        if self._checkpoint():
            self.log_path.unlink(missing_ok=True)

    def _rotate(self) -> None:
        """Empty a long run's log once all of it is folded and on disk: it stays under about
        ``LOG_ROTATE_BYTES`` (a checkpoint stalls the run on fsyncs, so not more often)."""
        if self._folded_to == self._log_size and self._checkpoint():
            os.ftruncate(self._log_fd, 0)
            self._log_size = self._folded_to = 0

    def close(self, complete: bool) -> None:
        """Fold the log in, mark whether anything is left to send, checkpoint, and release the
        lock. After a failed write (a full disk) what the log holds is still folded in."""
        try:
            try:
                if self._failure is None and (self._pending_sending or self._pending_done):
                    self.flush()
            finally:
                if self._log_fd is not None:
                    os.close(self._log_fd)
                    self._log_fd = None
                self._fold_unfolded()
            with self._db:
                self._db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'complete'", ("1" if complete else "0",)
                )
            self._settle()
            self._db.close()
        finally:
            os.close(self._lock_fd)


def _done_record(lead: Lead, outcome: Outcome) -> tuple:
    """The log's record of an outcome: in short for the usual one (started, HTTP 200)."""
    if (
        outcome.status is RowStatus.STARTED
        and outcome.http_status == 200
        and not (outcome.attendance_number or outcome.error_code or outcome.error_message)
    ):
        return (
            lead.index,
            lead.row,
            lead.phone,
            _operators_json(outcome.operators),
            outcome.attempts,
            time.time(),
        )
    return (
        lead.index,
        lead.row,
        lead.phone,
        str(outcome.status),
        outcome.attendance_number,
        _operators_json(outcome.operators),
        outcome.http_status,
        str(outcome.error_code),
        outcome.error_message,
        outcome.attempts,
        time.time(),
    )


def log_path(path: Path) -> Path:
    """Where a journal's run in progress appends its records."""
    return Path(str(path) + LOG_SUFFIX)


_first = operator.itemgetter(0)  # a record's row index


def read_log(path: Path) -> Iterator[tuple[list, list]]:
    """The sending and done records of each whole, undamaged chunk of a journal's log, up to the
    first other (records are tuples of ``rows`` columns; see ``_SQL_BY_LENGTH``)."""
    with open(path, "rb") as log:
        for sending, done, _end in _chunks(log):
            yield sending, done


def _chunks(log: io.BufferedReader) -> Iterator[tuple[list, list, int]]:
    """:func:`read_log` from the file's position on, with the offset where each chunk ends."""
    end = log.tell()
    while header := log.read(_CHUNK_HEADER.size):
        if len(header) < _CHUNK_HEADER.size:
            return
        size, crc = _CHUNK_HEADER.unpack(header)
        payload = log.read(size)
        if len(payload) < size or zlib.crc32(payload) != crc:
            return
        try:
            sending, done = _RecordsUnpickler(io.BytesIO(payload)).load()
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError):
            return  # the CRC matched by chance
        end += _CHUNK_HEADER.size + size
        yield sending, done, end


class _RecordsUnpickler(pickle.Unpickler):
    """Records are tuples of numbers, strings and None: anything naming a class or function
    (which could run code) is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"a journal log names {module}.{name}")


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalError(
            _(
                "{path}: another batch-attend run is writing these results right now. Wait for it to finish, or choose another -o."
            ).format(path=path)
        ) from None
    return fd


def _connect(path: Path) -> sqlite3.Connection:
    db = None
    try:
        db = sqlite3.connect(path, isolation_level="DEFERRED", check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Checkpoint (copy the WAL back into the database, with an fsync) every 40 MiB of WAL
        # rather than every 4 while a long run's log is folded in.
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        db.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        if db is not None:
            db.close()
        raise JournalError(
            _("{path}: not a batch-attend journal ({exc}). Move it away or add --fresh.").format(
                path=path, exc=exc
            )
        ) from exc
    return db


def _changed_options(before: dict, now: dict) -> str:
    names = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    return ", ".join(names) or "unknown"


@functools.lru_cache(maxsize=4096)
def _operators_json(operators: tuple[str, ...]) -> str:
    """How the journal stores an operator list (cached: a run repeats a few)."""
    return json.dumps(list(operators))
