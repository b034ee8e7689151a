"""The retry policy and the run-wide backpressure gate, on their own."""

import asyncio
import bisect
import email.utils
import itertools
import random
import statistics
import time

import pytest

from batch_attend import retrying
from batch_attend.api import Answer
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.retrying import (
    TEN_YEARS,
    Backpressure,
    RetryPolicy,
    asked_wait,
    parse_retry_after,
)


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


@pytest.mark.parametrize(
    ("status", "header", "expected"),
    [(429, "2", 2.0), (503, "2", 2.0), (429, None, None), (500, "2", None), (200, "2", None)],
)
def test_only_429_and_503_ask_for_a_wait(status, header, expected):
    assert asked_wait(Answer(http_status=status, retry_after=header)) == expected


def test_retry_after_is_bounded_to_ten_years():
    assert parse_retry_after("9" * 5000) == TEN_YEARS
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == TEN_YEARS


def test_push_back_with_retry_after_pauses_everyone():
    async def scenario():
        gate = Backpressure(concurrency=8)
        gate.push_back(0.3, rate_limited=False)
        t0 = time.perf_counter()
        await gate.acquire()
        return time.perf_counter() - t0, gate.learned, gate.pushbacks

    waited, learned, pushbacks = asyncio.run(scenario())
    assert waited >= 0.28
    assert (learned, pushbacks) == (None, 0)  # a 503's wait: no rate learned from it


def test_a_429_pauses_everyone_then_the_rate_is_what_was_taken_and_it_rises(monkeypatch):
    monkeypatch.setattr(retrying, "RAISE_AFTER", 1.5)

    async def scenario():
        loop = asyncio.get_running_loop()
        gate = Backpressure(concurrency=8)
        for _ in range(40):  # 40 taken; the next is refused
            await gate.acquire()
            gate.release((await gate.pace()).sent_at)
        await gate.acquire()
        gate.release()
        t0 = loop.time()
        gate.push_back(None, rate_limited=True)
        paused = gate.paused_until - t0
        gate.push_back(None, rate_limited=True)  # in flight at the same time: no second cut
        await gate.acquire()  # waits out the second, then learns from the one before
        waited = loop.time() - t0
        first = gate.learned
        gate.release()
        await asyncio.sleep(1.6)  # RAISE_AFTER, from when the rate was learned
        await gate.acquire()
        gate.release((await gate.pace()).sent_at)
        return first, paused, waited, gate.learned, gate.pushbacks

    first, paused, waited, raised, pushbacks = asyncio.run(scenario())
    assert first == pytest.approx(38.0)
    assert paused == pytest.approx(1.0, abs=0.01) and waited >= 0.99
    assert raised == pytest.approx(38.0 * retrying.RAISE_BY)
    assert pushbacks == 2


def test_gate_never_lets_more_than_the_concurrency_in():
    async def scenario():
        gate = Backpressure(concurrency=3)
        peak = 0

        async def one():
            nonlocal peak
            await gate.acquire()
            peak = max(peak, gate.in_flight)
            await asyncio.sleep(0.01)
            gate.release()

        await asyncio.gather(*(one() for _ in range(40)))
        return peak

    assert asyncio.run(scenario()) == 3


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times))


def test_rate_cap_never_lets_more_than_n_start_in_any_second_even_when_the_loop_is_late():
    async def scenario():
        gate = Backpressure(concurrency=40, rate=50)
        starts = []

        async def request(i):
            await gate.acquire()
            await gate.pace()
            starts.append(time.monotonic())  # the clock the promise is kept on
            if i == 30:
                time.sleep(0.3)  # the loop blocked: the requests due meanwhile are late
            gate.release()

        await asyncio.gather(*(request(i) for i in range(120)))
        return starts

    starts = asyncio.run(scenario())
    assert most_in_one_second(starts) <= 50
    assert 2.3 <= max(starts) - min(starts) < 4  # 120 requests at 50/s: about 2.4 s
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts)[:30])]
    # Spaced evenly, not in bursts; a late wake-up shortens the gap after it, so the median,
    # not the least, says how they go.
    assert statistics.median(gaps) > 0.015


def test_rate_cap_counts_a_start_when_it_goes_to_the_wire_not_when_its_turn_came():
    """What comes between a request's turn and the wire (its journal record) may take a while:
    the window is kept on the moment it goes (Slot.stamp)."""

    async def scenario():
        gate = Backpressure(concurrency=20, rate=10)
        wire = []

        async def request(i):
            await gate.acquire()
            slot = await gate.pace()
            if i in (0, 13):
                await asyncio.sleep(0.08)  # a slow journal record
            slot.stamp()
            wire.append(time.monotonic())
            gate.release()

        await asyncio.gather(*(request(i) for i in range(31)))
        return wire

    wire = asyncio.run(scenario())
    assert most_in_one_second(sorted(wire)) <= 10
