"""When to try a request again, how long to wait, and how fast the run may send: one retry loop
for every request, through one run-wide gate, as a refusal for one row must slow every worker."""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from batch_attend.outcomes import ErrorCode

Answer = Any  # batch_attend.api.Answer: the client, above this module, uses the gate

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_FAILURES = frozenset(
    {ErrorCode.TIMEOUT, ErrorCode.CONNECTION_ERROR, ErrorCode.CONNECTION_LOST, ErrorCode.MALFORMED}
)
MAX_RETRY_AFTER = 600.0  #: a longer Retry-After is not waited for: the run stops, a rerun resumes
TEN_YEARS = 10 * 365 * 86400.0  # the longest Retry-After: any longer means the same
#: ``--rate N``: a start waits until the N-th before it is a second (and 10 ms) behind, so that
#: no one-second window holds N + 1 (counted as it goes to the wire, after its journal record).
WINDOW = 1.01
START_RATE = 20.0  # congestion control (see Backpressure): requests a second at first
SLOW_START = 4.0  # times the rate grows a round trip until a refusal
DOWN = 1 / 32  # a refusal brings the rate down by this share at least
SAMPLE = 16  # ... by the share of refusals among the answers since the last cut, or this many
REFUSED_SHARE = 0.02  # the share refused the rate settles at, near a limit
ACCELERATE = 1.0  # seconds without a refusal after which it climbs twice as fast
MIN_RATE = 0.5
SPACING = 0.95  # requests go to the wire at least this share of 1/rate apart
FREE_REFUSALS = 10  # limiter refusals that cost no retry; a server refusing all spends them


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), TEN_YEARS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), TEN_YEARS)


def asked_wait(answer: Answer) -> float | None:
    """The wait a 429 or 503 asks for in its ``Retry-After``, in seconds (None: none asked)."""
    return parse_retry_after(answer.retry_after) if answer.http_status in (429, 503) else None


def retryable(answer: Answer) -> bool:
    """No answer, not HTTP, or 429/500/502/503/504: any other answer would come again the same."""
    if answer.failure is not None:
        return answer.failure in RETRYABLE_FAILURES
    return answer.http_status in RETRYABLE_STATUSES


def refused(answer: Answer) -> bool:
    """A rate limiter's refusal, the run's congestion signal: 429, or 503 without Retry-After
    (nginx's ``limit_req`` answers so by default; a 503 with one is a pause asked for)."""
    status = answer.http_status
    return status == 429 or (status == 503 and answer.retry_after is None)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried again, and the backoff (full jitter) when no wait is asked."""

    retries: int = 3
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, retry_number: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * (2**retry_number)))


async def attempt(
    gate: Backpressure,
    policy: RetryPolicy,
    send: Callable[[], Awaitable[Answer]],
    *,
    before: Callable[[], Awaitable[object]] | None = None,
    judge: Callable[[Answer, float | None], bool] | None = None,
    stop: asyncio.Event | None = None,
) -> Answer | None:
    """Send one request through ``gate`` until an answer is final: the last, or None when
    ``stop`` was set first. ``before()`` is awaited as its turn comes (the ledger's record);
    ``judge(answer, wait)`` sees every answer and the wait before the next try (None: final),
    and ends the loop by returning True."""
    retry = free = 0
    stop = stop or asyncio.Event()
    while True:
        slot = await gate.turn()
        if stop.is_set():
            gate.release(slot)
            return None
        try:
            if before is not None:
                await before()
            await gate.go(slot)
            answer = await send()
        except BaseException:
            gate.release(slot)  # cut off mid-request: the journal keeps it unanswered
            raise
        congested = gate.release(slot, answer)
        wait = None
        if retryable(answer):
            asked = asked_wait(answer)
            if asked is not None and asked > MAX_RETRY_AFTER:
                pass  # not waited for: the caller stops, or leaves the request unanswered
            elif congested and free < FREE_REFUSALS:  # the run went over a limit, not the row
                free += 1
                wait = asked or 0.0
            elif retry < policy.retries:
                wait = asked if asked is not None else policy.backoff(retry)
                retry += 1
        if (judge is not None and judge(answer, wait)) or wait is None:
            return answer
        try:
            await asyncio.wait_for(stop.wait(), wait)
            return None  # stopped while waiting to go again
        except TimeoutError:
            pass


@dataclass(slots=True)
class Slot:
    """A request's turn; ``at``: when it went to the wire (``time.monotonic()``)."""

    at: float
    paced: bool = False


class Backpressure:
    """The run-wide gate every request passes (:meth:`turn`, :meth:`go`, :meth:`release`): at
    most ``concurrency`` in flight, the pauses the API asks for, the cap of ``--rate``, and
    congestion control as TCP's, whatever limiter is in front. Requests go out about 1/rate apart
    (a leaky bucket without a burst refuses closer), the rate growing SLOW_START times a round
    trip until a refusal (:func:`refused`); a refusal of a request sent since the last cut brings
    it down at once by the share refused since (as DCTCP), and every worker waits when a window's
    burst is spent; accepted answers bring it back quickly to the most the API took within a
    second, then climb so that about REFUSED_SHARE are refused, faster the longer no refusal came.
    Past what the requests in flight can reach, requests are not paced at all."""

    def __init__(self, concurrency: int, rate: float | None = None) -> None:
        self.concurrency = concurrency
        self.cap = rate
        self.pushbacks = 0  # refusals
        self.paused_until = 0.0
        self.rate: float | None = START_RATE  # None: not paced (but by the cap)
        self.srtt = 0.1  # a round trip, smoothed, until answers say
        self._places = asyncio.Semaphore(concurrency)
        self._turns = asyncio.Lock()
        self._last = self._wire = -math.inf  # the last turn given, the last request out
        self._answers: deque[tuple[float, bool]] = deque()  # the last second's, refused or not
        self._taken = 0  # accepted answers among them
        self._first = math.inf  # when the first answer was accepted
        self._best = 0.0  # the most answers accepted within a second
        self._gain, self._accel = 0.0, ACCELERATE  # growth per accepted answer, past the best
        self._cut_at = -math.inf  # when the rate was last cut
        self._got = True  # an answer was accepted since the last cut
        self._backoff = 0.0  # the pause after a cut when none was
        self._starts: deque[Slot] | None = deque(maxlen=max(1, math.floor(rate))) if rate else None

    async def turn(self) -> Slot:
        """A place among the requests in flight, after any pause, on its turn in the rate."""
        await self._places.acquire()
        try:
            now = time.monotonic()
            if self.rate is None and self._starts is None and now >= self.paused_until:
                return Slot(now)  # nothing to wait for: the usual case past slow start
            async with self._turns:  # one at a time, in order
                now = time.monotonic()
                while (due := self._due(now)) > now:
                    await asyncio.sleep(due - now)
                    now = time.monotonic()
                rate = self._pace()  # on time as booked: late wake-ups add no drift
                self._last = max(due, now - 1.0 / rate) if rate else now
            slot = Slot(now, True)
            if self._starts is not None:
                self._starts.append(slot)
            return slot
        except BaseException:
            self._places.release()
            raise

    async def go(self, slot: Slot) -> None:
        """The request goes out now, about 1/rate after the one before (its record took time)."""
        now = time.monotonic()
        if slot.paced:
            while (rate := self._pace()) and (due := self._wire + SPACING / rate) > now:
                await asyncio.sleep(due - now)
                now = time.monotonic()
        self._wire = slot.at = now

    def _due(self, now: float) -> float:
        due = self.paused_until
        if rate := self._pace():
            due = max(due, self._last + 1.0 / rate)
        starts = self._starts
        if starts is not None and len(starts) == starts.maxlen:
            due = max(due, starts[0].at + WINDOW)
        return due

    def _pace(self) -> float | None:
        """The rate requests go at: congestion control's, within the cap."""
        return self.rate if self.cap is None else min(self.rate or self.cap, self.cap)

    def _set(self, rate: float) -> None:
        self.rate = None if rate * self.srtt > 2 * self.concurrency else max(MIN_RATE, rate)

    def release(self, slot: Slot, answer: Answer | None = None) -> bool:
        """A request is done (``answer`` None: cut off). True for a refusal while the API took a
        quarter of the requests or more over the last second: the limiter's doing, not the row's."""
        self._places.release()
        if answer is None or answer.http_status is None:
            return False
        now = time.monotonic()
        asked = asked_wait(answer)
        if asked is not None and asked <= MAX_RETRY_AFTER:
            self.paused_until = max(self.paused_until, now + asked)
        answers = self._answers
        no = refused(answer)
        answers.append((now, no))
        self._taken += not no
        while answers[0][0] < now - 1.0:
            self._taken -= not answers.popleft()[1]
        if not no:
            self._first = min(self._first, now)
            self.srtt += (now - slot.at - self.srtt) / 8
            self._got = True
            if self.rate is not None:
                self._grow(now)
            return False
        self.pushbacks += 1
        if slot.at >= self._cut_at:  # sent before the last cut: it says nothing new
            self._cut(now, asked)
        return 4 * self._taken >= len(answers)

    def _grow(self, now: float) -> None:
        self._best = max(self._best, self._taken)
        rate = self.rate
        best = (1.0 - 2 * DOWN) * self._best if self._gain else math.inf  # or slow start
        if rate < best:  # SLOW_START times every round trip
            self._set(min(best, rate * SLOW_START ** (1.0 / max(1.0, rate * self.srtt))))
        else:
            since = (now - self._cut_at) / self._accel
            self._set(rate * (1.0 + self._gain * (1.0 + since * since)))

    def _cut(self, now: float, asked: float | None) -> None:
        sending = self._pace() or len(self._answers) / min(1.0, now - self._first)
        since = [no for t, no in self._answers if t > self._cut_at]
        spent = not self._got and self._taken  # a window's burst let through, now spent
        if len(since) >= 4 and (accepted := 1.0 - since.count(True) / max(len(since), SAMPLE)):
            self._best = min(self._best, sending * accepted)  # what a burst let through: gone
        else:  # too few to say: a step down, or halved when a window is spent
            accepted = 0.5 if spent else 1.0
        if asked and self._taken:  # the run stopped at the first refusal: no share says more
            sending = min(sending, self._taken / min(1.0, now - self._first))
        self._set(sending * min(1.0 - DOWN, accepted))
        if spent:
            self._backoff = min(1.0, 2 * self._backoff)
            self.paused_until = max(self.paused_until, now + self._backoff)
        else:
            self._backoff = self.srtt
        self._got = False
        self._cut_at = now
        cost = 1.0 + sending * (asked or 0.0)  # a pause costs as many requests as it holds back
        self._gain = DOWN * REFUSED_SHARE / (1.0 - REFUSED_SHARE) / cost
        self._accel = ACCELERATE * cost
