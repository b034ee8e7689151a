"""The exit-code mapping promised in the README."""

from collections import Counter

import pytest

from batch_attend.outcomes import (
    ErrorCode,
    ExitStatus,
    Outcome,
    RowStatus,
    RunSummary,
    Stop,
    exit_status_for,
)
from batch_attend.sentences import render


def summary_of(*outcomes, **kwargs) -> RunSummary:
    return RunSummary(
        counts=Counter(o.status for o in outcomes),
        error_counts=Counter(o.error_code for o in outcomes if o.error_code),
        **kwargs,
    )


STARTED = Outcome(RowStatus.STARTED)
ALREADY = Outcome(RowStatus.ALREADY_IN_SERVICE)
DUPLICATE = Outcome(RowStatus.SKIPPED, error_code=ErrorCode.DUPLICATE_ROW)
INVALID = Outcome(RowStatus.INVALID, error_code=ErrorCode.INVALID_PHONE)
FAILED = Outcome(RowStatus.FAILED, error_code=ErrorCode.SERVER_ERROR)
UNSENT = Outcome(RowStatus.SKIPPED, error_code=ErrorCode.UNAUTHORIZED)
DRY = Outcome(RowStatus.SKIPPED, error_code=ErrorCode.DRY_RUN)
TOTALS = Outcome(RowStatus.SKIPPED, error_code=ErrorCode.NOT_A_LEAD)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (summary_of(STARTED, ALREADY), ExitStatus.SUCCESS),
        (summary_of(STARTED, DUPLICATE), ExitStatus.SUCCESS),
        (summary_of(STARTED, INVALID), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, FAILED), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, UNSENT), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, TOTALS), ExitStatus.SUCCESS),
        (summary_of(STARTED, UNSENT, stop=Stop.UNAUTHORIZED), ExitStatus.TOKEN_REFUSED),
        (summary_of(DRY, DRY, stop=Stop.DRY_RUN), ExitStatus.SUCCESS),
        (summary_of(DRY, INVALID, stop=Stop.DRY_RUN), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, stop=Stop.SIGINT), ExitStatus.INTERRUPTED),
        (summary_of(STARTED, stop=Stop.SIGTERM), ExitStatus.TERMINATED),
        (summary_of(STARTED, stop=Stop.WHATSAPP), ExitStatus.WHATSAPP_DISCONNECTED),
        (summary_of(STARTED, stop=Stop.RATE_LIMITED), ExitStatus.SUCCESS),
        (summary_of(STARTED, stop=Stop.SIGINT, write_error="disk full"), ExitStatus.WRITE_FAILED),
    ],
)
def test_exit_status_for(summary, expected):
    assert exit_status_for(summary) is expected


def test_every_stop_says_its_code_and_the_unsent_rows_reason():
    assert Stop.named("SIGTERM") is Stop.SIGTERM and Stop.named(None) is None
    code, sentence = Stop.RATE_LIMITED.unsent("2030-01-01T00:00:00-03:00")
    assert code == ErrorCode.RATE_LIMITED and "2030-01-01T00:00:00-03:00" in sentence
    assert render(Stop.SIGINT.unsent()[1]).startswith(
        "not finished: the run was interrupted (SIGINT)"
    )


def test_exit_codes_are_the_documented_numbers():
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 3, 4, 5, 130, 143]
