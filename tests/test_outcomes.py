"""The exit-code mapping promised in the README."""

from collections import Counter

import pytest

from batch_attend.outcomes import (
    ErrorCode,
    ExitStatus,
    Outcome,
    RowStatus,
    RunSummary,
    exit_status_for,
)


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


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (summary_of(STARTED, ALREADY), ExitStatus.SUCCESS),
        (summary_of(STARTED, DUPLICATE), ExitStatus.SUCCESS),
        (summary_of(STARTED, INVALID), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, FAILED), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, UNSENT), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, UNSENT, token_refused=True), ExitStatus.TOKEN_REFUSED),
        (summary_of(DRY, DRY, dry_run=True), ExitStatus.SUCCESS),
        (summary_of(DRY, INVALID, dry_run=True), ExitStatus.ROWS_NOT_DONE),
        (summary_of(STARTED, interrupted_by="SIGINT"), ExitStatus.INTERRUPTED),
        (summary_of(STARTED, interrupted_by="SIGTERM"), ExitStatus.TERMINATED),
    ],
)
def test_exit_status_for(summary, expected):
    assert exit_status_for(summary) is expected


def test_exit_codes_are_the_documented_numbers():
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 3, 4, 5, 130, 143]
