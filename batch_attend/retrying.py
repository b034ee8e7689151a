"""When to try a row again, how long to wait, and how the whole run slows down when pushed back.

Two small objects instead of a general retry library, because the decisions here are shared
across workers: a 429 for one row pauses every worker and lowers how many requests may be in
flight, and the request count per row must be exact for the ``attempts`` column.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import deque
from dataclasses import dataclass, field

from batch_attend.outcomes import ErrorCode, Outcome

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_FAILURES = frozenset(
    {ErrorCode.TIMEOUT, ErrorCode.CONNECTION_ERROR, ErrorCode.CONNECTION_LOST}
)
#: A Retry-After longer than this is not waited for: the row fails with the server's reason.
MAX_RETRY_AFTER = 600.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


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

    def delay(self, retry_number: int, retry_after: str | None = None) -> float:
        """How long to wait before retry number ``retry_number`` (0-based)."""
        asked = parse_retry_after(retry_after)
        if asked is not None:
            return asked
        return self.backoff(retry_number)


class Pacer:
    """At most ``rate`` requests a second, in bursts of at most a tenth of a second's worth, so
    the API sees an even stream (``--rate``).

    Each request books the next free slot and sleeps once until it (the generic cell rate
    algorithm), where aiolimiter wakes all its waiters again and again while they wait.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (max(1.0, rate / 10) - 1) * self.interval  # the burst, in seconds
        self._next = 0.0  # when the next request is due if none has gone ahead of time

    async def acquire(self) -> None:
        now = asyncio.get_running_loop().time()
        due = max(self._next, now)
        self._next = due + self.interval
        wait = due - self.tolerance - now
        if wait > 0:
            await asyncio.sleep(wait)


class Backpressure:
    """The run-wide gate every request passes: a pause after a 429, an adaptive limit on requests
    in flight (halved on each push-back, raised by one after a window of successes), and an
    optional fixed rate cap (``--rate``).
    """

    def __init__(self, concurrency: int, rate: float | None = None) -> None:
        self.max_limit = concurrency
        self.limit = concurrency
        self.in_flight = 0
        self.paused_until = 0.0
        self.pushbacks = 0
        self.lowest_limit = concurrency
        self._successes = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._limiter = Pacer(rate) if rate else None

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = self.paused_until - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self.in_flight < self.limit:
                break
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self.in_flight += 1
        if self._limiter is not None:
            try:
                await self._limiter.acquire()
            except BaseException:
                self.release(ok=False)
                raise

    def release(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok and self.limit < self.max_limit:
            self._successes += 1
            if self._successes >= self.limit:
                self.limit += 1
                self._successes = 0
        self._wake()

    def push_back(self, seconds: float) -> None:
        """The API said slow down: every worker waits ``seconds``, and fewer go at once after."""
        loop = asyncio.get_running_loop()
        self.pushbacks += 1
        self.paused_until = max(self.paused_until, loop.time() + seconds)
        self.limit = max(1, self.limit // 2)
        self.lowest_limit = min(self.lowest_limit, self.limit)
        self._successes = 0

    def _wake(self) -> None:
        free = self.limit - self.in_flight
        for waiter in list(self._waiters):
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
