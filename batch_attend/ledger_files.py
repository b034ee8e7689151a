"""Where a ledger lives, kept safe: never written through a link; a file that is no ledger, or a
damaged one, refused untouched; ``--fresh`` moves it aside under a name no file has; the lock a
second run meets is the ledger file itself (no file beside it), released with a dead process.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import itertools
import os
import sqlite3
from pathlib import Path

from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _

SCHEMA_VERSION = "2"
SIDECARS = ("", "-wal", "-shm")


class JournalError(BatchAttendError):
    """The journal cannot be used for this run (held by another, another account's, no ledger)."""


def refuse_links(path: Path) -> None:
    """SQLite, the lock and ``--fresh`` would write or move whatever a link names: refuse."""
    for suffix in SIDECARS:
        if os.path.islink(f"{path}{suffix}"):
            raise JournalError(
                _(
                    "{path}: is a symbolic link, and batch-attend does not write through links. Remove the link, or choose another --journal."
                ).format(path=f"{path}{suffix}")
            )


def inspect(path: Path, *, fresh: bool) -> bool:
    """Whether a ledger is there to open (a file of no bytes is none). Another program's file,
    an older batch-attend's (unless ``fresh`` moves it aside) or a damaged one is refused; it
    is only read (no WAL switch, no table added), so a file refused stays as it was."""
    path = Path(path)
    if not path.is_file() or not path.stat().st_size:
        return False
    tables, schema, problem = set(), None, None
    try:
        with contextlib.closing(_reading(path)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            if "meta" in tables:
                schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            problem = None if check == "ok" else check
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


def set_aside(path: Path) -> Path:
    """``--fresh``: the journal kept beside itself (a run that then fails loses nothing), its
    new name taken by a hard link, which never replaces a file; the WAL and shared memory
    follow, then the old names go, the database's first (a lone WAL is read into no database)."""
    stamp = f"{path}.{dt.datetime.now():%Y%m%d-%H%M%S}"
    for n in itertools.count():
        aside = Path(f"{stamp}-{n}.old" if n else f"{stamp}.old")
        with contextlib.suppress(FileExistsError):
            os.link(path, aside)
            break
    for suffix in SIDECARS[1:]:
        if Path(f"{path}{suffix}").exists():
            os.link(f"{path}{suffix}", f"{aside}{suffix}")
    remove(path)
    return aside


def remove(path: Path) -> None:
    for suffix in SIDECARS:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def lock(path: Path):
    """The ledger file itself, held by this run (created empty if new): the whole file by
    POSIX ``flock``, or a byte far past what SQLite locks on Windows; apart from SQLite's own
    locks, so others may still read the ledger."""
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None
    handle = open(path, "ab")  # noqa: SIM115 - held until the run ends
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt

            handle.seek(1 << 40)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise JournalError(
                _(
                    "{path}: another batch-attend run is writing these results right now. Wait for it to finish, or choose another -o."
                ).format(path=path)
            ) from None
        raise JournalError(
            _("{path}: cannot lock the journal ({strerror}).").format(
                path=path, strerror=exc.strerror
            )
        ) from exc
    with contextlib.suppress(OSError):  # an earlier version's lock file, left beside it
        Path(f"{path}.lock").unlink(missing_ok=True)
    return handle


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A ledger :func:`inspect` let through (none yet, when writing). ``synchronous=NORMAL``: a
    commit survives the process dying; a power cut may lose the last ones (sent again)."""
    try:
        if readonly:
            return _reading(path)
        db = sqlite3.connect(path)
        try:
            db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        except BaseException:
            db.close()
            raise
        return db
    except sqlite3.DatabaseError as exc:  # a folder that cannot be written, say
        raise JournalError(
            _("{path}: cannot open the journal ({exc}).").format(path=path, exc=exc)
        ) from exc


def _reading(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
