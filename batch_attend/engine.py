"""The async engine: bounded concurrency, retries, run-wide backpressure and clean stops.

A fixed set of workers pulls leads from one shared iterator (memory stays flat however long the
file), every request passes the run-wide :class:`~batch_attend.retrying.Backpressure` gate, and
every request and answer is recorded in the journal as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

from batch_attend import sentences
from batch_attend.api import Answer, PlugChatClient, classify
from batch_attend.journal import History, Journal, now
from batch_attend.leads import Lead
from batch_attend.outcomes import DONE_STATUSES, ErrorCode, Outcome, RowStatus
from batch_attend.retrying import (
    MAX_RETRY_AFTER,
    RETRYABLE_FAILURES,
    Backpressure,
    RetryPolicy,
    asked_wait,
)

#: Answers failing in a row (none came, or a 5xx) after which ``recheck`` is asked.
TROUBLE_IN_A_ROW = 10
#: After Ctrl-C or SIGTERM, requests already in flight get this long to answer.
DEFAULT_GRACE = 5.0
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
#: Workers start this far apart (64 workers: 64 ms). Requests that all leave at once come back at
#: once and queue behind each other on both ends; spread out, they stay spread out, and the API is
#: not hit by a burst of new connections.
RAMP_UP_STEP = 0.001

OnAttempt = Callable[[Lead, int, Outcome, float, float | None], None]


class Engine:
    """Sends leads with bounded concurrency, retries, run-wide backpressure and clean stops.

    ``on_outcome(lead, outcome)`` is called once for every lead an answer decided; a lead that
    never got one (stopped by a refused token or an interruption) gets no call, and stays
    undecided in the journal.
    """

    def __init__(
        self,
        client: PlugChatClient,
        *,
        concurrency: int,
        policy: RetryPolicy,
        backpressure: Backpressure | None = None,
        journal: Journal | None = None,
        on_outcome: Callable[[Lead, Outcome], None] = lambda lead, outcome: None,
        on_attempt: OnAttempt | None = None,
        grace: float = DEFAULT_GRACE,
        recheck: Callable[[], Awaitable[str | None]] | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency
        self.policy = policy
        self.gate = backpressure or Backpressure(concurrency)
        self.journal = journal
        self.on_outcome = on_outcome
        self.on_attempt = on_attempt
        self.grace = grace
        self.recheck = recheck  # after answers fail in a row: why sending must stop, or None
        self.stop_reason: str | None = None
        self.problem: str | None = None  # what recheck said
        self.retry_at: dt.datetime | None = None  # when the API asked to be called again
        self.sent_leads = 0
        self.decided = 0  # leads an answer decided
        self.requests = 0
        self.retries = 0
        self._stop_event: asyncio.Event | None = None
        self._tasks: list[asyncio.Task] = []
        self._in_request: set[asyncio.Task] = set()
        self._failing = 0  # answers failed in a row
        self._rechecking: asyncio.Task | None = None

    async def run(self, leads: Iterable[Lead]) -> str | None:
        """Send every lead; returns why sending stopped early (``unauthorized``, a signal name)."""
        self._stop_event = asyncio.Event()
        pending = iter(leads)
        self._tasks = [
            asyncio.create_task(self._worker(pending, i * RAMP_UP_STEP))
            for i in range(self.concurrency)
        ]
        await asyncio.wait(self._tasks)
        if (rechecking := self._rechecking) is not None:  # nothing left to stop
            rechecking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rechecking
        # A worker that died (the journal cannot write): say so loudly, once (every worker's
        # error is looked at, so that none is reported again as never retrieved).
        errors = [t.exception() for t in self._tasks if not t.cancelled() and t.exception()]
        if errors:
            raise errors[0]
        return self.stop_reason

    def stop(self, reason: str) -> None:
        """Send nothing new. For a signal, also cut waiting workers now and in-flight ones after
        the grace period; a second signal exits at once (every journal commit is whole, and the
        loop never runs a handler in the middle of one)."""
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
            await asyncio.sleep(start_after)
            for lead in pending:
                if self.stop_reason:
                    return
                await self._send(lead, asyncio.current_task())

    async def _send(self, lead: Lead, task: asyncio.Task) -> None:
        """Send one lead until an answer decides it, the retries run out, or the run stops."""
        history = self.journal.history(lead.phone) if self.journal else History()
        attempts = history.attempts
        self.sent_leads += 1
        for retry in range(self.policy.retries + 1):
            await self.gate.acquire()
            try:
                slot = await self.gate.pace()
                if self.stop_reason:  # stopped while it waited: nothing more goes out
                    self.gate.release()
                    return
                attempt = await self.journal.sending(lead) if self.journal else 0
            except BaseException:
                self.gate.release()
                raise
            started = time.perf_counter()
            slot.stamp()
            self._in_request.add(task)
            try:
                answer = await self.client.start_attendance(lead)
            except BaseException:
                self.gate.release()  # cut off mid-request: the journal keeps it unanswered
                raise
            finally:
                self._in_request.discard(task)
            self.gate.release(slot.sent_at if answer.taken else None)
            attempts += 1
            self.requests += 1
            outcome = self._judge(lead, answer, attempts, history)
            self._note_failing(answer)
            if answer.may_have_acted:
                history.may_have_acted.add(frozenset(lead.operators))
            asked = asked_wait(answer)
            wait = self._next_wait(outcome, asked, retry)
            if outcome.error_code == ErrorCode.UNAUTHORIZED:
                self.stop("unauthorized")
            final = wait is None or self.stop_reason is not None
            if self.journal:
                self.journal.answered(
                    attempt, lead, outcome, may_have_acted=answer.may_have_acted, decides=final
                )
            if self.on_attempt is not None:
                elapsed = time.perf_counter() - started
                self.on_attempt(lead, attempts, outcome, elapsed, None if final else wait)
            if final:
                self.decided += 1
                self.on_outcome(lead, outcome)
                return
            self.retries += 1
            if answer.http_status == 429 or asked is not None:
                # every worker waits, not only this one, and the run slows down
                self.gate.push_back(asked, rate_limited=answer.http_status == 429)
            if not await self._pause(wait):
                return  # stopped while waiting: the lead stays undecided

    def _note_failing(self, answer: Answer) -> None:
        """Count answers failing in a row (none came, or a 5xx); at ``TROUBLE_IN_A_ROW``, ask
        ``recheck`` (once at a time) whether sending must stop."""
        failed = answer.failure in RETRYABLE_FAILURES or (answer.http_status or 0) >= 500
        self._failing = self._failing + 1 if failed else 0
        if self._failing >= TROUBLE_IN_A_ROW and self.recheck and self._rechecking is None:
            self._rechecking = asyncio.get_running_loop().create_task(self._recheck())

    async def _recheck(self) -> None:
        try:
            problem = await self.recheck()
        except Exception:
            problem = None  # the status could not be read: the answers speak for themselves
        finally:
            self._rechecking, self._failing = None, 0
        if problem and self.stop_reason is None:
            self.problem = problem
            self.stop("whatsapp_disconnected")

    def _next_wait(self, outcome: Outcome, asked: float | None, retry: int) -> float | None:
        """Seconds before the next try, or None when this answer is final. An answer that asks
        for a longer wait than batch-attend keeps stops the run, as a refused token does."""
        if not self.policy.is_retryable(outcome):
            return None
        if asked is not None and asked > MAX_RETRY_AFTER:
            self._stop_until(outcome, asked)
            return None
        if retry >= self.policy.retries:
            return None
        return asked if asked is not None else self.policy.backoff(retry)

    def _stop_until(self, outcome: Outcome, asked: float) -> None:
        when = dt.datetime.now().astimezone() + dt.timedelta(seconds=asked)
        self.retry_at = max(self.retry_at or when, when)
        outcome.status = RowStatus.SKIPPED
        outcome.error_code = ErrorCode.RATE_LIMITED
        outcome.error_message = sentences.RETRY_TOO_LATE.format(
            status=outcome.http_status,
            seconds=round(asked),
            when=when.isoformat(timespec="seconds"),
        )
        self.stop("rate_limited")

    async def _pause(self, seconds: float) -> bool:
        """Sleep, but wake early when the run stops; True when the full time passed."""
        try:
            await asyncio.wait_for(self._stop_event.wait(), seconds)
        except TimeoutError:
            return True
        return False

    def _judge(self, lead: Lead, answer: Answer, attempts: int, history: History) -> Outcome:
        outcome = classify(answer, self.client.scrub)
        outcome.phone = lead.phone
        outcome.attempts = attempts
        outcome.done_at = now()
        if outcome.status in DONE_STATUSES and lead.note[0]:
            outcome.error_code, outcome.error_message = lead.note  # the phone sent, changed
        if outcome.status is not RowStatus.ALREADY_IN_SERVICE:
            outcome.operators = lead.operators  # the IDs sent; otherwise the API's own list
        elif frozenset(outcome.operators) in history.may_have_acted:
            # An earlier request of this lead may have started it without its answer reaching
            # us, and the attendance has that request's operators: it is this lead's own start.
            outcome.status = RowStatus.STARTED
            outcome.error_code = ErrorCode.CONFIRMED_ON_RETRY
            outcome.attempts += history.unanswered  # one of them did arrive
            outcome.error_message = (
                sentences.CONFIRMED_ON_RETRY_NUMBER.format(number=outcome.attendance_number)
                if outcome.attendance_number
                else sentences.CONFIRMED_ON_RETRY
            )
        return outcome


@contextlib.contextmanager
def signals_stop(engine: Engine):
    """Ctrl-C and SIGTERM stop the engine cleanly instead of killing the loop mid-row.

    The loop's own signal handlers where it has them; elsewhere (Windows) a plain handler that
    hands the stop to the loop."""
    loop = asyncio.get_running_loop()
    restore: list[Callable[[], object]] = []
    for name in ("SIGINT", "SIGTERM"):
        sig = getattr(signal, name)
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, engine.stop, name)
            restore.append(lambda sig=sig: loop.remove_signal_handler(sig))
        except NotImplementedError:
            try:
                signal.signal(
                    sig, lambda *_, name=name: loop.call_soon_threadsafe(engine.stop, name)
                )
            except ValueError:
                continue  # not the main thread (library use): the caller handles signals
        except (RuntimeError, ValueError):
            continue  # not the main thread (library use): the caller handles signals
        restore.append(lambda sig=sig, previous=previous: signal.signal(sig, previous))
    try:
        yield
    finally:
        for undo in restore:
            undo()


class HeldSignals:
    """From the moment sending begins until the results are written, Ctrl-C and SIGTERM are
    noted (``name``) instead of cutting the run short, so that what was sent is always written
    out (while the engine sends, its own handlers stop it cleanly). A second one exits at once.
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self._previous: dict[int, object] = {}

    def hold(self) -> None:
        for name in ("SIGINT", "SIGTERM"):
            sig = getattr(signal, name)
            try:
                self._previous[sig] = signal.signal(sig, self._noted)
            except ValueError:
                return  # not the main thread (library use): the caller handles signals

    def _noted(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.name is not None:
            os._exit(EXIT_CODES[name])
        self.name = name

    def release(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
