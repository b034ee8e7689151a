"""The retry policy and the run-wide backpressure gate, on their own."""

import asyncio
import email.utils
import itertools
import random
import time

import pytest

from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.retrying import Backpressure, RetryPolicy, parse_retry_after


def test_parse_retry_after_seconds_and_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    now = time.time()
    later = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(later, now=now) <= 31
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def failed(code, http_status=None):
    return Outcome(RowStatus.FAILED, error_code=code, http_status=http_status)


@pytest.mark.parametrize(
    ("outcome", "retryable"),
    [
        (failed(ErrorCode.TIMEOUT), True),
        (failed(ErrorCode.CONNECTION_ERROR), True),
        (failed(ErrorCode.CONNECTION_LOST), True),
        (failed(ErrorCode.SERVER_ERROR, 500), True),
        (failed(ErrorCode.SERVER_ERROR, 502), True),
        (failed(ErrorCode.SERVER_ERROR, 503), True),
        (failed(ErrorCode.SERVER_ERROR, 504), True),
        (failed(ErrorCode.RATE_LIMITED, 429), True),
        (failed(ErrorCode.SERVER_ERROR, 501), False),
        (failed(ErrorCode.SERVER_ERROR, 505), False),
        (failed(ErrorCode.BAD_REQUEST, 400), False),
        (Outcome(RowStatus.SKIPPED, error_code=ErrorCode.UNAUTHORIZED, http_status=401), False),
        (failed(ErrorCode.FORBIDDEN, 403), False),
        (failed(ErrorCode.NOT_FOUND, 404), False),
        (failed(ErrorCode.METHOD_NOT_ALLOWED, 405), False),
        (failed(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415), False),
        (failed(ErrorCode.BAD_REQUEST, 422), False),
        (failed(ErrorCode.UNEXPECTED_RESPONSE, 200), False),
        (failed(ErrorCode.NOT_STARTED, 200), False),
        (Outcome(RowStatus.STARTED, http_status=200), False),
    ],
)
def test_only_transient_answers_are_retried(outcome, retryable):
    assert RetryPolicy().is_retryable(outcome) is retryable


def test_backoff_is_exponential_with_full_jitter():
    policy = RetryPolicy(base=1.0, cap=5.0, rng=random.Random(7))
    for n, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (10, 5.0)]:
        samples = [policy.backoff(n) for _ in range(300)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > 0.8 * ceiling and min(samples) < 0.2 * ceiling  # spread, not fixed


def test_retry_after_wins_over_backoff():
    assert RetryPolicy(base=100).delay(0, "2") == 2.0


def test_push_back_pauses_everyone_halves_the_limit_and_recovers():
    async def scenario():
        gate = Backpressure(concurrency=8)
        gate.push_back(0.3)
        assert gate.limit == 4 and gate.pushbacks == 1
        t0 = time.perf_counter()
        await gate.acquire()
        waited = time.perf_counter() - t0
        gate.release(ok=True)
        for _ in range(4 + 5 + 6 + 7):  # a window of successes per step back up
            await gate.acquire()
            gate.release(ok=True)
        return waited, gate.limit

    waited, limit = asyncio.run(scenario())
    assert waited >= 0.28
    assert limit == 8


def test_gate_never_lets_more_than_the_limit_in():
    async def scenario():
        gate = Backpressure(concurrency=6)
        gate.push_back(0)
        peak = 0

        async def one():
            nonlocal peak
            await gate.acquire()
            peak = max(peak, gate.in_flight)
            await asyncio.sleep(0.01)
            gate.release(ok=False)

        await asyncio.gather(*(one() for _ in range(40)))
        return peak

    assert asyncio.run(scenario()) == 3


def test_rate_cap_spaces_requests():
    async def scenario():
        gate = Backpressure(concurrency=8, rate=20)
        t0 = time.perf_counter()
        for _ in range(21):
            await gate.acquire()
            gate.release(ok=True)
        return time.perf_counter() - t0

    assert 0.85 <= asyncio.run(scenario()) < 3  # 21 requests at 20/s: about 0.95 s


def test_rate_cap_paces_concurrent_requests_evenly():
    async def scenario():
        gate = Backpressure(concurrency=40, rate=100)  # bursts of 10, then one every 10 ms
        t0 = asyncio.get_running_loop().time()
        passed = []

        async def request():
            await gate.acquire()
            passed.append(asyncio.get_running_loop().time() - t0)
            gate.release(ok=True)

        await asyncio.gather(*(request() for _ in range(30)))
        return sorted(passed)

    passed = asyncio.run(scenario())
    assert passed[9] < 0.05  # the burst goes at once
    assert 0.18 <= passed[-1] < 0.5  # the other 20 at 100/s: about 0.2 s
    gaps = [b - a for a, b in itertools.pairwise(passed[10:])]
    assert min(gaps) > 0.005  # spaced, not bunched
