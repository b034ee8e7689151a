"""Files that appear whole: written beside their name, synced to disk, then renamed over it, so
a reader never sees half a file and a failure leaves the file as it was. Every file batch-attend
writes for people, schedulers or the page goes through :func:`replacing`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: What ends the name of every temp file batch-attend writes, so that leftovers are recognised.
TEMP_SUFFIX = ".batch-attend.tmp"


@contextlib.contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """A temp file beside ``target`` that replaces it once written whole and synced, or
    disappears; with the rights ``target`` has, or the umask's for a new file. mkstemp makes a
    new file (``O_EXCL``: a link planted at its name is never opened), and os.replace replaces
    a link at ``target`` rather than follow it."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDWR)
        try:  # the data on disk before the name points at it, or a crash may leave it empty
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str) -> None:
    """``text`` (UTF-8) as the whole of ``target``, through :func:`replacing`."""
    with replacing(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _mode_for(target: Path) -> int:
    """The rights of the file ``target`` names, or a new file's (mkstemp's are always 0600)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:  # none yet (or a dangling link, replaced by the file)
        # The umask can only be read by setting it: to 0o077 for that instant, so that a file
        # another thread makes meanwhile is private rather than open.
        mask = os.umask(0o077)
        os.umask(mask)
        return 0o666 & ~mask


def remove_leftovers(target: Path) -> None:
    """Remove the temp files of ``target`` a killed process left (:func:`replacing`'s names; a
    link is unlinked, never followed), or they pile up. A process writing the same file then
    would lose its temp file: call it only where one writer is expected."""
    name = re.compile(re.escape(f".{target.name}.") + "[a-z0-9_]+" + re.escape(TEMP_SUFFIX))
    # Tidying up is never a reason to lose the results: what cannot be removed stays.
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if name.fullmatch(entry.name) and (
                entry.is_symlink() or entry.is_file(follow_symlinks=False)
            ):
                with contextlib.suppress(OSError):  # gone already, or not ours to remove
                    os.unlink(entry.path)
