"""The one base class every batch-attend error derives from.

Each concrete error lives beside the code that raises it (reading, validation, output, token);
the CLI's one error boundary turns it into a single line on stderr and its ``exit_status``.
"""

from batch_attend.outcomes import ExitStatus


class BatchAttendError(Exception):
    """A problem the user can fix: the message says what, where, and what to do."""

    exit_status = ExitStatus.USAGE_OR_INPUT_ERROR
