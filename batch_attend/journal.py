"""The ledger: what was asked of the API for each lead, and every answer, in plain SQLite.

The journal beside the results (``results.csv.journal``) is an SQLite database in WAL mode that
anyone can open with the ``sqlite3`` shell, during a run or after a crash:

* ``leads``: one row per lead, keyed by its normalized phone (not by a position in a file, so
  an edited, re-sorted or renamed sheet finds its leads again): how many requests it cost and,
  once an answer decided it, the outcome (``status`` is NULL while it is being sent); a lead
  carried over from a results file given as input is taken in with the outcome that file
  shows (``attempt`` NULL);
* ``attempts``: every request, with the operators and department it carried, when it went out,
  and its answer (``answered_at`` NULL: the run stopped before an answer came), and whether the
  API may have acted on it (``may_have_acted``);
* ``runs``: when each run started and ended, its input, and what stopped it early;
* ``whatsapp``: what PlugChat said of each phone asked with ``--verify-whatsapp``;
* ``meta``: the schema version, and where the requests go (``target``): a ledger records the
  starts of one account, so a run against another base URL is refused.

Each request is committed before it goes out, and each answer with the next group: what one
turn of the event loop records is committed in one transaction, and a worker's next request
waits for that commit, which also holds its last answer. So a run killed at any moment
(``kill -9`` included) leaves a ledger that tells which leads are done and which requests may
have reached the server without their answer reaching us: at most one lead per worker is sent
again, and its answer then says whose attendance it is. With ``synchronous=NORMAL`` a commit survives the process dying; a power cut may lose the
last ones, and those requests are then sent again in the same way.

A lead once ``started`` or ``already_in_service`` is never sent again and never loses that
outcome: the statements below refuse to overwrite it. ``--fresh`` moves the journal aside
(``….journal.<time>.old``, under a name no file has) rather than deleting it. A file that is not
a ledger, or a damaged one, is refused before anything is written to it.

The journal also locks the run: a second batch-attend writing the same results refuses to start.
The lock (``results.csv.journal.lock``, through the filelock library: ``flock`` on POSIX,
``LockFileEx`` on Windows) is dropped by the operating system when a process dies, so a crashed
run never leaves it stuck.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from batch_attend import __version__
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.leads import Lead
from batch_attend.outcomes import DONE_STATUSES, Outcome

SCHEMA_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    input TEXT NOT NULL,
    version TEXT NOT NULL,
    stopped_by TEXT                    -- why sending stopped early: SIGINT, SIGTERM, unauthorized
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs (id),
    phone TEXT NOT NULL,
    row INTEGER NOT NULL,              -- the input row it was sent for
    operators TEXT NOT NULL,           -- JSON list, as sent
    department TEXT NOT NULL,          -- '' when none was sent
    sent_at TEXT NOT NULL,
    answered_at TEXT,                  -- NULL: no answer recorded
    http_status INTEGER,
    result TEXT,                       -- what the answer meant: a status or an error code
    may_have_acted INTEGER NOT NULL    -- 1 unless the answer shows the API did not act on it
);
CREATE TABLE IF NOT EXISTS whatsapp (  -- what PlugChat said of a phone (--verify-whatsapp)
    phone TEXT PRIMARY KEY,
    has_whatsapp INTEGER NOT NULL,
    asked_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leads (
    phone TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,         -- requests so far, every run included (see History)
    status TEXT,                       -- NULL until an answer decides the lead
    attendance_number TEXT,
    operators TEXT,                    -- JSON list: sent, or reported as attending
    http_status INTEGER,
    error_code TEXT,
    error_message TEXT,
    done_at TEXT,
    attempt INTEGER REFERENCES attempts (id)  -- the request whose answer decided it; NULL for a
) WITHOUT ROWID;                              -- lead carried over from a results file
"""
_NOT_DONE = "(leads.status IS NULL OR leads.status NOT IN ('started', 'already_in_service'))"
_SENDING = (
    "INSERT INTO leads (phone, attempts) VALUES (?, 1) ON CONFLICT (phone) DO UPDATE SET "
    "attempts = attempts + 1, status = NULL, attendance_number = NULL, operators = NULL, "
    "http_status = NULL, error_code = NULL, error_message = NULL, done_at = NULL, "
    f"attempt = NULL WHERE {_NOT_DONE}"
)
_DECIDED = (
    "UPDATE leads SET status = ?, attendance_number = ?, operators = ?, http_status = ?, "
    "error_code = ?, error_message = ?, done_at = ?, attempts = ?, attempt = ? "
    f"WHERE phone = ? AND {_NOT_DONE}"
)
_ADOPTED = (
    "INSERT INTO leads (phone, attempts, status, attendance_number, operators, http_status, "
    "error_code, error_message, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (phone) DO UPDATE SET attempts = excluded.attempts, status = excluded.status, "
    "attendance_number = excluded.attendance_number, operators = excluded.operators, "
    "http_status = excluded.http_status, error_code = excluded.error_code, "
    "error_message = excluded.error_message, done_at = excluded.done_at, attempt = NULL "
    f"WHERE {_NOT_DONE}"
)


class JournalError(BatchAttendError):
    """The journal cannot be used for this run (another run holds it, or it records another
    account's starts)."""


def now() -> str:
    """A moment as the journal and the results show it: local time with its UTC offset, to the
    second (so said once a second: every request needs it twice)."""
    global _NOW
    second, text = _NOW
    if int(time.time()) != second:
        second = int(time.time())
        text = dt.datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")
        _NOW = second, text
    return text


_NOW = (0, "")


@functools.lru_cache(maxsize=1024)
def _ids(operators: tuple[str, ...]) -> str:
    """A list of operator IDs as the ledger keeps it (JSON); a run repeats a few."""
    return json.dumps(operators)


def default_journal_path(output: str) -> Path:
    return Path(output + ".journal")


@dataclass
class History:
    """What earlier requests for one lead left behind: how many were answered, how many were
    recorded without an answer (a run killed, or a request cut off by a signal, between the
    record and the answer: they count only once an answer shows one of them arrived), and the
    operator sets of those the API may have acted on (an "already in service" answer with one
    of these sets is this lead's own start)."""

    attempts: int = 0
    unanswered: int = 0  # recorded, but no answer came (a kill, a cut off): maybe never sent
    may_have_acted: set[frozenset[str]] = field(default_factory=set)


@dataclass(frozen=True)
class Record:
    """A lead as the ledger holds it, with the request that decided it."""

    phone: str
    status: str | None
    attendance_number: str
    operators: tuple[str, ...]
    http_status: int | None
    error_code: str
    error_message: str
    attempts: int
    done_at: str
    asked_operators: tuple[str, ...] | None  # what the deciding request carried
    asked_department: str | None


class Journal:
    """Open with :meth:`open` (a run) or :meth:`open_readonly` (a dry run, ``check``); record
    with :meth:`sending` and :meth:`answered`; end with :meth:`close`."""

    def __init__(
        self, path: Path, db: sqlite3.Connection, lock=None, run: int | None = None, new=False
    ):
        self.path = path
        self._db = db
        self._lock = lock
        self.run = run
        self._new = new  # created by this run: removed again if it sent nothing
        self.set_aside: Path | None = None  # where --fresh moved the journal it forgot
        self._histories: dict[str, History] = {}
        for phone, operators, answered, may_have_acted in db.execute(
            "SELECT a.phone, a.operators, a.answered_at IS NOT NULL, a.may_have_acted "
            f"FROM attempts AS a JOIN leads USING (phone) WHERE {_NOT_DONE}"
        ):
            history = self._histories.setdefault(phone, History())
            if answered:
                history.attempts += 1
            else:
                history.unanswered += 1
            if may_have_acted:
                history.may_have_acted.add(frozenset(json.loads(operators)))
        self._next_attempt = 1 + (db.execute("SELECT max(id) FROM attempts").fetchone()[0] or 0)
        self._attempts: list[tuple] = []
        self._leads: list[tuple] = []
        self._answers: list[tuple] = []
        self._decisions: list[tuple] = []
        self._group: asyncio.Future | None = None
        self._flush_scheduled = False
        self._failure: Exception | None = None

    @classmethod
    def open(cls, path: Path, *, target: str, input: str, fresh: bool) -> Journal:
        """Open (or create) the journal for a run that sends to ``target``, and lock it."""
        _refuse_links(path)
        lock = _lock(path)
        try:
            set_aside = None
            if _inspect(path, fresh=fresh) and fresh:
                set_aside = _set_aside(path)
            new = not Path(path).exists()
            db = _connect(path, readonly=False)
            try:
                db.executescript(_SCHEMA)
                _claim_target(db, path, target)
                with db:
                    run = db.execute(
                        "INSERT INTO runs (started_at, input, version) VALUES (?, ?, ?)",
                        (now(), input, __version__),
                    ).lastrowid
            except BaseException:
                db.close()
                raise
        except BaseException:
            lock.release()
            raise
        journal = cls(path, db, lock, run, new)
        journal.set_aside = set_aside
        return journal

    @classmethod
    def open_readonly(cls, path: Path) -> Journal | None:
        """The journal as it is, to read what earlier runs did; None when there is none."""
        _refuse_links(path)
        if not _inspect(path, fresh=False):
            return None
        return cls(path, _connect(path, readonly=True))

    def done(self) -> dict[str, str]:
        """The status of every lead an earlier run started or found in service, by phone."""
        return dict(
            self._db.execute(
                "SELECT phone, status FROM leads WHERE status IN (?, ?)", tuple(DONE_STATUSES)
            )
        )

    def whatsapp_answers(self) -> dict[str, bool]:
        """What PlugChat said earlier of each phone asked (a rerun does not ask again)."""
        try:
            rows = self._db.execute("SELECT phone, has_whatsapp FROM whatsapp")
        except sqlite3.OperationalError:  # a journal of a version without the table
            return {}
        return {phone: bool(has) for phone, has in rows}

    def note_whatsapp(self, found: dict[str, bool | None]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO whatsapp (phone, has_whatsapp, asked_at) VALUES (?, ?, ?)",
                [(phone, int(has), now()) for phone, has in found.items() if has is not None],
            )

    def history(self, phone: str) -> History:
        """What earlier requests for ``phone`` left behind (loaded once, when the journal
        opens, for every lead not done)."""
        return self._histories.get(phone) or History()

    async def sending(self, lead: Lead) -> int:
        """Record a request about to go out; returns its ID once the record is committed, so
        the request never goes out before the ledger knows of it."""
        attempt = self._next_attempt
        self._next_attempt += 1
        self._attempts.append(
            (attempt, self.run, lead.phone, lead.row, _ids(lead.operators),
             lead.department, now())
        )  # fmt: skip
        self._leads.append((lead.phone,))
        await self._committed()
        return attempt

    def answered(
        self,
        attempt: int,
        lead: Lead,
        outcome: Outcome,
        *,
        may_have_acted: bool,
        decides: bool,
    ) -> None:
        """Record the answer to ``attempt`` and, when it ``decides`` the lead, its outcome
        (committed with the next group, before this worker's next request goes out)."""
        result = str(outcome.error_code or outcome.status)
        self._answers.append(
            (outcome.done_at, outcome.http_status, result, int(may_have_acted), attempt)
        )
        if decides:
            self._decisions.append(
                (str(outcome.status), outcome.attendance_number, _ids(tuple(outcome.operators)),
                 outcome.http_status, str(outcome.error_code), outcome.error_message,
                 outcome.done_at, outcome.attempts, attempt, lead.phone)
            )  # fmt: skip
        self._schedule()

    async def _committed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._group is None:
            self._group = asyncio.get_running_loop().create_future()
        group = self._group
        self._schedule()
        await group

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Commit what this turn of the event loop recorded, in one transaction (group commit:
        a transaction per request would cost more than the request); the requests waiting for
        it then go out, or learn why they may not (a full disk, say)."""
        self._flush_scheduled = False
        group, self._group = self._group, None
        work = (
            ("INSERT INTO attempts (id, run, phone, row, operators, department, sent_at, "
             "may_have_acted) VALUES (?, ?, ?, ?, ?, ?, ?, 1)", self._attempts),
            (_SENDING, self._leads),
            ("UPDATE attempts SET answered_at = ?, http_status = ?, result = ?, "
             "may_have_acted = ? WHERE id = ?", self._answers),
            (_DECIDED, self._decisions),
        )  # fmt: skip
        self._attempts, self._leads, self._answers, self._decisions = [], [], [], []
        try:
            if self._failure is not None:
                raise self._failure
            with self._db:
                for statement, rows in work:
                    if rows:
                        self._db.executemany(statement, rows)
        except Exception as exc:
            self._failure = exc
            if group is not None and not group.done():
                group.set_exception(exc)
                group.exception()  # retrieved: no "never retrieved" warning if none waits
            return
        if group is not None and not group.done():
            group.set_result(None)

    def records(self) -> Iterator[Record]:
        """Every lead the ledger holds, with its deciding request (if an answer decided it)."""
        for row in self._db.execute(
            "SELECT l.phone, l.status, coalesce(l.attendance_number, ''), l.operators, "
            "l.http_status, coalesce(l.error_code, ''), coalesce(l.error_message, ''), "
            "l.attempts, coalesce(l.done_at, ''), a.operators, a.department "
            "FROM leads AS l LEFT JOIN attempts AS a ON a.id = l.attempt"
        ):
            asked = _operators(row[9]) if row[9] else None
            yield Record(*row[:3], _operators(row[3]), *row[4:9], asked, row[10])

    def adopt(self, records: Iterable[Record]) -> None:
        """Take in the done leads of a results file given as input (unless the ledger has them
        done already), so that later runs writing these results know them too."""
        with self._db:
            self._db.executemany(
                _ADOPTED,
                (
                    (r.phone, r.attempts, r.status, r.attendance_number, _ids(tuple(r.operators)),
                     r.http_status, r.error_code, r.error_message, r.done_at)
                    for r in records
                    if r.status in DONE_STATUSES
                ),
            )  # fmt: skip

    @property
    def failure(self) -> Exception | None:
        """Why the journal could not record (a full disk, say), once that happened."""
        return self._failure

    def close(self, stopped_by: str | None = None, *, unlock: bool = True) -> None:
        """Commit what is left, say how the run ended, and release the lock (``unlock=False``:
        keep it until :meth:`unlock`, while the results are written). A journal this run created
        that holds no lead (a run refused before sending) is removed: nothing is left behind."""
        try:
            sent = True
            if self.run is not None:
                if self._failure is None and (self._answers or self._decisions):
                    self.flush()
                if self._failure is None:
                    with self._db:
                        self._db.execute(
                            "UPDATE runs SET finished_at = ?, stopped_by = ? WHERE id = ?",
                            (now(), stopped_by, self.run),
                        )
                sent = self._db.execute("SELECT 1 FROM leads LIMIT 1").fetchone() is not None
            self._db.close()
            if self._new and not sent:
                _remove(self.path)
        finally:
            if unlock:
                self.unlock()

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()


_SIDECARS = ("", "-wal", "-shm", ".lock")


def _refuse_links(path: Path) -> None:
    """SQLite, filelock and ``--fresh`` would write or move whatever a link names (a planted
    ``results.csv.journal`` link once turned another file into a database): refuse first."""
    for suffix in _SIDECARS:
        if os.path.islink(f"{path}{suffix}"):
            raise JournalError(
                _(
                    "{path}: is a symbolic link, and batch-attend does not write through links. Remove the link, or choose another --journal."
                ).format(path=f"{path}{suffix}")
            )


def _inspect(path: Path, *, fresh: bool) -> bool:
    """Whether a ledger is there to open (a file of no bytes is none); a file that is not a
    ledger of this version (another program's database; an older batch-attend's, unless
    ``fresh`` is to move it aside) or a damaged one is refused. It is only read (no WAL switch,
    no table added), so a file refused stays byte for byte as it was."""
    path = Path(path)
    if not path.is_file() or not path.stat().st_size:
        return False
    tables, schema, problem = set(), None, None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            if "meta" in tables:
                schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            problem = None if check == "ok" else check
        finally:
            db.close()
    except sqlite3.OperationalError as exc:  # a folder that cannot be read, a lock held
        raise JournalError(
            _("{path}: cannot open the journal ({exc}).").format(path=path, exc=exc)
        ) from exc
    except sqlite3.DatabaseError as exc:  # not a database at all, or damaged past reading
        problem = str(exc)
    schema = schema and schema[0]
    ours = schema == SCHEMA_VERSION and {"runs", "attempts", "leads"} <= tables
    older = schema == "1" and "rows" in tables  # the first version's
    if problem is None and older and not fresh:
        raise JournalError(
            _(
                "{path}: a journal of an older batch-attend, which this version cannot read. Finish its run with the version that made it, or add --fresh to start a new one (rows it started would then be reported as already in service)."
            ).format(path=path)
        )
    if problem is not None or not (ours or older):
        raise JournalError(
            _(
                "{path}: not a batch-attend journal ({exc}), so it is left as it is. Move it away, or choose another --journal."
            ).format(path=path, exc=problem or _("no ledger tables"))
        )
    return True


def _set_aside(path: Path) -> Path:
    """``--fresh``: the journal moved beside itself under a name no other file has (a run that
    then fails, with a refused token say, loses nothing). The name is taken with a hard link,
    which never replaces a file, then the WAL and shared memory follow and the old names go,
    the database's first (a WAL left alone is never read into another database)."""
    stamp = f"{path}.{dt.datetime.now():%Y%m%d-%H%M%S}"
    for n in itertools.count():
        aside = Path(f"{stamp}-{n}.old" if n else f"{stamp}.old")
        try:
            os.link(path, aside)
            break
        except FileExistsError:
            continue
    for suffix in ("-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.link(f"{path}{suffix}", f"{aside}{suffix}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return aside


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@functools.lru_cache(maxsize=1024)
def _operators(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _lock(path: Path):
    from filelock import FileLock, Timeout

    lock = FileLock(str(path) + ".lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise JournalError(
            _(
                "{path}: another batch-attend run is writing these results right now. Wait for it to finish, or choose another -o."
            ).format(path=path)
        ) from None
    except OSError as exc:
        raise JournalError(
            _("{path}: cannot lock the journal ({strerror}).").format(
                path=path, strerror=exc.strerror
            )
        ) from exc
    return lock


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A ledger :func:`_inspect` let through (none yet, when writing)."""
    try:
        if readonly:
            return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        db = sqlite3.connect(path)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            db.close()
            raise
        return db
    except sqlite3.DatabaseError as exc:  # a folder that cannot be written, say
        raise JournalError(
            _("{path}: cannot open the journal ({exc}).").format(path=path, exc=exc)
        ) from exc


def _claim_target(db: sqlite3.Connection, path: Path, target: str) -> None:
    """A ledger records the starts of one account: refuse to mix another's into it."""
    row = db.execute("SELECT value FROM meta WHERE key = 'target'").fetchone()
    holds_leads = db.execute("SELECT 1 FROM leads LIMIT 1").fetchone() is not None
    if row is not None and row[0] != target and holds_leads:
        raise JournalError(
            _(
                "{path}: this journal records attendances started through {recorded}, and this run sends to {target}. Choose another -o (or --journal) for it, or add --fresh to forget what the journal holds."
            ).format(path=path, recorded=row[0], target=target)
        )
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("schema", SCHEMA_VERSION), ("target", target)],
        )
