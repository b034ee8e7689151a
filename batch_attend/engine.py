"""The async engine: bounded concurrency, retries, run-wide backpressure and clean stops.

A fixed set of workers pulls leads from one shared iterator (memory stays flat however long the
file), every request passes the run-wide :class:`~batch_attend.retrying.Backpressure` gate, and
every row is journaled as it goes out and as it finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence

from batch_attend.api import Answer, PlugChatClient, classify
from batch_attend.journal import Journal, PriorRow
from batch_attend.leads import Lead
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.retrying import MAX_RETRY_AFTER, Backpressure, RetryPolicy

#: After Ctrl-C or SIGTERM, requests already in flight get this long to answer.
DEFAULT_GRACE = 5.0
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
#: Workers start this far apart (64 workers: 64 ms). Requests that all leave at once come back at
#: once and queue behind each other on both ends; spread out, they stay spread out, and the API is
#: not hit by a burst of new connections.
RAMP_UP_STEP = 0.001


class Engine:
    """Sends leads with bounded concurrency, retries, run-wide backpressure and clean stops.

    ``on_outcome(lead, outcome)`` is called once for every lead that got a final answer; leads
    that never did (stopped by a refused token or an interruption) get no call.
    """

    def __init__(
        self,
        client: PlugChatClient,
        *,
        concurrency: int,
        policy: RetryPolicy,
        backpressure: Backpressure | None = None,
        journal: Journal | None = None,
        prior: dict[int, PriorRow] | None = None,
        on_outcome: Callable[[Lead, Outcome], None] = lambda lead, outcome: None,
        on_attempt: Callable[[Lead, int, Outcome, float, float | None], None] | None = None,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.policy = policy
        self.gate = backpressure or Backpressure(concurrency)
        self.journal = journal
        self.prior = prior or {}
        self.on_outcome = on_outcome
        self.on_attempt = on_attempt
        self.grace = grace
        self.stop_reason: str | None = None
        self.requests = 0
        self.retries = 0
        self._stop_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._in_request: set[asyncio.Task] = set()

    async def run(self, leads: Sequence[Lead]) -> str | None:
        """Send every lead; returns why sending stopped early (``unauthorized``, a signal name)."""
        self._stop_event = asyncio.Event()
        pending: Iterator[Lead] = iter(leads)
        workers = max(1, min(self.concurrency, len(leads)))
        self._tasks = [
            asyncio.create_task(self._worker(pending, i * RAMP_UP_STEP)) for i in range(workers)
        ]
        await asyncio.wait(self._tasks)
        for task in self._tasks:  # a worker that died (the journal cannot write): say so loudly
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
        return self.stop_reason

    def stop(self, reason: str) -> None:
        """Send nothing new. For a signal, also cut waiting workers now and in-flight ones after
        the grace period; a second signal exits at once (the journal is consistent between any
        two of its commits, and the loop never runs a handler in the middle of one)."""
        if reason in EXIT_CODES and self.stop_reason in EXIT_CODES:
            os._exit(EXIT_CODES[reason])
        if self.stop_reason is None or reason in EXIT_CODES:
            self.stop_reason = reason
        if self._stop_event is not None:
            self._stop_event.set()
        if reason in EXIT_CODES:
            for task in self._tasks:
                if task not in self._in_request:
                    task.cancel()
            asyncio.get_running_loop().call_later(self.grace, self._cancel_all)

    def _cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _worker(self, pending: Iterator[Lead], start_after: float) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            if start_after:
                await asyncio.sleep(start_after)
            task = asyncio.current_task()
            for lead in pending:
                if self.stop_reason:
                    return
                await self._send_row(lead, task)

    async def _send_row(self, lead: Lead, task: asyncio.Task) -> None:
        prior = self.prior.get(lead.index)
        attempts = prior.attempts if prior else 0
        maybe_sent = prior.maybe_sent if prior else False
        outcome: Outcome | None = None
        if self.journal is not None:
            await self.journal.sending(lead, attempts + 1)
        try:
            for retry in range(self.policy.retries + 1):
                if not self.gate.try_acquire():
                    await self.gate.acquire()
                if self.stop_reason:
                    self.gate.release(ok=False)
                    break
                started = time.perf_counter() if self.on_attempt is not None else 0.0
                self._in_request.add(task)
                try:
                    answer = await self.client.start_attendance(lead)
                except BaseException:
                    outcome = None  # cut off mid-request: the journal keeps it as "sending"
                    self.gate.release(ok=False)
                    raise
                finally:
                    self._in_request.discard(task)
                self.gate.release(ok=answer.http_status is not None and answer.http_status < 429)
                attempts += 1
                self.requests += 1
                outcome = self._judge(lead, answer, attempts, maybe_sent)
                maybe_sent = maybe_sent or answer.maybe_reached_server
                wait = self._next_wait(outcome, answer, retry)
                if self.on_attempt is not None:
                    self.on_attempt(lead, attempts, outcome, time.perf_counter() - started, wait)
                if outcome.error_code == ErrorCode.UNAUTHORIZED:
                    self.stop("unauthorized")
                    break
                if wait is None or self.stop_reason:
                    break
                self.retries += 1
                if outcome.error_code == ErrorCode.RATE_LIMITED:
                    self.gate.push_back(wait)  # every worker waits, not only this one
                elif not await self._pause(wait):
                    break
        finally:
            if outcome is not None:
                if self.journal is not None:
                    self.journal.done(lead, outcome)
                self.on_outcome(lead, outcome)

    def _next_wait(self, outcome: Outcome, answer: Answer, retry: int) -> float | None:
        """Seconds before the next try, or None when this answer is final."""
        if retry >= self.policy.retries or not self.policy.is_retryable(outcome):
            return None
        wait = self.policy.delay(retry, answer.retry_after)
        if wait > MAX_RETRY_AFTER:
            outcome.error_message += (
                f" and asked to wait {wait:.0f} s, longer than batch-attend waits"
            )
            return None
        return wait

    async def _pause(self, seconds: float) -> bool:
        """Sleep, but wake early when the run stops; True when the full time passed."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def _judge(self, lead: Lead, answer: Answer, attempts: int, maybe_sent: bool) -> Outcome:
        outcome = classify(answer)
        if outcome.error_message:
            outcome.error_message = self.client.scrub(outcome.error_message)
        outcome.phone = lead.phone
        outcome.attempts = attempts
        if outcome.status is not RowStatus.ALREADY_IN_SERVICE:
            outcome.operators = lead.operators  # the IDs sent; otherwise the API's own list
        elif maybe_sent and set(outcome.operators) == set(lead.operators):
            # An earlier request of ours may have started it without the answer reaching us,
            # and the attendance has exactly our operators: it is this row's own start.
            outcome.status = RowStatus.STARTED
            outcome.error_code = ErrorCode.CONFIRMED_ON_RETRY
            outcome.error_message = (
                "an earlier request got no answer; the retry found this row's own attendance"
                + (f" (number {outcome.attendance_number})" if outcome.attendance_number else "")
            )
        return outcome


@contextlib.contextmanager
def signals_stop(engine: Engine):
    """Ctrl-C and SIGTERM stop the engine cleanly instead of killing the loop mid-row."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        try:
            loop.add_signal_handler(sig, engine.stop, name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (library use): the caller handles signals
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
