"""When to try a row again, how long to wait, and how the whole run slows down when pushed back.

Two small objects instead of a general retry library, because the decisions here are shared
across workers: a 429 for one row pauses every worker and lowers the rate of the whole run, and
the request count per row must be exact for the ``attempts`` column.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batch_attend.outcomes import ErrorCode, Outcome

if TYPE_CHECKING:
    from batch_attend.api import Answer

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_FAILURES = frozenset(
    {ErrorCode.TIMEOUT, ErrorCode.CONNECTION_ERROR, ErrorCode.CONNECTION_LOST, ErrorCode.MALFORMED}
)
#: A Retry-After longer than this is not waited for: the run stops, and a rerun resumes it.
MAX_RETRY_AFTER = 600.0
TEN_YEARS = 10 * 365 * 86400.0
#: ``--rate N``: a start waits until the N-th start before it is this far behind: a second, and
#: ten milliseconds of margin, so that no one-second window holds N + 1. A start's time is the
#: moment it goes to the wire (:meth:`Slot.stamp`, after its journal record), not its turn.
WINDOW = 1.01
#: The learned rate never goes below MIN_RATE, and rises by RAISE_BY after RAISE_AFTER seconds
#: without a 429.
MIN_RATE = 0.5
RAISE_AFTER = 10.0
RAISE_BY = 1.025  # in small steps: each step past the limit costs a pause
#: How much of a pause the rate measured after it looks past (a longer pause: the rate is
#: measured on less than a second, and is found again by the rises).
PAUSE_ALLOWANCE = 10.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None;
    at most ten years (any longer wait means the same, and stays a date a computer can show)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), TEN_YEARS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return min(max(0.0, when.timestamp() - now), TEN_YEARS)


def asked_wait(answer: Answer) -> float | None:
    """The wait a 429 or 503 asks for in its ``Retry-After``, in seconds (None: none asked)."""
    if answer.http_status not in (429, 503):
        return None
    return parse_retry_after(answer.retry_after)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; only answers that may succeed later are retried.

    Never retried: 400/401/403/404/405/415/422 and every answer that is not a network failure,
    500/502/503/504 or 429 — sending them again would give the same answer.
    """

    retries: int = 3
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def is_retryable(self, outcome: Outcome) -> bool:
        if outcome.error_code in RETRYABLE_FAILURES:
            return True
        return outcome.http_status in RETRYABLE_STATUSES and outcome.error_code in (
            ErrorCode.SERVER_ERROR,
            ErrorCode.RATE_LIMITED,
        )

    def backoff(self, retry_number: int) -> float:
        """Full jitter: uniform between 0 and ``base * 2**n``, capped."""
        return self.rng.uniform(0, min(self.cap, self.base * (2**retry_number)))


class Pacer:
    """Spreads request starts evenly, ``rate`` a second: each request books the next free slot
    and sleeps until it, again only when the window below holds it back (aiolimiter instead
    wakes all its waiters again and again).

    With ``cap`` (``--rate``), also never more than ``cap`` starts in any one-second window,
    however late the loop wakes a sleeper: the last ``cap`` start times are kept and checked.
    """

    def __init__(self, rate: float, cap: int | None = None) -> None:
        self.rate = rate
        self._next = 0.0  # the next free slot
        self._starts: deque[list[float]] | None = deque(maxlen=cap) if cap else None

    async def acquire(self) -> list[float] | None:
        """Wait for the turn; returns the start's time as kept (for :meth:`Slot.stamp`)."""
        # time.monotonic, not the loop's clock: uvloop's moves in whole milliseconds, which
        # would eat the window's margin.
        now = time.monotonic()
        due = max(self._next, now)
        self._next = due + 1.0 / self.rate
        starts = self._starts
        while True:
            if starts is not None and len(starts) == starts.maxlen:
                due = max(due, starts[0][0] + WINDOW)
            if due <= now:
                break
            await asyncio.sleep(due - now)
            now = time.monotonic()
        if starts is None:
            return None
        cell = [now]
        starts.append(cell)
        return cell


@dataclass(slots=True)
class Slot:
    """A request's turn in the rate."""

    sent_at: float  # the loop's clock: what :meth:`Backpressure.release` counts
    _cell: list[float] | None = None

    def stamp(self) -> None:
        """The request goes to the wire now: its start is kept at this moment (later than its
        turn by what came between, such as its journal record)."""
        if self._cell is not None:
            self._cell[0] = time.monotonic()


class Backpressure:
    """The run-wide gate every request passes: at most ``concurrency`` requests in flight, a
    pause every worker keeps when the API sends ``Retry-After``, a rate learned from 429s, and
    the fixed cap of ``--rate``.

    The learned rate: on a 429 (once a second at most, whatever number of 429s the requests in
    flight bring back), every worker pauses for its ``Retry-After``, or a second without one
    (the second's allowance is spent: requests sent into it would only be refused). When the
    pause ends, the answers to the requests in flight have come, and the run goes on at what
    the API took in the second before the 429 (requests it answered otherwise), less 5%; then
    2.5% more after every ten seconds without a 429, to find a limit the API has raised. A
    per-second limit is then met from below instead of overshot again and again.
    """

    def __init__(self, concurrency: int, rate: float | None = None) -> None:
        self.concurrency = concurrency
        self.in_flight = 0
        self.paused_until = 0.0
        self.pushbacks = 0
        self.cap = rate
        self.learned: float | None = None
        self._pacer = Pacer(rate, cap=max(1, math.floor(rate))) if rate else None
        self._taken: deque[float] = deque()  # when the requests the API took were sent
        self._pause = (0.0, 0.0)  # the last pause, start and end
        self._measure: tuple[float, float] | None = None  # the second to learn the rate from
        self._changed = -math.inf  # when the learned rate last changed
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> None:
        """Wait for a place among the requests in flight (and the end of a pause); then
        :meth:`pace`."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.paused_until - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self._measure is not None:
                since, until = self._measure
                self._measure = None
                self._learn(0.95 * sum(1 for t in self._taken if since <= t < until), loop.time())
            if self.in_flight < self.concurrency:
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the free place goes to another
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_flight += 1

    async def pace(self) -> Slot:
        """Wait for the request's turn in the rate; the slot says when (the loop's clock)."""
        cell = await self._pacer.acquire() if self._pacer is not None else None
        return Slot(asyncio.get_running_loop().time(), cell)

    def release(self, taken: float | None = None) -> None:
        """A request is done; ``taken``: the API answered it (not with a 429), and it was sent
        then (what :meth:`acquire` returned)."""
        self.in_flight -= 1
        now = asyncio.get_running_loop().time()
        if taken is not None:
            self._taken.append(taken)
            while self._taken[0] < now - 1.0 - PAUSE_ALLOWANCE:
                self._taken.popleft()
        if self.learned is not None and now - self._changed >= RAISE_AFTER:
            self._learn(self.learned * RAISE_BY, now)
        self._wake_one()

    def push_back(self, retry_after: float | None, *, rate_limited: bool) -> None:
        """The API said slow down: with ``retry_after``, every worker waits that long; a 429
        (``rate_limited``) also pauses every worker and lowers the learned rate."""
        now = asyncio.get_running_loop().time()
        pause = retry_after or 0.0
        if rate_limited:
            self.pushbacks += 1
            if now - self._changed >= 1.0 and self._measure is None:
                start, end = self._pause  # a pause in the second before does not count
                paused = max(0.0, min(end, now) - max(start, now - 1.0))
                self._measure = (now - 1.0 - min(paused, PAUSE_ALLOWANCE), now)
                self._changed = now
                pause = max(pause, 1.0)
        if pause > 0:
            start = max(self.paused_until, now)
            self.paused_until = max(self.paused_until, now + pause)
            self._pause = (start, self.paused_until)

    def _learn(self, rate: float, now: float) -> None:
        self.learned = max(MIN_RATE, rate)
        self._changed = now
        rate = min(self.learned, self.cap) if self.cap else self.learned
        if self._pacer is None:
            self._pacer = Pacer(rate)
        self._pacer.rate = rate

    def _wake_one(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return
