"""Files that appear whole: written beside their name, synced, then renamed over it, so a reader
never sees half a file and a failure leaves it as it was (every file written for people)."""

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
    """A temp file beside ``target`` that replaces it once written and synced, or disappears, with
    ``target``'s rights (or the umask's). mkstemp's ``O_EXCL`` never opens a link planted at its
    name, and os.replace replaces a link at ``target`` rather than follow it."""
    target = Path(target)
    try:  # the rights it ends with: target's, or a new file's (mkstemp's are 0600)
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:  # none yet, or a dangling link (replaced by the file)
        mask = os.umask(0o077)  # read by setting it: what another thread makes now is private
        os.umask(mask)
        mode = 0o666 & ~mask
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        fd = os.open(tmp, os.O_RDWR)
        try:  # the data on disk before the name points at it, or a crash may leave it empty
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(target: Path, text: str) -> None:
    """``text`` (UTF-8) as the whole of ``target``, through :func:`replacing`."""
    with replacing(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_leftovers(target: Path) -> None:
    """Remove the temp files a killed process left beside ``target`` (links unlinked, never
    followed; what cannot go stays); only where one writer is expected: another's would go too."""
    name = re.compile(re.escape(f".{target.name}.") + "[a-z0-9_]+" + re.escape(TEMP_SUFFIX))
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if name.fullmatch(entry.name) and (
                entry.is_symlink() or entry.is_file(follow_symlinks=False)
            ):
                with contextlib.suppress(OSError):  # gone already, or not ours to remove
                    os.unlink(entry.path)
