"""The ledger's file kept safe: never written through a link; a file that is no ledger, or a
damaged one, refused untouched; ``--fresh`` moves it aside; the lock is the file itself."""

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
SIDECARS = ("", "-wal", "-shm")  # the database's first: removed, a lone WAL joins no database


class JournalError(BatchAttendError):
    """The journal cannot be used for this run."""


def refuse_links(path: Path) -> None:
    """SQLite, the lock and ``--fresh`` would write or move whatever a link names: refuse."""
    for suffix in SIDECARS:
        if os.path.islink(f"{path}{suffix}"):
            said = _(
                "{path}: is a symbolic link, and batch-attend does not write through links. Remove the link, or choose another --journal."
            )
            raise JournalError(said.format(path=f"{path}{suffix}"))


def inspect(path: Path, *, fresh: bool) -> bool:
    """Whether a ledger is there (a file of no bytes is none). Another program's file, an older
    batch-attend's (unless ``fresh``) or a damaged one is refused, only read: it stays as it was."""
    path = Path(path)
    if not path.is_file() or not path.stat().st_size:
        return False
    try:
        with contextlib.closing(reading(path)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
            meta = dict(db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
            check = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.OperationalError as exc:  # a folder that cannot be read, a lock held
        said = _("{path}: cannot open the journal ({exc}).")
        raise JournalError(said.format(path=path, exc=exc)) from exc
    except sqlite3.DatabaseError as exc:  # not a database at all, or damaged past reading
        tables, meta, check = set(), {}, str(exc)
    ours = meta.get("schema") == SCHEMA_VERSION and {"runs", "attempts", "leads"} <= tables
    older = meta.get("schema") == "1" and "rows" in tables  # the first version's
    if check == "ok" and older and not fresh:
        said = _(
            "{path}: a journal of an older batch-attend, which this version cannot read. Finish its run with the version that made it, or add --fresh to start a new one (rows it started would then be reported as already in service)."
        )
        raise JournalError(said.format(path=path))
    if check != "ok" or not (ours or older):
        said = _(
            "{path}: not a batch-attend journal ({exc}), so it is left as it is. Move it away, or choose another --journal."
        )
        reason = _("no ledger tables") if check == "ok" else check
        raise JournalError(said.format(path=path, exc=reason))
    return True


def set_aside(path: Path) -> Path:
    """``--fresh``: the journal kept beside itself (a run that then fails loses nothing) under a
    new name taken by a hard link (never replacing a file); the WAL and shared memory follow."""
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
    """The ledger file itself (created empty if new), held apart from SQLite's locks, so others
    may still read it: by POSIX ``flock``, or on Windows a byte far past what SQLite locks."""
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
            said = _(
                "{path}: another batch-attend run is writing these results right now. Wait for it to finish, or choose another -o."
            )
            raise JournalError(said.format(path=path)) from None
        said = _("{path}: cannot lock the journal ({strerror}).")
        raise JournalError(said.format(path=path, strerror=exc.strerror)) from exc
    with contextlib.suppress(OSError):  # an earlier version's lock file, left beside it
        Path(f"{path}.lock").unlink(missing_ok=True)
    return handle


def connect(path: Path) -> sqlite3.Connection:
    """A ledger to write, that :func:`inspect` let through. ``synchronous=NORMAL``: a commit
    survives the process dying; a power cut may lose the last ones (sent again)."""
    try:
        db = sqlite3.connect(path)
        try:
            db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        except BaseException:
            db.close()
            raise
        return db
    except sqlite3.DatabaseError as exc:  # a folder that cannot be written, say
        said = _("{path}: cannot open the journal ({exc}).")
        raise JournalError(said.format(path=path, exc=exc)) from exc


def reading(path: Path) -> sqlite3.Connection:
    """A ledger opened only to read: no WAL switch, nothing written."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
