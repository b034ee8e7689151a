"""``--log-file``: one JSON line per request, for schedulers and post-mortems; the phone masked,
the token never logged."""

from __future__ import annotations

import datetime as dt
import json

from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _


class LogFileError(BatchAttendError):
    """The request log cannot be written where asked."""


def mask_phone(phone: str) -> str:
    """Only the last four digits, for logs: enough to find the row, not enough to call it."""
    return "*" * max(0, len(phone) - 4) + phone[-4:]


class RequestLog:
    def __init__(self, path) -> None:
        try:
            self._file = open(path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
        except OSError as exc:
            said = _("{path}: cannot write the request log ({strerror}).")
            raise LogFileError(said.format(path=path, strerror=exc.strerror)) from exc

    def write(self, lead, attempt: int, outcome, seconds: float, wait: float | None) -> None:
        record = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "row": lead.row,
            "phone": mask_phone(lead.phone),
            "attempt": attempt,
            "status": str(outcome.status),
            "error": str(outcome.error_code) or None,
            "http_status": outcome.http_status,
            "latency_ms": round(seconds * 1000, 1),
            "retry_in_s": None if wait is None else round(wait, 3),
        }
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()
