"""A run end to end: the plan shown, its requests sent, the results built from the ledger (so they
say what it says, whatever stopped the run). :func:`run_batch` is the CLI's and the page's entry."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batch_attend import i18n, results
from batch_attend.api import PlugChatClient
from batch_attend.engine import Engine, HeldSignals, Starts, signals_stop
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError, TokenRefusedError
from batch_attend.i18n import N_, _, ngettext
from batch_attend.journal import Journal, now
from batch_attend.leads import Lead
from batch_attend.outcomes import ExitStatus, Outcome, RunSummary, Stop, exit_status_for
from batch_attend.plan import Plan, build_plan, check_plan, journal_path, read_source
from batch_attend.request_log import RequestLog, mask_phone
from batch_attend.session import Access, open_session, run_async
from batch_attend.settings import TOKEN_ENV, RunOptions
from batch_attend.whatsapp import WhatsAppUnknown, whatsapp_status


@dataclass
class RunReport:
    summary: RunSummary
    frame: pd.DataFrame  # every row's outcome, see results.OUTCOME_COLUMNS
    output: str
    journal: Path | None
    exit_status: ExitStatus
    plan: Plan

    @functools.cached_property
    def outcomes(self) -> list[Outcome]:
        """One :class:`Outcome` per input row, in input order."""
        return results.outcomes_of(self.frame)


class Watch:
    """A run seen and stopped from another thread (the web page): how far it is, and a cancel
    that acts as Ctrl-C (requests in flight finish, the rest is ``skipped``). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows = 0  # every row of the input
        self.total = 0  # rows to send
        self.done = 0  # rows to send that an answer decided
        self.counts: Counter = Counter()  # per status, rows decided before sending included
        self.started: float | None = None  # time.monotonic() when sending began
        self.cancelled = False
        self.is_planned = False  # until then, nothing is known of the rows
        self._stop = None  # while sending: the engine's stop, called on its loop

    def planned(self, rows: int, total: int, decided: dict | None = None) -> None:
        """``rows`` in all, ``total`` of them to send; ``decided``: the others' counts by status."""
        with self._lock:
            self.rows, self.total, self.is_planned = rows, total, True
            self.counts.update({str(k): int(v) for k, v in (decided or {}).items()})

    def attach(self, engine: Engine) -> None:
        """Called on the run's loop as sending begins; a cancel that came earlier stops it now."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._stop = functools.partial(loop.call_soon_threadsafe, engine.stop, "SIGINT")
            self.started = time.monotonic()
            stop = self.cancelled
        if stop:
            engine.stop("SIGINT")

    def detach(self) -> None:
        with self._lock:
            self._stop = None

    def decided(self, outcome: Outcome) -> None:
        with self._lock:
            self.done += 1
            self.counts[str(outcome.status)] += 1

    def cancel(self) -> None:
        """Stop the run once (a second stop would be a second Ctrl-C, which exits at once)."""
        with self._lock:
            if self.cancelled:
                return
            self.cancelled = True
            stop = self._stop
        if stop is not None:
            stop()

    def snapshot(self) -> dict:
        with self._lock:
            elapsed = time.monotonic() - self.started if self.started is not None else 0.0
            rate = self.done / elapsed if elapsed > 0 else 0.0
            return {
                "planned": self.is_planned,
                "rows": self.rows,
                "total": self.total,
                "done": self.done,
                "counts": dict(self.counts),
                "rows_per_s": round(rate, 1),
                "seconds_left": round((self.total - self.done) / rate) if rate > 0 else None,
                "cancelled": self.cancelled,
            }


def run_batch(options: RunOptions, env: Env | None = None, watch: Watch | None = None) -> RunReport:
    """Run one batch and write its results (and ``--summary-json``). A problem found before
    sending raises :class:`BatchAttendError`: nothing is sent, an existing results file is left
    as it was. ``watch``: progress and cancel for a caller in another thread."""
    env = env or Env()
    summary_json = options.output.summary_json
    facts = {"exit_code": None, "started_at": now(), "input": str(options.input.path)}
    facts.update(output=None, journal=None, retry_at=None, plan=None)
    try:
        report = _run(options, env, time.perf_counter(), watch)
    except (BatchAttendError, KeyboardInterrupt) as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        facts["exit_code"] = int(ExitStatus.INTERRUPTED if interrupted else exc.exit_status)
        error = "interrupted before any request was sent" if interrupted else str(exc)
        with contextlib.suppress(OSError):  # the summary's own path may be what is wrong
            results.write_summary_json(summary_json, None, facts, error)
        raise
    journal = str(report.journal) if report.journal else None
    facts.update(exit_code=int(report.exit_status), output=report.output, journal=journal)
    facts.update(retry_at=report.summary.retry_at, plan=report.plan.facts())
    try:
        results.write_summary_json(summary_json, report.summary, facts, report.summary.write_error)
    except OSError as exc:
        said = _("error: {path}: the summary could not be written ({reason}).")
        env.log("batch-attend: " + said.format(path=summary_json, reason=_reason(exc)))
        report.exit_status = ExitStatus.WRITE_FAILED
    return report


def _run(options: RunOptions, env: Env, clock: float, watch: Watch | None) -> RunReport:
    dry_run = options.sending.dry_run
    source = read_source(options, env, sending=True)
    output = source[1]
    summary = RunSummary(output=output, dry_run=dry_run, started_at=now())
    summary.input = options.input.label or str(options.input.path)
    path = journal_path(options, output)
    for file in (None if dry_run else path, options.output.summary_json, options.output.log_file):
        if file is not None:
            results.check_writable(Path(file))
    held = HeldSignals()
    # A dry run only reads the ledger, and asks nothing but the phones (--verify-whatsapp).
    journal = Journal.open_readonly(path) if dry_run else None
    try:
        if dry_run:
            plan = check_plan(options, env, source, journal)
            _show(plan, options, env)
            plan_stop = Stop.DRY_RUN
            frame = _outcomes(plan, journal, plan_stop, resolved=not options.requests.lookup)
        else:
            with open_session(options, env) as session:
                plan, frame, plan_stop, journal = run_async(
                    _live(options, env, session, source[0], path, summary, held, watch)
                )
        summary.stop = summary.stop or plan_stop
        summary.resumed = int(plan.frame["carried"].sum())
        summary.counts.update(frame["status"].value_counts().to_dict())
        codes = frame.loc[frame["error_code"] != "", "error_code"]
        summary.error_counts.update(codes.value_counts().to_dict())
        summary.names = plan.account.directory.names()
        summary.elapsed = time.perf_counter() - clock
        out = options.output
        try:
            results.write_results(
                output,
                plan.table.columns,  # as edited before sending
                results.contract_frame(plan.table.frame, frame),
                stdout=env.stdout,
                summary=summary,
                bom=out.bom,
                delimiter=results.csv_delimiter(
                    out.output_delimiter, plan.table.delimiter, out.results_lang
                ),
                lang=out.results_lang or "en",
            )
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) or output == results.STDOUT:
                raise
            summary.write_error = summary.write_error or _(
                "{path}: the results could not be written ({reason})"
            ).format(path=output, reason=_reason(exc))
    finally:
        held.release()
        if journal is not None and dry_run:
            journal.close()
        elif journal is not None:
            journal.unlock()  # the run's, closed but held until the results were out
    if summary.stop is None and held.name:  # a signal once sending was done
        summary.stop = Stop.named(held.name)
    path = None if dry_run else path
    if not options.display.quiet:
        env.log(results.format_summary(summary))
    if message := closing_message(summary, path):
        env.log("batch-attend: " + message)
    return RunReport(summary, frame, output, path, exit_status_for(summary), plan)


def _show(plan: Plan, options: RunOptions, env: Env) -> None:
    if not options.display.quiet:
        for line in plan.lines():
            env.log("batch-attend: " + line)


async def _live(options, env, session, table, path, summary, held, watch):
    """The plan, then its requests, on one client; the ledger comes back closed but still locked."""
    async with session.client(options) as client:
        journal = Journal.open(
            path, target=session.name, input=str(options.input.path), fresh=options.output.fresh
        )
        if journal.set_aside is not None and not options.display.quiet:
            said = _("--fresh: the journal it forgets is kept as {path}.")
            env.log("batch-attend: " + said.format(path=journal.set_aside))
        stop = frame = None
        try:
            access = Access(session, client)
            plan = await build_plan(options, env, access, journal, table, strict=True)
            journal.adopt(results.records_in_results(plan.table.results))
            journal.note_plan(plan.facts())
            _show(plan, options, env)
            stop = plan.stop
            if watch is not None:
                decided = plan.frame["status"].dropna().value_counts().to_dict()
                watch.planned(len(plan.frame), plan.ready, decided)
            if plan.ready:
                held.hold()  # from here on, what is sent is written out whatever comes
                stop = await send(
                    options, env, client, plan.leads(), plan.ready, journal, summary, watch
                )
            frame = _outcomes(
                plan, journal, stop, resolved=stop is not Stop.UNAUTHORIZED, when=summary.retry_at
            )
        finally:  # once planned and sent, the lock is held until the results are out
            journal.close(stop.key if stop else None, unlock=frame is None)
        return plan, frame, stop, journal


def _outcomes(plan: Plan, journal: Journal | None, stop: Stop | None, *, resolved, when=None):
    """Every row's outcome, from the plan and what the ledger (and a results file handed back)
    recorded. ``resolved``: the operators are IDs, comparable with those a carried row sent."""
    records = itertools.chain(
        journal.records() if journal else (), results.records_in_results(plan.table.results)
    )
    unsent = (stop or Stop.SIGINT).unsent(when)
    return results.outcome_frame(plan.frame, records, unsent, compare_asked=resolved)


async def _recheck(client: PlugChatClient) -> str | None:
    """What the engine asks once answers fail in a row: why sending must stop, or None."""
    try:
        status = await whatsapp_status(client)
    except (WhatsAppUnknown, TokenRefusedError):
        return None  # not known to have dropped: the answers speak for themselves
    return None if status.ok else status.problem()


async def send(
    options: RunOptions,
    env: Env,
    client: PlugChatClient,
    leads: Iterable[Lead],
    total: int,
    journal: Journal,
    summary: RunSummary,
    watch: Watch | None = None,
    *,
    kind: Starts | None = None,
) -> Stop | None:
    """Send ``total`` requests of ``kind`` (starts, or undo's finishes) on the engine, with the
    progress bar, request log, ``--verbose``, signals and ``watch``, counting into ``summary``;
    returns why sending stopped early. Starts failing in a row ask if the number dropped."""
    from tqdm import tqdm

    recheck = None
    if kind is None and options.requests.status_check:
        recheck = functools.partial(_recheck, client)
    progress = tqdm(  # a bar for a person watching
        total=total,
        file=env.stderr,
        unit="row",
        mininterval=0.25,
        dynamic_ncols=True,
        desc=kind.desc if kind else Starts.desc,
        leave=False,
        disable=options.display.quiet or not env.stderr_isatty,  # its lines still go out
    )
    log = RequestLog(options.output.log_file) if options.output.log_file else None

    def on_attempt(lead: Lead, attempt: int, outcome: Outcome, seconds: float, wait) -> None:
        if log is not None:
            log.write(lead, attempt, outcome, seconds, wait)
        if options.display.verbose:
            what = outcome.error or str(outcome.status)
            http = f" HTTP {outcome.http_status}" if outcome.http_status else ""
            then = f"; retry in {wait:.1f} s" if wait is not None else ""
            said = f"row {lead.row} {mask_phone(lead.phone)} attempt {attempt}:{http} {what}"
            progress.write(f"{said} ({seconds * 1000:.0f} ms){then}", file=env.stderr)

    def decided(lead: Lead, outcome: Outcome) -> None:
        progress.update()
        if watch is not None:
            watch.decided(outcome)

    engine = Engine(
        client,
        concurrency=options.sending.concurrency,
        policy=client.policy,
        backpressure=client.gate,
        journal=journal,
        on_outcome=decided,
        on_attempt=on_attempt if (options.display.verbose or log is not None) else None,
        grace=options.sending.grace,
        recheck=recheck,
        kind=kind,
    )
    try:
        with signals_stop(engine):
            if watch is not None:
                watch.attach(engine)
            return Stop.named(await engine.run(leads))
    except Exception as exc:
        if journal.failure is None:
            raise
        said = _("{path}: the journal could not be written ({reason})")
        summary.write_error = said.format(path=journal.path, reason=_reason(exc))
        return Stop.WRITE_FAILED
    finally:
        if watch is not None:
            watch.detach()
        progress.close()
        if log is not None:
            log.close()
        summary.decided_rows = engine.decided
        summary.requests = engine.requests
        summary.retries = engine.retries
        summary.pushbacks = engine.gate.pushbacks
        if engine.retry_at is not None:
            summary.retry_at = engine.retry_at.isoformat(timespec="seconds")
        summary.whatsapp_problem = engine.problem


def _reason(exc: Exception) -> str:
    """An OS or SQLite error in words (``No space left on device``)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


_CLOSING = {
    Stop.WHATSAPP: N_(
        "{problem}; sending stopped. {skipped}: reconnect it in PlugChat and run the same "
        "command again."
    ),
    Stop.RATE_LIMITED: N_(
        "the API asked to be called again at {when}, later than batch-attend waits; sending "
        "stopped. {skipped}: run the same command again after that time to resume."
    ),
    Stop.UNAUTHORIZED: N_(
        "the API refused the token (HTTP 401); sending stopped. Check {env} (or --token). "
        "{skipped}: fix the token and run again."
    ),
}


def closing_message(summary: RunSummary, journal: Path | None) -> str | None:
    """What a person is told after the summary line when sending stopped early."""
    stop = summary.stop
    if summary.write_error:
        return f"{_('error')}: {summary.write_error}. " + _(
            "Sending stopped; what could be written was. Rows whose answer was not "
            "recorded are marked skipped: fix this and run the same command again, and "
            "nothing is started twice."
        )
    if stop is None or stop is Stop.DRY_RUN:
        return None
    count = summary.error_counts.get(stop.code, 0)
    if stop.interrupted:
        not_finished = ngettext(
            "{count} row not finished is marked skipped",
            "{count} rows not finished are marked skipped",
            count,
        ).format(count=i18n.number(count))
        said = _("interrupted ({signal}); {skipped}.").format(signal=stop.key, skipped=not_finished)
        resume = _("Run the same command again to resume (progress is in {journal}).")
        return said + " " + resume.format(journal=journal)
    skipped = ngettext(
        "{count} row is marked skipped", "{count} rows are marked skipped", count
    ).format(count=i18n.number(count))
    return _(_CLOSING[stop]).format(
        problem=summary.whatsapp_problem, when=summary.retry_at, env=TOKEN_ENV, skipped=skipped
    )
