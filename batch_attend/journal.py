"""The ledger: every request sent for each lead and its answer, in plain SQLite (readable with
the ``sqlite3`` shell, even after ``kill -9``), its file kept safe by :mod:`ledger_files`. A
request is committed before it goes out, an answer with its turn's group: a killed run sends at
most one lead per worker again, and that answer says whose attendance it is. A lead once
``started`` or ``already_in_service`` loses that only to a finish (``undone``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from batch_attend import __version__
from batch_attend import ledger_files as files
from batch_attend.i18n import _
from batch_attend.leads import Lead
from batch_attend.ledger_files import SCHEMA_VERSION, JournalError
from batch_attend.outcomes import DONE_STATUSES, Outcome, RowStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);  -- schema, target
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    input TEXT NOT NULL,
    version TEXT NOT NULL,
    stopped_by TEXT,                   -- why sending stopped early: SIGINT, SIGTERM, unauthorized
    plan TEXT                          -- JSON: the sheet, columns and defaults it sent with
);
CREATE TABLE IF NOT EXISTS attempts (  -- every start, with its answer
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
    may_have_acted INTEGER NOT NULL,   -- 1 unless the answer shows the API did not act on it
    row_key INTEGER                    -- the fingerprint of the row it was sent for
);
CREATE INDEX IF NOT EXISTS attempts_by_phone ON attempts (phone);
CREATE TABLE IF NOT EXISTS finishes (  -- batch-attend undo: a started lead's attendance ended
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL REFERENCES runs (id),
    phone TEXT NOT NULL,
    operator TEXT NOT NULL,            -- the operatorId sent
    auto_transfer INTEGER NOT NULL,
    sent_at TEXT NOT NULL,
    answered_at TEXT,                  -- NULL: no answer recorded (the lead stays started)
    http_status INTEGER,
    result TEXT                        -- what the answer meant: a status or an error code
);
CREATE TABLE IF NOT EXISTS whatsapp (  -- what PlugChat said of a phone (--verify-whatsapp)
    phone TEXT PRIMARY KEY,
    has_whatsapp INTEGER NOT NULL,
    asked_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leads (  -- by normalized phone: a re-sorted sheet finds its leads
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
_ATTEMPT = (
    "INSERT INTO attempts (id, run, phone, row, operators, department, sent_at, row_key, "
    "may_have_acted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)"
)
_SENDING = (
    "INSERT INTO leads (phone, attempts) VALUES (?, 1) ON CONFLICT (phone) DO UPDATE SET "
    "attempts = attempts + 1, status = NULL, attendance_number = NULL, operators = NULL, "
    "http_status = NULL, error_code = NULL, error_message = NULL, done_at = NULL, "
    f"attempt = NULL WHERE {_NOT_DONE}"
)
_ANSWERED = (
    "UPDATE attempts SET answered_at = ?, http_status = ?, result = ?, may_have_acted = ? "
    "WHERE id = ?"
)
_DECIDED = (
    "UPDATE leads SET status = ?, attendance_number = ?, operators = ?, http_status = ?, "
    "error_code = ?, error_message = ?, done_at = ?, attempts = ?, attempt = ? "
    f"WHERE phone = ? AND {_NOT_DONE}"
)
_FINISH = (
    "INSERT INTO finishes (id, run, phone, operator, auto_transfer, sent_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_FINISH_ANSWERED = "UPDATE finishes SET answered_at = ?, http_status = ?, result = ? WHERE id = ?"
#: A finish answered: the lead is undone, its earlier requests no longer its own start (a later
#: "already in service" is another's).
_UNDONE = (
    "UPDATE leads SET status = 'undone', http_status = ?, error_code = ?, error_message = ?, "
    "done_at = ? WHERE phone = ? AND status = 'started'"
)
_FORGOTTEN = "UPDATE attempts SET may_have_acted = 0 WHERE phone = ?"
#: What a turn of the event loop records, in the order it is committed.
_WRITES = (_ATTEMPT, _SENDING, _ANSWERED, _DECIDED, _FINISH, _FINISH_ANSWERED, _UNDONE, _FORGOTTEN)
_INSERTS = {"attempts": _ATTEMPT, "finishes": _FINISH}
_NOW = (0, "")  # the second now() last made, and how it reads


def now() -> str:
    """Local time with its UTC offset, to the second; made once a second (requests need it)."""
    global _NOW
    second = int(time.time())
    if second != _NOW[0]:
        _NOW = second, dt.datetime.fromtimestamp(second).astimezone().isoformat(timespec="seconds")
    return _NOW[1]


@functools.lru_cache(maxsize=1024)
def _ids(operators: tuple[str, ...]) -> str:
    """A list of operator IDs as the ledger keeps it (JSON); a run repeats a few."""
    return json.dumps(operators)


@dataclass
class History:
    """What earlier requests of a lead left (the unanswered count once one is shown to arrive)."""

    attempts: int = 0
    unanswered: int = 0
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
    asked_key: int | None = None  # the fingerprint of the row it was sent for


class Journal:
    """Open with :meth:`open` (a run) or :meth:`open_readonly`; end with :meth:`close`."""

    def __init__(
        self, path: Path, db: sqlite3.Connection, lock=None, run=None, new=False, aside=None
    ):
        self.path = path
        self._db = db
        self._lock = lock
        self.run = run
        self._new = new  # created by this run: removed again if it sent nothing
        self.set_aside: Path | None = aside  # where --fresh moved the journal it forgot
        self.failure: Exception | None = None  # why it could not record (a full disk, say)
        self._histories: dict[str, History] = {}
        for phone, operators, answered, may_have_acted in db.execute(
            "SELECT a.phone, a.operators, a.answered_at IS NOT NULL, a.may_have_acted "
            f"FROM attempts AS a JOIN leads USING (phone) WHERE {_NOT_DONE}"
        ):
            history = self._histories.setdefault(phone, History())
            history.attempts += answered
            history.unanswered += not answered
            if may_have_acted:
                history.may_have_acted.add(frozenset(json.loads(operators)))
        self._next = {  # the ID of the next request of each table (a writable ledger's)
            table: 1 + (db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0)
            for table in (_INSERTS if run is not None else ())
        }
        columns = {row[1] for row in db.execute("PRAGMA table_info(attempts)")}
        self._key = "a.row_key" if "row_key" in columns else "NULL"  # NULL: an earlier version's
        self._rows: dict[str, list[tuple]] = {statement: [] for statement in _WRITES}
        self._scheduled = False  # a commit at the end of this turn
        self._commits = 0  # groups committed

    @classmethod
    def open(cls, path: Path, *, target: str, input: str, fresh: bool) -> Journal:
        """Open (or create) the journal for a run that sends to ``target``, and lock it."""
        files.refuse_links(path)
        lock = files.lock(path)
        db = set_aside = None
        new = False
        try:
            new = not files.inspect(path, fresh=fresh)  # the lock made it, empty, if it was none
            if fresh and not new:
                set_aside = files.set_aside(path)
                lock.close()  # it held the ledger set aside: hold the new one
                lock, new = files.lock(path), True
            db = files.connect(path)
            db.executescript(_SCHEMA)
            _add_columns(db)
            _claim_target(db, path, target)
            with db:
                run = db.execute(
                    "INSERT INTO runs (started_at, input, version) VALUES (?, ?, ?)",
                    (now(), input, __version__),
                ).lastrowid
        except BaseException:
            if db is not None:
                db.close()
            lock.close()
            if new:
                files.remove(path)
            raise
        return cls(path, db, lock, run, new, set_aside)

    @classmethod
    def open_readonly(cls, path: Path) -> Journal | None:
        """The journal as it is, to read what earlier runs did; None when there is none."""
        files.refuse_links(path)
        return cls(path, files.reading(path)) if files.inspect(path, fresh=False) else None

    def done(self) -> dict[str, tuple[str, int | None]]:
        """Every lead done (started or in service), by phone: its status, its row's fingerprint."""
        return {
            r.phone: (r.status, r.asked_key) for r in self.records() if r.status in DONE_STATUSES
        }

    def note_plan(self, plan: dict) -> None:
        with self._db:
            self._db.execute(
                "UPDATE runs SET plan = ? WHERE id = ?",
                (json.dumps(plan, ensure_ascii=False), self.run),
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
        """What earlier requests for ``phone`` left behind (read when the journal opens)."""
        return self._histories.get(phone) or History()

    async def sending(self, lead: Lead) -> int:
        """Record a start about to go out; returns its ID once that is committed."""
        self._rows[_SENDING].append((lead.phone,))  # committed with the request's record
        return await self._record(
            "attempts", lead.phone, lead.row, _ids(lead.operators), lead.department, now(), lead.key
        )

    async def finishing(self, lead: Lead, auto_transfer: bool) -> int:
        """Record a finish (by ``lead.operators[0]``) about to go out, as :meth:`sending` does."""
        return await self._record(
            "finishes", lead.phone, lead.operators[0], int(auto_transfer), now()
        )

    async def _record(self, table: str, *values) -> int:
        request = self._next[table]
        self._next[table] += 1
        self._rows[_INSERTS[table]].append((request, self.run, *values))
        commits = self._commits
        await asyncio.sleep(0)  # every worker of this turn records first: one commit for all
        if self._commits == commits:  # not committed by another worker's flush
            self.flush()
        if self._commits == commits:
            raise self.failure
        return request

    def answered(
        self, attempt: int, lead: Lead, outcome: Outcome, *, may_have_acted: bool, decides: bool
    ) -> None:
        """Record the answer to ``attempt`` and, when it ``decides`` the lead, its outcome."""
        result = str(outcome.error_code or outcome.status)
        self._rows[_ANSWERED].append(
            (outcome.done_at, outcome.http_status, result, int(may_have_acted), attempt)
        )
        if decides:
            self._rows[_DECIDED].append((*_decided(outcome), attempt, lead.phone))
        self._commit_soon()

    def finished(self, finish: int, lead: Lead, outcome: Outcome, *, decides: bool) -> None:
        """Record the answer to ``finish``; one that ends the attendance undoes the lead."""
        result = str(outcome.error_code or outcome.status)
        self._rows[_FINISH_ANSWERED].append((outcome.done_at, outcome.http_status, result, finish))
        if decides and outcome.status == RowStatus.UNDONE:
            code, message = str(outcome.error_code), outcome.error_message
            self._rows[_UNDONE].append(
                (outcome.http_status, code, message, outcome.done_at, lead.phone)
            )
            self._rows[_FORGOTTEN].append((lead.phone,))
        self._commit_soon()

    def _commit_soon(self) -> None:
        """Commit what this turn of the event loop records once it ends."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Commit what was recorded in one transaction; a failure is kept in :attr:`failure`."""
        self._scheduled = False
        if not any(self._rows.values()):
            return
        work, self._rows = self._rows, {statement: [] for statement in _WRITES}
        try:
            if self.failure is not None:
                raise self.failure
            with self._db:
                for statement, rows in work.items():
                    if rows:
                        self._db.executemany(statement, rows)
        except Exception as exc:
            self.failure = exc
            return
        self._commits += 1

    def records(self) -> Iterator[Record]:
        """Every lead the ledger holds, with the request that decided it (if one did)."""
        for row in self._db.execute(
            "SELECT l.phone, l.status, coalesce(l.attendance_number, ''), l.operators, "
            "l.http_status, coalesce(l.error_code, ''), coalesce(l.error_message, ''), "
            "l.attempts, coalesce(l.done_at, ''), a.operators, a.department, "
            f"{self._key} FROM leads AS l LEFT JOIN attempts AS a ON a.id = l.attempt"
        ):
            asked = _operators(row[9]) if row[9] else None
            yield Record(*row[:3], _operators(row[3]), *row[4:9], asked, *row[10:])

    def started(self, last_run: bool = False) -> dict[str, tuple[tuple[str, ...], str]]:
        """The leads this tool started (not those found in service), with the operators and
        department sent, by phone; ``last_run``: only the newest run's that started any."""
        newest = (
            "(SELECT max(a.run) FROM leads AS l JOIN attempts AS a ON a.id = l.attempt "
            "WHERE l.status IN ('started', 'undone'))"
        )
        rows = self._db.execute(
            "SELECT l.phone, coalesce(a.operators, l.operators), coalesce(a.department, '') "
            "FROM leads AS l LEFT JOIN attempts AS a ON a.id = l.attempt "
            f"WHERE l.status = 'started' AND (? = 0 OR a.run = {newest})",
            (int(last_run),),
        )
        return {phone: (_operators(ops), department) for phone, ops, department in rows}

    def adopt(self, records: Iterable[Record]) -> None:
        """Take in the done leads of a results file given as input, as if answers decided them."""
        done = [r for r in records if r.status in DONE_STATUSES]
        with self._db:
            self._db.executemany(
                "INSERT INTO leads (phone, attempts) VALUES (?, 0) ON CONFLICT DO NOTHING",
                [(r.phone,) for r in done],
            )
            self._db.executemany(_DECIDED, [(*_decided(r), None, r.phone) for r in done])

    def close(self, stopped_by: str | None = None, *, unlock: bool = True) -> None:
        """Commit what is left, say how the run ended, and unlock (``unlock=False``: later, at
        :meth:`unlock`, once the results are out). A journal this run made and left empty goes."""
        try:
            if self.run is not None:
                self.flush()  # what is left (a ledger that failed only says so again)
                if self.failure is None:
                    with self._db:
                        self._db.execute(
                            "UPDATE runs SET finished_at = ?, stopped_by = ? WHERE id = ?",
                            (now(), stopped_by, self.run),
                        )
            empty = self._new and not self._db.execute("SELECT 1 FROM leads LIMIT 1").fetchone()
            self._db.close()
            if empty:
                files.remove(self.path)
        finally:
            if unlock:
                self.unlock()

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()


def _decided(outcome: Outcome | Record) -> tuple:
    """What :data:`_DECIDED` sets before ``attempt``, from an answer or a results file."""
    return (
        str(outcome.status),
        outcome.attendance_number,
        _ids(tuple(outcome.operators)),
        outcome.http_status,
        str(outcome.error_code),
        outcome.error_message,
        outcome.done_at,
        outcome.attempts,
    )


def _add_columns(db: sqlite3.Connection) -> None:
    """The columns a ledger of an earlier version lacks (its rows read as before: NULL)."""
    for table, column in (("runs", "plan TEXT"), ("attempts", "row_key INTEGER")):
        names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column.split()[0] not in names:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")


@functools.lru_cache(maxsize=1024)
def _operators(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _claim_target(db: sqlite3.Connection, path: Path, target: str) -> None:
    """A ledger records the starts of one account: refuse to mix another's into it."""
    row = db.execute("SELECT value FROM meta WHERE key = 'target'").fetchone()
    holds_leads = db.execute("SELECT 1 FROM leads LIMIT 1").fetchone() is not None
    if row is not None and row[0] != target and holds_leads:
        said = _(
            "{path}: this journal records attendances started through {recorded}, and this run sends to {target}. Choose another -o (or --journal) for it, or add --fresh to forget what the journal holds."
        )
        raise JournalError(said.format(path=path, recorded=row[0], target=target))
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("schema", SCHEMA_VERSION), ("target", target)],
        )
