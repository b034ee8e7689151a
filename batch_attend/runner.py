"""One run from end to end: read → validate → plan → send → classify → journal → results.

:func:`run_batch` is the library's entry point and what the CLI calls; the sending itself is
:class:`~batch_attend.engine.Engine`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import time
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from batch_attend.api import (
    DEFAULT_BASE_URL,
    PlugChatClient,
    check_base_url,
    check_token,
)
from batch_attend.directory import Directory, TokenRefusedError, fetch_directory
from batch_attend.engine import DEFAULT_GRACE, Engine, signals_stop
from batch_attend.env import Env
from batch_attend.i18n import _
from batch_attend.journal import Journal, default_journal_path, file_digest
from batch_attend.leads import (
    DEFAULT_COUNTRY_CODE,
    Lead,
    LeadDefaults,
    leads_to_send,
    validate_table,
)
from batch_attend.outcomes import DONE_STATUSES, ErrorCode, Outcome, RowStatus, RunSummary
from batch_attend.planning import (
    DISTRIBUTIONS,
    PENDING,
    PoolError,
    assign_pool,
    decide_pending,
    read_pool,
    resolve_names,
    resolve_pool,
    skip_duplicates,
)
from batch_attend.reading import Table, map_columns, read_table
from batch_attend.request_log import RequestLog, mask_phone
from batch_attend.results import (
    STDOUT,
    check_capacity,
    check_output,
    contract_frame,
    default_output_for,
    format_summary,
    outcome_frame,
    outcomes_of,
    write_results,
)
from batch_attend.retrying import Backpressure, RetryPolicy

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
UNSENT_UNAUTHORIZED = "not sent: the API refused the token earlier in the run"


@dataclass
class RunOptions:
    """Everything one run needs; the CLI fills it from options and environment."""

    input: Path
    output: str | None = None  # None → beside the input; "-" → CSV on stdout
    token: str | None = None
    base_url: str = DEFAULT_BASE_URL
    operators: tuple[str, ...] = ()
    department: str | None = None
    country_code: str = DEFAULT_COUNTRY_CODE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    rate: float | None = None
    phone_column: str | None = None
    operators_column: str | None = None
    department_column: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    ticket: str | None = None
    lookup: bool = True
    pool: str | None = None
    pool_file: Path | None = None
    distribute: str = "round-robin"
    log_file: Path | None = None
    dry_run: bool = False
    allow_duplicates: bool = False
    journal: Path | None = None  # None → beside a file output; none for stdout
    fresh: bool = False
    sandbox: bool = False
    quiet: bool = False
    verbose: bool = False
    bom: bool = True
    grace: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        self.input = Path(self.input)

    def request_options(self) -> dict:
        """The options that change what is sent: a journal made with others is not resumed."""
        return {
            "base_url": self.base_url if not self.sandbox else "sandbox",
            "operators": list(self.operators),
            "department": self.department,
            "country_code": self.country_code,
            "phone_column": self.phone_column,
            "operators_column": self.operators_column,
            "department_column": self.department_column,
            "sheet": self.sheet,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "pool": self.pool,
            "pool_file": str(self.pool_file) if self.pool_file else None,
            "distribute": self.distribute,
        }


@dataclass
class RunReport:
    summary: RunSummary
    frame: pl.DataFrame | None = None  # every row's outcome, see results.OUTCOME_SCHEMA
    output: str = ""
    journal: Path | None = None

    @functools.cached_property
    def outcomes(self) -> list[Outcome]:
        """One :class:`Outcome` per input row, in input order."""
        return outcomes_of(self.frame) if self.frame is not None else []


class Progress:
    """A tqdm bar on stderr for a person watching; nothing at all for pipes, files and --quiet."""

    def __init__(self, total: int, env: Env, enabled: bool) -> None:
        self._env = env
        self._bar = None
        if enabled and env.stderr_isatty and total:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                file=env.stderr,
                unit="row",
                mininterval=0.25,
                dynamic_ncols=True,
                desc="Starting attendances",
                leave=False,
            )

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self._env.stderr)
        else:
            self._env.log(line)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _event_loop_factory():
    """uvloop where it is installed (a third less CPU per request, measured in benchmarks/),
    else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@dataclass(frozen=True)
class Target:
    """Where requests go for this run, and the credentials they carry."""

    base_url: str
    token: str | None
    ticket: str | None


@contextlib.contextmanager
def api_target(options: RunOptions):
    """The built-in sandbox for the run (with its own token and ticket), or the configured API."""
    if options.sandbox:
        from batch_attend.sandbox import SANDBOX_TICKET, SandboxServer

        with SandboxServer() as server:
            yield Target(server.base_url, server.token, SANDBOX_TICKET)
    else:
        yield Target(options.base_url, options.token, options.ticket)


def run_async(coro):
    with asyncio.Runner(loop_factory=_event_loop_factory()) as loop_runner:
        return loop_runner.run(coro)


def run_batch(options: RunOptions, env: Env | None = None) -> RunReport:
    """Run one batch end to end and write its results; raises :class:`BatchAttendError` for
    problems found before sending (nothing is sent then)."""
    env = env or Env()
    started_at = time.perf_counter()
    output = options.output or default_output_for(options.input)
    with collector_paused():
        table, plan, pool = prepare(options, output)
    summary = RunSummary(output=output, dry_run=options.dry_run)
    outcomes: list[Outcome | None] = [None] * len(table)
    with api_target(options) as target:
        plan, journal_path = run_async(
            _online(options, env, target, output, plan, pool, outcomes, summary)
        )
    with collector_paused():
        frame = outcome_frame(plan, outcomes)
        summary.add_counts(
            dict(frame.get_column("status").value_counts().iter_rows()),
            dict(frame.get_column("error_code").value_counts().iter_rows()),
        )
        summary.elapsed = time.perf_counter() - started_at
        write_results(
            output,
            table.columns,
            contract_frame(table.frame, frame),
            stdout=env.stdout,
            summary=summary,
            bom=options.bom,
        )
    if not options.quiet:
        env.log(format_summary(summary))
    return RunReport(summary=summary, frame=frame, output=output, journal=journal_path)


@contextlib.contextmanager
def collector_paused():
    """Building a million rows of plain data makes no reference cycles, but it does make the
    cyclic garbage collector scan the growing heap again and again: pause it meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: Tracked allocations between two young-generation collections while requests go out (the
#: interpreter's default is 700).
SENDING_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def collector_at_ease():
    """While requests go out: what lives all run (table, leads) is frozen out of collections,
    and the young generation is collected every 50,000 allocations instead of 700.

    Sending makes no reference cycles (a full collection after 20,000 requests, journal and
    all, found none), yet at the default pace the collector took 1.4 s of a 50,000-row run at
    zero latency (8 to 10.7 s in all), mostly rescanning the outcomes piling up; now 0.06 s.
    Collections still happen, so cycles made on rare paths (errors) are still freed. The
    settings are the process's: they are restored afterwards."""
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(SENDING_GC_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def prepare(options: RunOptions, output: str | None) -> tuple[Table, pl.DataFrame, tuple[str, ...]]:
    """Read, check and validate everything before anything is sent: the table, its plan (see
    ``leads.PLAN_SCHEMA``) and the operator pool, read once here."""
    table = read_table(
        options.input,
        sheet=options.sheet,
        encoding=options.encoding,
        delimiter=options.delimiter,
        phone_column=options.phone_column,
    )
    if output is not None:
        check_output(output, options.input)
        check_capacity(output, len(table))
    columns = map_columns(
        table, options.phone_column, options.operators_column, options.department_column
    )
    if not (options.dry_run or options.sandbox) and output is not None:
        check_token(options.token)
        check_base_url(options.base_url)
    if options.distribute not in DISTRIBUTIONS:
        raise PoolError(f"--distribute: '{options.distribute}' is not one of {DISTRIBUTIONS}")
    pool = read_pool(options.pool, options.pool_file)
    if (options.pool or options.pool_file) and not pool:
        raise PoolError("the operator pool is empty; give IDs with --pool A,B or --pool-file")
    if pool and options.operators:
        raise PoolError("give --operator or --pool, not both: both fill empty operator cells")
    defaults = LeadDefaults(
        options.operators, options.department, options.country_code, pool=bool(pool)
    )
    return table, validate_table(table, columns, defaults), pool


async def _online(
    options: RunOptions,
    env: Env,
    target: Target,
    output: str,
    plan: pl.DataFrame,
    pool: tuple[str, ...],
    outcomes: list[Outcome | None],
    summary: RunSummary,
) -> tuple[pl.DataFrame, Path | None]:
    """Everything that talks to the API, on one client: look names up, plan, send.

    Returns the final plan and the journal's path, if the run kept one. ``outcomes`` gets the
    outcome of every row sent (or done by an earlier run); rows never sent are ``skipped`` with
    the reason, in the plan or in ``outcomes``.
    """
    async with contextlib.AsyncExitStack() as stack:
        client = None
        if target.token:
            client = await stack.enter_async_context(
                PlugChatClient(
                    target.base_url,
                    target.token,
                    timeout=options.timeout,
                    concurrency=options.concurrency,
                )
            )
        directory = await _lookups(options, target, client, plan, summary)
        if not summary.token_refused:
            with collector_paused():
                plan = plan_requests(options, plan, directory, pool)
        if options.dry_run or summary.token_refused:
            reason = (
                (ErrorCode.DRY_RUN, "validated, not sent")
                if options.dry_run
                else (ErrorCode.UNAUTHORIZED, UNSENT_UNAUTHORIZED)
            )
            return decide_pending(plan, RowStatus.SKIPPED, *reason), None
        with collector_paused():  # a Lead per row to send: plain data, no cycles
            leads = leads_to_send(plan)
        journal = _open_journal(options, output, env) if leads else None
        to_send = _reuse_prior(journal, leads, outcomes, summary) if journal else leads
        try:
            if to_send:
                with collector_at_ease():
                    await _send(options, env, client, to_send, outcomes, journal, summary)
            for lead in leads:  # whatever was never sent: say so, never leave a row out
                if outcomes[lead.index] is None:
                    outcomes[lead.index] = _unsent(lead, summary.interrupted_by, journal)
        finally:
            if journal is not None:
                with collector_paused():  # the fold reads back a record per row: plain data
                    journal.close(complete=not (summary.interrupted_by or summary.token_refused))
        return plan, journal.path if journal else None


async def _lookups(
    options: RunOptions,
    target: Target,
    client: PlugChatClient | None,
    plan: pl.DataFrame,
    summary: RunSummary,
) -> Directory:
    """The account's departments (when a row names one) and operators (with a ticket)."""
    if client is None or not options.lookup:
        return Directory()
    need_departments = not plan.filter(PENDING & pl.col("department").is_not_null()).is_empty()
    if not (need_departments or target.ticket):
        return Directory()
    try:
        return await fetch_directory(
            client,
            target.base_url,
            ticket=target.ticket,
            operators=bool(target.ticket),
            departments=need_departments,
        )
    except TokenRefusedError:
        summary.token_refused = True  # nothing is sent: every row ends up skipped (unauthorized)
        return Directory()


def plan_requests(
    options: RunOptions, plan: pl.DataFrame, directory: Directory, pool: tuple[str, ...]
) -> pl.DataFrame:
    """Resolve names with ``directory``, skip duplicates, assign ``pool`` (in that order)."""
    if options.lookup:
        plan = resolve_names(plan, directory)
    if not options.allow_duplicates:
        plan = skip_duplicates(plan)
    if pool:
        members = resolve_pool(pool, directory) if options.lookup else pool
        plan = assign_pool(plan, members, options.distribute)
    return plan


def _open_journal(options: RunOptions, output: str, env: Env) -> Journal | None:
    path = options.journal or (None if output == STDOUT else default_journal_path(output))
    if path is None:
        return None
    journal = Journal.open(
        Path(path),
        input_digest=file_digest(options.input),
        request_options=options.request_options(),
        fresh=options.fresh,
    )
    if journal.restarted_reason and not options.quiet:
        env.log(
            "batch-attend: "
            + _("starting a new journal in {path}: {reason}.").format(
                path=path, reason=journal.restarted_reason
            )
        )
    return journal


def _reuse_prior(
    journal: Journal, leads: list[Lead], outcomes: list[Outcome | None], summary: RunSummary
) -> list[Lead]:
    """Rows an earlier run finished keep their outcome; the rest are sent (again)."""
    to_send = []
    for lead in leads:
        prior = journal.prior.get(lead.index)
        if (
            prior is not None
            and prior.outcome is not None
            and prior.outcome.status in DONE_STATUSES
        ):
            outcomes[lead.index] = replace(prior.outcome, phone=lead.phone)
            summary.resumed += 1
        else:
            to_send.append(lead)
    return to_send


def _unsent(lead: Lead, interrupted_by: str | None, journal: Journal | None) -> Outcome:
    prior = journal.prior.get(lead.index) if journal else None
    if interrupted_by:
        code = ErrorCode.INTERRUPTED
        message = f"not finished: the run was interrupted ({interrupted_by})"
        message += "; run the same command again to resume" if journal else ""
    else:
        code = ErrorCode.UNAUTHORIZED
        message = UNSENT_UNAUTHORIZED
    return Outcome(
        RowStatus.SKIPPED,
        phone=lead.phone,
        operators=lead.operators,
        error_code=code,
        error_message=message,
        attempts=prior.attempts if prior else 0,
    )


async def _send(
    options: RunOptions,
    env: Env,
    client: PlugChatClient,
    leads: list[Lead],
    outcomes: list[Outcome | None],
    journal: Journal | None,
    summary: RunSummary,
) -> None:
    progress = Progress(len(leads), env, enabled=not options.quiet)

    def record(lead: Lead, outcome: Outcome) -> None:
        outcomes[lead.index] = outcome
        progress.advance()

    log = RequestLog(options.log_file) if options.log_file else None

    def on_attempt(lead: Lead, attempt: int, outcome: Outcome, seconds: float, wait) -> None:
        if log is not None:
            log.write(lead, attempt, outcome, seconds, wait)
        if options.verbose:
            trace(lead, attempt, outcome, seconds, wait)

    def trace(lead: Lead, attempt: int, outcome: Outcome, seconds: float, wait) -> None:
        what = outcome.error or str(outcome.status)
        http = f" HTTP {outcome.http_status}" if outcome.http_status else ""
        then = f"; retry in {wait:.1f} s" if wait is not None else ""
        progress.write(
            f"row {lead.row} {mask_phone(lead.phone)} attempt {attempt}:{http} "
            f"{what} ({seconds * 1000:.0f} ms){then}"
        )

    engine = Engine(
        client,
        concurrency=options.concurrency,
        policy=RetryPolicy(retries=options.retries, base=options.backoff),
        backpressure=Backpressure(options.concurrency, options.rate),
        journal=journal,
        prior=journal.prior if journal else None,
        on_outcome=record,
        on_attempt=on_attempt if (options.verbose or log is not None) else None,
        grace=options.grace,
    )
    try:
        with signals_stop(engine):
            await engine.run(leads)
    finally:
        progress.close()
        if log is not None:
            log.close()
    summary.sent_rows = len(leads)
    summary.requests = engine.requests
    summary.retries = engine.retries
    summary.pushbacks = engine.gate.pushbacks
    if engine.stop_reason == "unauthorized":
        summary.token_refused = True
    elif engine.stop_reason:
        summary.interrupted_by = engine.stop_reason
