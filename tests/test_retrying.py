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
from batch_attend.outcomes import ErrorCode
from batch_attend.retrying import (
    TEN_YEARS,
    Backpressure,
    RetryPolicy,
    Slot,
    asked_wait,
    attempt,
    parse_retry_after,
    refused,
    retryable,
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


@pytest.mark.parametrize(
    ("answer", "again"),
    [
        (Answer(failure=ErrorCode.TIMEOUT), True),
        (Answer(failure=ErrorCode.CONNECTION_ERROR), True),
        (Answer(failure=ErrorCode.CONNECTION_LOST), True),
        (Answer(failure=ErrorCode.MALFORMED), True),
        *[(Answer(http_status=status), True) for status in (429, 500, 502, 503, 504)],
        *[
            (Answer(http_status=status), False)
            for status in (200, 400, 401, 403, 404, 405, 415, 422, 501, 505)
        ],
        (Answer(http_status=200, failure=ErrorCode.UNEXPECTED_RESPONSE), False),
    ],
)
def test_one_rule_says_what_is_tried_again(answer, again):
    assert retryable(answer) is again


@pytest.mark.parametrize(
    ("status", "header", "congestion"),
    [(429, None, True), (429, "1", True), (503, None, True), (503, "1", False), (500, None, False)],
)
def test_a_429_or_a_503_without_retry_after_is_a_limiter_refusing(status, header, congestion):
    assert refused(Answer(http_status=status, retry_after=header)) is congestion


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


ACCEPTED = Answer(http_status=200, body=b"true")
REFUSED = Answer(http_status=503)


async def one(gate: Backpressure, answer: Answer | None = ACCEPTED, *, late: float = 0.0) -> Slot:
    """A request through the gate, answered with ``answer``, ``late`` seconds after it left."""
    slot = await gate.turn()
    await gate.go(slot)
    slot.at -= late
    gate.release(slot, answer)
    return slot


def test_a_retry_after_pauses_everyone_without_lowering_the_rate():
    async def scenario():
        gate = Backpressure(concurrency=8)
        await one(gate, Answer(http_status=503, retry_after="1"))
        t0 = time.perf_counter()
        await gate.turn()
        return time.perf_counter() - t0, gate.rate, gate.pushbacks

    waited, rate, pushbacks = asyncio.run(scenario())
    assert waited >= 0.9
    assert rate >= retrying.START_RATE and pushbacks == 0


def test_slow_start_then_a_refusal_takes_the_rate_down_by_the_share_refused_for_everyone():
    """Not to what a short sample holds: 40 accepted and one refused is a step down."""

    async def scenario():
        gate = Backpressure(concurrency=8)
        for _ in range(40):
            await one(gate)
        before = gate.rate
        await one(gate, REFUSED)
        return before, gate.rate, gate.pushbacks

    before, after, pushbacks = asyncio.run(scenario())
    assert before > 4 * retrying.START_RATE  # slow start: doubling every round trip
    assert after == pytest.approx(before * (1 - retrying.DOWN), rel=0.05)
    assert pushbacks == 1


def test_a_refusal_of_a_request_sent_before_the_cut_cuts_no_more():
    async def scenario():
        gate = Backpressure(concurrency=8)
        for _ in range(20):
            await one(gate)
        early = await gate.turn()
        await gate.go(early)
        await one(gate, REFUSED)
        cut = gate.rate
        gate.release(early, REFUSED)  # in flight at the cut
        return cut, gate.rate, gate.pushbacks

    cut, after, pushbacks = asyncio.run(scenario())
    assert after == cut and pushbacks == 2


def test_behind_a_leaky_bucket_the_rate_settles_near_it_and_climbs_back_within_seconds():
    """nginx's limit_req without a burst at 100/s, answers 20 ms later; then, for a fifth of a
    second, every request refused (a colleague's burst): the run is back near the limit within
    two seconds."""
    limit, blocked = 100.0, [0.0, 0.0]
    last = -1.0

    async def scenario():
        nonlocal last
        gate = Backpressure(concurrency=8)
        accepted: list[float] = []
        refusals = 0

        async def request():
            nonlocal last, refusals
            slot = await gate.turn()
            await gate.go(slot)
            ok = slot.at - last >= 1 / limit and not blocked[0] <= slot.at < blocked[1]
            last = slot.at if ok else last
            await asyncio.sleep(0.02 if ok else 0.001)
            gate.release(slot, ACCEPTED if ok else REFUSED)
            refusals += not ok
            if ok:
                accepted.append(time.monotonic())

        async def worker(until):
            while time.monotonic() < until:
                await request()

        t0 = time.monotonic()
        await asyncio.gather(*(worker(t0 + 2.5) for _ in range(8)))
        settled = sum(1 for t in accepted if t > t0 + 1.5)
        share = refusals / (len(accepted) + refusals)
        blocked[:] = [time.monotonic(), time.monotonic() + 0.2]
        t1 = time.monotonic()
        await asyncio.gather(*(worker(t1 + 2.5) for _ in range(8)))
        back = sum(1 for t in accepted if t1 + 1.5 < t <= t1 + 2.5)
        return settled, share, back

    settled, share, back = asyncio.run(scenario())
    assert settled >= 0.8 * limit
    assert share <= 0.1
    assert back >= 0.8 * limit


def test_nothing_getting_through_backs_everyone_off_longer_each_time():
    """A window that let a burst through and refuses everything until it slides."""

    async def scenario():
        gate = Backpressure(concurrency=4)
        for _ in range(10):
            await one(gate)
        pauses = []
        for _ in range(4):
            await one(gate, REFUSED)
            pauses.append(gate.paused_until - time.monotonic())
        return pauses

    pauses = asyncio.run(scenario())
    assert pauses[0] <= 0.01  # something got through before the first: no pause
    assert 0 < pauses[1] < pauses[2] < pauses[3] <= 1.0


def test_an_answer_however_late_is_taken_in():
    """It used to empty the deque of recent answers and then read its first item."""

    async def scenario():
        gate = Backpressure(concurrency=2)
        for late in (12.0, 31.0, 3600.0):
            await one(gate, late=late)
        await one(gate, REFUSED, late=12.0)
        return gate.srtt

    assert asyncio.run(scenario()) > 1.0


def test_a_refusal_while_most_are_taken_costs_no_retry():
    async def scenario():
        gate = Backpressure(concurrency=2)
        for _ in range(3):
            await one(gate)  # the API takes requests
        answers = iter([REFUSED, REFUSED, ACCEPTED])
        sent = []

        async def send():
            sent.append(1)
            return next(answers)

        last = await attempt(gate, RetryPolicy(retries=0), send)
        return last, len(sent)

    last, sent = asyncio.run(scenario())
    assert (last, sent) == (ACCEPTED, 3)


def test_a_refusal_when_nothing_is_taken_spends_the_retries():
    async def scenario():
        gate = Backpressure(concurrency=2)
        sent = []

        async def send():
            sent.append(1)
            return REFUSED

        last = await attempt(gate, RetryPolicy(retries=1, base=0.01), send)
        return last, len(sent)

    assert asyncio.run(scenario()) == (REFUSED, 2)


def test_gate_never_lets_more_than_the_concurrency_in():
    async def scenario():
        gate = Backpressure(concurrency=3)
        gate.rate = None  # past slow start
        peak = in_flight = 0

        async def one_slow():
            nonlocal peak, in_flight
            slot = await gate.turn()
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            gate.release(slot)

        await asyncio.gather(*(one_slow() for _ in range(40)))
        return peak

    assert asyncio.run(scenario()) == 3


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times))


def test_rate_cap_never_lets_more_than_n_start_in_any_second_even_when_the_loop_is_late():
    async def scenario():
        gate = Backpressure(concurrency=40, rate=50)
        gate.rate = None  # past slow start: the cap alone
        starts = []

        async def request(i):
            slot = await gate.turn()
            await gate.go(slot)
            starts.append(time.monotonic())  # the clock the promise is kept on
            if i == 30:
                time.sleep(0.3)  # the loop blocked: the requests due meanwhile are late
            gate.release(slot)

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
    the window is kept on the moment it goes (Backpressure.go)."""

    async def scenario():
        gate = Backpressure(concurrency=20, rate=10)
        gate.rate = None
        wire = []

        async def request(i):
            slot = await gate.turn()
            if i in (0, 13):
                await asyncio.sleep(0.08)  # a slow journal record
            await gate.go(slot)
            wire.append(time.monotonic())
            gate.release(slot)

        await asyncio.gather(*(request(i) for i in range(31)))
        return wire

    wire = asyncio.run(scenario())
    assert most_in_one_second(sorted(wire)) <= 10


def test_paced_requests_leave_at_least_nearly_one_interval_apart_on_the_wire():
    """A leaky bucket without a burst refuses a request closer than 1/rate to the one before:
    a quick journal record after a slow one must not bring two requests together."""

    async def scenario():
        gate = Backpressure(concurrency=8)
        gate.rate = 20.0
        gate._gain = 1e-9  # past slow start, the rate held
        wire = []

        async def request(i):
            slot = await gate.turn()
            await asyncio.sleep(0.04 if i % 2 == 0 else 0.0)  # records of unequal length
            await gate.go(slot)
            wire.append(time.monotonic())
            gate.release(slot)

        await asyncio.gather(*(request(i) for i in range(12)))
        return sorted(wire)

    gaps = [b - a for a, b in itertools.pairwise(asyncio.run(scenario()))]
    assert min(gaps) >= retrying.SPACING / 20 - 0.002
