"""The results contract in code: columns, row statuses, error codes, per-row outcomes, exit codes.

Every other module speaks in these terms, so the contract written in the README is defined
exactly once, here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum, unique

#: The columns every results file ends with, in this order (the README's table is tested
#: against it).
RESULT_COLUMNS = (
    "row",
    "phone",
    "status",
    "attendance_number",
    "operators",
    "http_status",
    "error",
    "attempts",
    "done_at",
)


@unique
class RowStatus(StrEnum):
    STARTED = "started"
    ALREADY_IN_SERVICE = "already_in_service"
    INVALID = "invalid"
    FAILED = "failed"
    SKIPPED = "skipped"


#: The statuses that mean the lead is assigned: nothing is left to do for such a row.
DONE_STATUSES = frozenset({RowStatus.STARTED, RowStatus.ALREADY_IN_SERVICE})


class ErrorCode(StrEnum):
    # validation (status invalid)
    INVALID_PHONE = "invalid_phone"
    MISSING_OPERATORS = "missing_operators"
    TOO_MANY_OPERATORS = "too_many_operators"
    NO_WHATSAPP = "no_whatsapp"
    UNKNOWN_OPERATOR = "unknown_operator"
    AMBIGUOUS_OPERATOR = "ambiguous_operator"
    INACTIVE_OPERATOR = "inactive_operator"
    UNKNOWN_DEPARTMENT = "unknown_department"
    INACTIVE_DEPARTMENT = "inactive_department"
    # planning (status skipped)
    DRY_RUN = "dry_run"
    DUPLICATE_ROW = "duplicate_row"
    OPERATORS_OFFLINE = "operators_offline"
    UNAUTHORIZED = "unauthorized"
    INTERRUPTED = "interrupted"
    WHATSAPP_DISCONNECTED = "whatsapp_disconnected"
    # answers (status failed)
    NOT_STARTED = "not_started"
    BAD_REQUEST = "bad_request"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    UNEXPECTED_REDIRECT = "unexpected_redirect"
    UNEXPECTED_RESPONSE = "unexpected_response"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    CONNECTION_LOST = "connection_lost"
    PHONE_CHECK_FAILED = "phone_check_failed"
    MALFORMED = "malformed_answer"
    # notes on a row that is done
    CONFIRMED_ON_RETRY = "confirmed_on_retry"
    NOT_RESENT = "not_resent"
    NINTH_DIGIT_ADDED = "ninth_digit_added"
    NINTH_DIGIT_REMOVED = "ninth_digit_removed"


@dataclass(slots=True)
class Outcome:
    """What happened to one input row; one of these becomes one line of the results file."""

    status: RowStatus
    phone: str = ""
    attendance_number: str = ""
    operators: tuple[str, ...] = ()
    http_status: int | None = None
    error_code: str = ""
    error_message: str = ""
    attempts: int = 0
    done_at: str = ""

    @property
    def error(self) -> str:
        """The ``error`` column of this row (see ``results.error_column``)."""
        import pandas as pd

        from batch_attend.results import error_column

        one = error_column(pd.Series([str(self.error_code)]), pd.Series([self.error_message]))
        return one.iloc[0]


def split_error(text: str) -> tuple[str, str]:
    """The code and sentence of an ``error`` cell (the reverse of ``results.error_column``)."""
    code, _sep, message = text.partition(": ")
    return code, message


@unique
class ExitStatus(IntEnum):
    """Process exit codes; the README's table is tested against this enum."""

    SUCCESS = 0
    ROWS_NOT_DONE = 1
    USAGE_OR_INPUT_ERROR = 2
    TOKEN_REFUSED = 3
    WHATSAPP_DISCONNECTED = 4
    WRITE_FAILED = 5
    INTERRUPTED = 130
    TERMINATED = 143


@dataclass
class RunSummary:
    """Counts and timings of a finished (or stopped) run; the CLI prints and maps it."""

    counts: Counter = field(default_factory=Counter)
    error_counts: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    sent_rows: int = 0
    decided_rows: int = 0  # rows an answer to this run's requests decided
    requests: int = 0
    retries: int = 0
    pushbacks: int = 0
    resumed: int = 0  # rows whose lead an earlier run had already done
    token_refused: bool = False
    retry_at: str | None = None  # the API asked not to be called before then: sending stopped
    write_error: str | None = None  # a file could not be written once sending had begun
    whatsapp_problem: str | None = None  # the WhatsApp number dropped while sending
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM" when the run was stopped
    output: str = ""
    dry_run: bool = False
    input: str = ""  # the input's path as given, for the XLSX Summary sheet
    started_at: str = ""  # when the run began (ISO 8601, local time with offset)
    department_column: str | None = None  # --department-column, to count rows per department

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def exit_status_for(summary: RunSummary) -> ExitStatus:
    """Map a run to the exit code promised in the README (pure, so it is tested directly)."""
    if summary.write_error:
        return ExitStatus.WRITE_FAILED
    if summary.whatsapp_problem:
        return ExitStatus.WHATSAPP_DISCONNECTED
    if summary.interrupted_by == "SIGTERM":
        return ExitStatus.TERMINATED
    if summary.interrupted_by:
        return ExitStatus.INTERRUPTED
    if summary.token_refused:
        return ExitStatus.TOKEN_REFUSED
    if summary.counts[RowStatus.INVALID] or summary.counts[RowStatus.FAILED]:
        return ExitStatus.ROWS_NOT_DONE
    if summary.dry_run:
        return ExitStatus.SUCCESS
    # Skipped rows are fine only when they are duplicates of a row that was handled.
    not_duplicates = (
        summary.counts[RowStatus.SKIPPED] - summary.error_counts[ErrorCode.DUPLICATE_ROW]
    )
    if not_duplicates > 0:
        return ExitStatus.ROWS_NOT_DONE
    return ExitStatus.SUCCESS
