"""The results contract in code: columns, row statuses, error codes, per-row outcomes, exit codes,
defined once, here, for every other module."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum, IntEnum, StrEnum, unique

from batch_attend import sentences

#: The columns every results file ends with, in this order (tested against the README's table),
#: and their names in Portuguese results (an XLSX for a Portuguese reader), as its statuses'
#: below: fixed here, not in the catalog, so such a file is always recognised when handed back.
PORTUGUESE_COLUMNS = {
    "row": "linha",
    "phone": "telefone enviado",
    "status": "situação",
    "attendance_number": "número do atendimento",
    "operators": "operadores enviados",
    "http_status": "status HTTP",
    "error": "motivo",
    "attempts": "tentativas",
    "done_at": "concluída em",
    "department": "departamento enviado",
}
RESULT_COLUMNS = tuple(PORTUGUESE_COLUMNS)


@unique
class RowStatus(StrEnum):
    STARTED = "started"
    ALREADY_IN_SERVICE = "already_in_service"
    INVALID = "invalid"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNDONE = "undone"  # started, then finished by ``batch-attend undo``: a later run sends it


PORTUGUESE_STATUSES = dict(zip(RowStatus, (
    "iniciada", "já em atendimento", "inválida", "com falha", "não enviada", "desfeita"
), strict=True))  # fmt: skip

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
    NOT_A_LEAD = "not_a_lead"
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
    # notes on an undone row
    FINISHED = "finished"
    NOTHING_TO_FINISH = "nothing_to_finish"


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
    department: str = ""  # the department ID sent

    @property
    def error(self) -> str:
        """The ``error`` column of this row, in the current language."""
        code, message = str(self.error_code), sentences.render(self.error_message)
        return f"{code}: {message}" if code and message else code


def split_error(text: str) -> tuple[str, str]:
    """The code and sentence of an ``error`` cell."""
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


class Stop(Enum):
    """Why sending ended early: the engine's name for it, the exit code, and the code and sentence
    the rows left unsent are ``skipped`` with (a person reads :func:`run.closing_message`)."""

    DRY_RUN = ("dry_run", ExitStatus.SUCCESS, sentences.DRY_RUN)
    UNAUTHORIZED = ("unauthorized", ExitStatus.TOKEN_REFUSED, sentences.TOKEN_REFUSED_EARLIER)
    RATE_LIMITED = ("rate_limited", ExitStatus.ROWS_NOT_DONE, sentences.NOT_SENT_RETRY_AT)
    WHATSAPP = (
        "whatsapp_disconnected",
        ExitStatus.WHATSAPP_DISCONNECTED,
        sentences.WHATSAPP_DROPPED,
    )
    WRITE_FAILED = ("write_failed", ExitStatus.WRITE_FAILED, sentences.JOURNAL_FAILED)
    SIGINT = ("SIGINT", ExitStatus.INTERRUPTED, sentences.NOT_FINISHED)
    SIGTERM = ("SIGTERM", ExitStatus.TERMINATED, sentences.NOT_FINISHED)

    def __init__(self, name: str, exit_status: ExitStatus, sentence: str):
        self.key, self.exit_status, self.sentence = name, exit_status, sentence
        # The code of the rows it leaves unsent: its own, or (a write failure, a signal) interrupted.
        self.code = ErrorCode(name) if name in set(ErrorCode) else ErrorCode.INTERRUPTED

    @classmethod
    def named(cls, name: str | None) -> Stop | None:
        """The stop of the engine's ``name`` for it (None: it did not stop early)."""
        return next((stop for stop in cls if stop.key == name), None) if name else None

    @property
    def interrupted(self) -> bool:
        return self in (Stop.SIGINT, Stop.SIGTERM)

    def unsent(self, when: str | None = None) -> tuple[ErrorCode, str]:
        """The code and sentence of the rows this stop left unsent."""
        return self.code, self.sentence.format(when=when, signal=self.key)


@dataclass
class RunSummary:
    """Counts and timings of a finished (or stopped) run; the CLI prints and maps it."""

    counts: Counter = field(default_factory=Counter)
    error_counts: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    decided_rows: int = 0  # rows an answer to this run's requests decided
    requests: int = 0
    retries: int = 0
    pushbacks: int = 0
    resumed: int = 0  # rows whose lead an earlier run had already done
    stop: Stop | None = None  # why sending ended early
    retry_at: str | None = None  # the API asked not to be called before then: sending stopped
    write_error: str | None = None  # a file could not be written once sending had begun
    whatsapp_problem: str | None = None  # what the WhatsApp status said when it dropped
    output: str = ""
    dry_run: bool = False
    input: str = ""  # the input's path as given, for the XLSX Summary sheet
    started_at: str = ""  # when the run began (ISO 8601, local time with offset)
    #: The account's names, by operator and department ID.
    names: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def exit_status_for(summary: RunSummary) -> ExitStatus:
    """Map a run to the exit code promised in the README (pure, so it is tested directly)."""
    if summary.write_error:
        return ExitStatus.WRITE_FAILED
    stop = summary.stop
    if stop is not None and stop.exit_status not in (ExitStatus.SUCCESS, ExitStatus.ROWS_NOT_DONE):
        return stop.exit_status
    if summary.counts[RowStatus.INVALID] or summary.counts[RowStatus.FAILED]:
        return ExitStatus.ROWS_NOT_DONE
    # Skipped rows are fine when a dry run left them unsent or they are no lead (a duplicate, a
    # totals row under the leads).
    fine = (ErrorCode.DRY_RUN, ErrorCode.DUPLICATE_ROW, ErrorCode.NOT_A_LEAD)
    if summary.counts[RowStatus.SKIPPED] > sum(summary.error_counts[code] for code in fine):
        return ExitStatus.ROWS_NOT_DONE
    return ExitStatus.SUCCESS
