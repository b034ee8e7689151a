"""The one base class every batch-attend error derives from, and the one error boundary.

Each concrete error lives beside the code that raises it (reading, validation, output, token);
:func:`guarded`, which every command goes through, turns it into a single line on stderr and its
``exit_status``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable

from batch_attend.i18n import _
from batch_attend.outcomes import ExitStatus


class BatchAttendError(Exception):
    """A problem the user can fix: the message says what, where, and what to do; ``page``, what
    to do on the web page, which has no command line (None: as the message says)."""

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
    """The exit code of ``call()``, or of what it raised (httpie's ``raw_main``): one line for
    a person through ``log``; with ``traceback`` an unexpected error is raised whole."""
    try:
        return int(call())
    except BatchAttendError as exc:
        log(f"batch-attend: {_('error')}: {exc}")
        return exc.exit_status
    except KeyboardInterrupt:
        log(f"batch-attend: {_('interrupted before any request was sent.')}")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # Results on stdout read by something that stopped reading (``| head``): the ledger
        # holds every answer. Point stdout at nothing so the exit flush stays quiet.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        log(
            "batch-attend: "
            + _(
                "the results on stdout were cut off (broken pipe); every answer is in the "
                "journal, so running the same command again sends nothing twice."
            )
        )
        return ExitStatus.ROWS_NOT_DONE
    except Exception as exc:
        if traceback:
            raise
        log(
            f"batch-attend: {_('unexpected error')}: {type(exc).__name__}: {exc}. "
            + _(
                "The results file may be missing or incomplete; run again with --traceback "
                "for details."
            )
        )
        return ExitStatus.ROWS_NOT_DONE
