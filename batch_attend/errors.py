"""The one base class of batch-attend's errors, each raised beside the code that finds it, and
the one error boundary, :func:`guarded`, which every command goes through."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from batch_attend.i18n import _
from batch_attend.outcomes import ExitStatus


class BatchAttendError(Exception):
    """A problem the user can fix, said so; ``page``: what to do on the web page (None: as said)."""

    exit_status = ExitStatus.USAGE_OR_INPUT_ERROR

    def __init__(self, *args, page: str | None = None) -> None:
        super().__init__(*args)
        self.page = page


class ConfigError(BatchAttendError):
    """A setting that makes sending impossible: a config file, the base URL, the token."""


class TokenRefusedError(BatchAttendError):
    """The API answered 401: nothing will work with this token."""

    exit_status = ExitStatus.TOKEN_REFUSED


def guarded(call: Callable[[], int], log: Callable[[str], None], traceback: bool) -> int:
    """The exit code of ``call()`` or of what it raised, said in one line through ``log``."""
    try:
        return int(call())
    except BatchAttendError as exc:
        said, status = f"{_('error')}: {exc}", exc.exit_status
    except KeyboardInterrupt:
        said, status = _("interrupted before any request was sent."), ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # ``| head`` stopped reading the results: stdout to nothing, for a quiet exit flush.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        said = _(
            "the results on stdout were cut off (broken pipe); every answer is in the "
            "journal, so running the same command again sends nothing twice."
        )
        status = ExitStatus.ROWS_NOT_DONE
    except Exception as exc:
        if traceback:
            raise
        said = f"{_('unexpected error')}: {type(exc).__name__}: {exc}. " + _(
            "The results file may be missing or incomplete; run again with --traceback for details."
        )
        status = ExitStatus.ROWS_NOT_DONE
    log(f"batch-attend: {said}")
    return status
