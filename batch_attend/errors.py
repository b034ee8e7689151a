"""The one base class every batch-attend error derives from.

Each concrete error lives beside the code that raises it (reading, validation, output, token);
the CLI catches this base class once and turns it into a single line on stderr and exit code 2.
"""


class BatchAttendError(Exception):
    """A problem the user can fix: the message says what, where, and what to do."""
