"""The async engine: a fixed set of workers pulls leads from one shared iterator (memory stays
flat), each request of its kind (:class:`Starts`, ``undo.Finishes``) via the gate and journal."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from dataclasses import KW_ONLY, dataclass

from batch_attend import retrying, sentences
from batch_attend.api import Answer, PlugChatClient, classify, read_start
from batch_attend.journal import History, Journal, now
from batch_attend.leads import Lead
from batch_attend.outcomes import DONE_STATUSES, ErrorCode, Outcome, RowStatus, Stop

TROUBLE_IN_A_ROW = 10  #: answers failing in a row after which ``recheck`` is asked
SIGNALS = ("SIGINT", "SIGTERM")  # and the engine's stop reasons for them


@dataclass(eq=False)
class Starts:
    """A start per lead, recorded in the ``journal`` before it goes out and with its answer."""

    journal: Journal
    desc = "Starting attendances"
    read = staticmethod(read_start)

    def history(self, lead: Lead) -> History:
        return self.journal.history(lead.phone)

    async def record(self, lead: Lead) -> int:
        return await self.journal.sending(lead)

    def send(self, client: PlugChatClient, lead: Lead) -> Awaitable[Answer]:
        return client.start_attendance(lead)

    def judge(self, lead: Lead, answer: Answer, outcome: Outcome, history: History) -> None:
        if answer.resent:  # the first may have started it: its "in service" is our own
            history.may_have_acted.add(frozenset(lead.operators))
        if outcome.status in DONE_STATUSES and lead.note[0]:
            outcome.error_code, outcome.error_message = lead.note  # the phone sent, changed
        if outcome.status is not RowStatus.ALREADY_IN_SERVICE:
            outcome.operators = lead.operators  # the IDs sent; otherwise the API's own list
        elif frozenset(outcome.operators) in history.may_have_acted:
            # the operators of an earlier request of the lead that may have acted: its own start
            outcome.status = RowStatus.STARTED
            outcome.error_code = ErrorCode.CONFIRMED_ON_RETRY
            outcome.attempts += history.unanswered  # one of them did arrive
            number = outcome.attendance_number
            said = sentences.CONFIRMED_ON_RETRY_NUMBER if number else sentences.CONFIRMED_ON_RETRY
            outcome.error_message = said.format(number=number)
        if answer.may_have_acted:
            history.may_have_acted.add(frozenset(lead.operators))

    def answered(self, request: int, lead: Lead, outcome: Outcome, answer: Answer, final: bool):
        self.journal.answered(
            request, lead, outcome, may_have_acted=answer.may_have_acted, decides=final
        )


@dataclass(eq=False)
class Engine:
    """Sends the requests of ``kind`` with bounded concurrency, retries and clean stops;
    ``on_outcome`` sees each lead an answer decided, the others stay undecided in the journal.
    ``recheck``, after answers fail in a row, says why sending must stop (or None)."""

    client: PlugChatClient
    _: KW_ONLY
    concurrency: int
    policy: retrying.RetryPolicy
    backpressure: retrying.Backpressure | None = None
    journal: Journal
    on_outcome: Callable[[Lead, Outcome], None] = lambda lead, outcome: None
    on_attempt: Callable[[Lead, int, Outcome, float, float | None], None] | None = None
    grace: float = 5.0  # after Ctrl-C or SIGTERM, requests in flight get this long to answer
    recheck: Callable[[], Awaitable[str | None]] | None = None
    kind: Starts | None = None

    def __post_init__(self) -> None:
        self.kind = self.kind or Starts(self.journal)
        self.gate = self.backpressure or retrying.Backpressure(self.concurrency)
        self.stop_reason: str | None = None
        self.problem: str | None = None  # what recheck said
        self.retry_at: dt.datetime | None = None  # when the API asked to be called again
        self.decided = 0  # leads an answer decided
        self.requests = 0
        self.retries = 0
        self._stop_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._in_request: set[asyncio.Task] = set()
        self._failing = 0  # answers failed in a row
        self._rechecking: asyncio.Task | None = None

    async def run(self, leads: Iterable[Lead]) -> str | None:
        """Send every lead; returns why sending stopped early (``unauthorized``, a signal name)."""
        pending = iter(leads)
        self._tasks = [asyncio.create_task(self._worker(pending)) for _ in range(self.concurrency)]
        await asyncio.wait(self._tasks)
        if (rechecking := self._rechecking) is not None:  # nothing left to stop
            rechecking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rechecking
        # A worker that died (the journal cannot write): raised once, every error looked at.
        errors = [t.exception() for t in self._tasks if not t.cancelled() and t.exception()]
        if errors:
            raise errors[0]
        return self.stop_reason

    def stop(self, reason: str) -> None:
        """Send nothing new; a signal also cuts waiting workers now and the rest after ``grace``,
        and a second one exits at once (it runs on the loop, never in the middle of a commit)."""
        if reason in SIGNALS and self.stop_reason in SIGNALS:
            os._exit(Stop.named(reason).exit_status)
        if self.stop_reason is None or reason in SIGNALS:
            self.stop_reason = reason
        self._stop_event.set()
        if reason in SIGNALS:
            self._cancel(spare=self._in_request)
            asyncio.get_running_loop().call_later(self.grace, self._cancel)

    def _cancel(self, spare: Collection[asyncio.Task] = ()) -> None:
        for task in self._tasks:
            if task not in spare:
                task.cancel()

    async def _worker(self, pending: Iterator[Lead]) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            for lead in pending:
                if self.stop_reason:
                    return
                await self._send(lead, asyncio.current_task())

    async def _send(self, lead: Lead, task: asyncio.Task) -> None:
        """Send one lead until an answer decides it, the retries run out, or the run stops."""
        kind = self.kind
        history = kind.history(lead)
        attempts = history.attempts
        request = started = 0

        async def record() -> None:
            nonlocal request
            request = await kind.record(lead)

        async def send() -> Answer:
            nonlocal started
            started = time.perf_counter()
            self._in_request.add(task)
            try:
                return await kind.send(self.client, lead)
            finally:
                self._in_request.discard(task)

        def judge(answer: Answer, wait: float | None) -> bool:
            nonlocal attempts
            attempts += 1 + answer.resent
            self.requests += 1 + answer.resent
            outcome = classify(answer, self.client.scrub, kind.read)
            outcome.phone, outcome.attempts, outcome.done_at = lead.phone, attempts, now()
            kind.judge(lead, answer, outcome, history)
            self._note_failing(answer)
            asked = retrying.asked_wait(answer) if wait is None else None
            if asked is not None and asked > retrying.MAX_RETRY_AFTER:
                self._stop_until(outcome, asked)
            if outcome.error_code == ErrorCode.UNAUTHORIZED:
                self.stop("unauthorized")
            final = wait is None or self.stop_reason is not None
            kind.answered(request, lead, outcome, answer, final)
            if self.on_attempt is not None:
                elapsed = time.perf_counter() - started
                self.on_attempt(lead, attempts, outcome, elapsed, None if final else wait)
            if final:
                self.decided += 1
                self.on_outcome(lead, outcome)
            else:
                self.retries += 1
            return final

        await retrying.attempt(
            self.gate, self.policy, send, before=record, judge=judge, stop=self._stop_event
        )

    def _note_failing(self, answer: Answer) -> None:
        """At ``TROUBLE_IN_A_ROW`` answers failing in a row (tried again, but 429s: a start gets
        503s while the number is down), ask ``recheck`` (once at a time) if sending must stop."""
        failed = retrying.retryable(answer) and answer.http_status != 429
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


@contextlib.contextmanager
def signals_stop(engine: Engine):
    """Ctrl-C and SIGTERM stop the engine, handed to the loop: never mid-row nor mid-commit."""
    loop = asyncio.get_running_loop()

    def stop(signum: int, frame) -> None:
        loop.call_soon_threadsafe(engine.stop, signal.Signals(signum).name)

    routed = HeldSignals()
    routed.hold(stop)
    try:
        yield
    finally:
        routed.release()


class HeldSignals:
    """From sending until the results are written, Ctrl-C and SIGTERM are noted (``name``), or
    handed to ``handler``, so that what was sent is written out; a second one exits at once."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._previous: dict[int, object] = {}

    def hold(self, handler: Callable[[int, object], None] | None = None) -> None:
        for name in SIGNALS:
            sig = getattr(signal, name)
            try:
                self._previous[sig] = signal.signal(sig, handler or self._noted)
            except ValueError:
                return  # not the main thread (library use): the caller handles signals

    def _noted(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.name is not None:
            os._exit(Stop.named(name).exit_status)
        self.name = name

    def release(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
