"""One run from end to end: read → validate → plan → send → journal → results.

:func:`run_batch` is the library's entry point and what the CLI calls; the sending itself is
:class:`~batch_attend.engine.Engine`'s. Before anything is sent, the input is read and checked
whole and the ledger is consulted: a lead it shows done is carried over, never sent again. The
results are then built from the ledger, so they say what it says, whatever stopped the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batch_attend import sentences
from batch_attend.api import PlugChatClient, check_base_url, check_token
from batch_attend.directory import (
    Directory,
    OnlineState,
    TokenRefusedError,
    fetch_directory,
    fetch_online,
)
from batch_attend.engine import Engine, HeldSignals, signals_stop
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _, ngettext
from batch_attend.journal import Journal, default_journal_path
from batch_attend.leads import Lead, LeadDefaults, leads_to_send, pending, validate
from batch_attend.outcomes import ErrorCode, ExitStatus, Outcome, RunSummary, exit_status_for
from batch_attend.planning import (
    DISTRIBUTIONS,
    PoolError,
    assign_pool,
    carry_over,
    keep_online,
    online_members,
    read_pool,
    resolve_names,
    resolve_pool,
    skip_duplicates,
)
from batch_attend.reading import (
    STDIN,
    STDIN_NAME,
    ColumnMap,
    Table,
    describe_columns,
    map_columns,
    read_stdin_table,
    read_table,
)
from batch_attend.request_log import RequestLog, mask_phone
from batch_attend.results import (
    STDOUT,
    OutputError,
    check_capacity,
    check_cell_lengths,
    check_output,
    check_writable,
    contract_frame,
    csv_delimiter,
    default_output_for,
    format_summary,
    outcome_frame,
    outcomes_of,
    records_in_results,
    started_at,
    write_results,
    write_summary_json,
)
from batch_attend.retrying import Backpressure, RetryPolicy
from batch_attend.settings import TOKEN_ENV, RunOptions, resolve_token
from batch_attend.whatsapp import (
    WhatsAppUnknown,
    apply_exists,
    ask_exists,
    check_connected,
    other_forms_to_ask,
    phones_to_ask,
    whatsapp_status,
)

UNSENT = {
    "dry_run": (ErrorCode.DRY_RUN, sentences.DRY_RUN),
    "whatsapp_disconnected": (ErrorCode.WHATSAPP_DISCONNECTED, sentences.WHATSAPP_DROPPED),
    "write_failed": (ErrorCode.INTERRUPTED, sentences.JOURNAL_FAILED),
    "unauthorized": (ErrorCode.UNAUTHORIZED, sentences.TOKEN_REFUSED_EARLIER),
}


@dataclass
class RunReport:
    summary: RunSummary
    frame: pd.DataFrame  # every row's outcome, see results.OUTCOME_COLUMNS
    output: str
    journal: Path | None
    exit_status: ExitStatus

    @functools.cached_property
    def outcomes(self) -> list[Outcome]:
        """One :class:`Outcome` per input row, in input order."""
        return outcomes_of(self.frame)


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


class Watch:
    """A run seen and stopped from another thread (the web page): how far it is, and a cancel
    that stops it as Ctrl-C does (requests in flight finish, the rest is ``skipped``, a rerun
    resumes from the ledger). Thread-safe; the CLI passes none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows = 0  # every row of the input
        self.total = 0  # rows to send
        self.done = 0  # rows to send that an answer decided
        self.counts: Counter = Counter()  # per status, rows decided before sending included
        self.started: float | None = None  # time.monotonic() when sending began
        self.cancelled = False
        self._engine: Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def planned(self, plan: pd.DataFrame, todo: int) -> None:
        decided = plan.loc[~pending(plan), "status"].value_counts().to_dict()
        with self._lock:
            self.rows, self.total = len(plan), todo
            self.counts.update({str(k): int(v) for k, v in decided.items()})

    def attach(self, engine: Engine) -> None:
        """Called on the run's loop as sending begins; a cancel that came earlier stops it now."""
        with self._lock:
            self._engine, self._loop = engine, asyncio.get_running_loop()
            self.started = time.monotonic()
            stop = self.cancelled
        if stop:
            engine.stop("SIGINT")

    def detach(self) -> None:
        with self._lock:
            self._engine = self._loop = None

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
            engine, loop = self._engine, self._loop
        if engine is not None:
            loop.call_soon_threadsafe(engine.stop, "SIGINT")

    def snapshot(self) -> dict:
        with self._lock:
            elapsed = time.monotonic() - self.started if self.started is not None else 0.0
            rate = self.done / elapsed if elapsed > 0 else 0.0
            left = (self.total - self.done) / rate if rate > 0 else None
            return {
                "rows": self.rows,
                "total": self.total,
                "done": self.done,
                "counts": dict(self.counts),
                "rows_per_s": round(rate, 1),
                "seconds_left": None if left is None else round(left),
                "cancelled": self.cancelled,
            }


@dataclass(frozen=True)
class Target:
    """Where requests go for this run, the credentials they carry, and the name the ledger
    knows the account by."""

    base_url: str
    token: str | None
    ticket: str | None
    name: str
    account_id: str | None = None  # for who is online


@contextlib.contextmanager
def api_target(options: RunOptions, env: Env):
    """The built-in sandbox for the run (with its own token and ticket), or the configured API."""
    requests = options.requests
    if requests.sandbox:
        from batch_attend.sandbox import SANDBOX_ACCOUNT_ID, SANDBOX_TICKET, SandboxServer

        with SandboxServer() as server:
            yield Target(
                server.base_url, server.token, SANDBOX_TICKET, "sandbox", SANDBOX_ACCOUNT_ID
            )
    else:
        token = resolve_token(requests, env.environ)
        base_url = requests.base_url.rstrip("/")
        yield Target(base_url, token, requests.ticket, base_url, requests.account_id)


def run_async(coro):
    """Run ``coro`` on uvloop where it is installed (less CPU per request), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as loop_runner:
        return loop_runner.run(coro)


@dataclass
class Prepared:
    """A batch read and checked whole, before anything is sent."""

    table: Table
    plan: pd.DataFrame  # validated, see leads.PLAN_COLUMNS; not yet carried over or deduplicated
    pool: tuple[str, ...]
    output: str
    columns: ColumnMap | None = None  # which column holds what, and why (for check, dry runs)


def prepare(options: RunOptions, env: Env, *, sending: bool) -> Prepared:
    """Read, check and validate everything that needs no network: the table, its validated
    plan, and the operator pool. ``sending``: also check what sending needs (the
    output, the token, the base URL). INPUT ``-`` is read from ``env.stdin``; having no name,
    it needs ``-o`` (and ``--journal`` with ``-o -``) to send, checked before it is read."""
    source = options.input
    stdin = source.path == STDIN
    if stdin and sending:
        check_stdin_places(options)
    how = dict(
        sheet=source.sheet,
        encoding=source.encoding,
        delimiter=source.delimiter,
        phone_column=source.phone_column,
        header_row=source.header_row,
    )
    if stdin:
        table = read_stdin_table(getattr(env.stdin, "buffer", env.stdin), **how)
    else:
        table = read_table(source.path, **how)
    output = options.output.path or (STDOUT if stdin else default_output_for(source.path))
    if sending:
        check_output(output, source.path, input_is_results=table.results is not None)
        check_capacity(output, len(table))
        check_cell_lengths(output, table)
    columns = map_columns(
        table,
        source.phone_column,
        source.operators_column,
        source.department_column,
        source.ddd_column,
    )
    requests = options.requests
    if sending and not requests.sandbox:
        check_base_url(requests.base_url)
        if not options.sending.dry_run:
            check_token(resolve_token(requests, env.environ))
    if requests.distribute not in DISTRIBUTIONS:
        raise PoolError(
            _("--distribute: '{value}' is not one of {choices}").format(
                value=requests.distribute, choices=", ".join(DISTRIBUTIONS)
            )
        )
    pool = read_pool(requests.pool, requests.pool_file)
    if (requests.pool or requests.pool_file) and not pool:
        raise PoolError(_("the operator pool is empty; give IDs with --pool A,B or --pool-file"))
    if pool and requests.operators:
        raise PoolError(_("give --operator or --pool, not both: both fill empty operator cells"))
    defaults = LeadDefaults(
        requests.operators, requests.department, requests.country_code, pool=bool(pool)
    )
    return Prepared(table, validate(table, columns, defaults), pool, output, columns)


def check_stdin_places(options: RunOptions) -> None:
    """Standard input has no name to put the results, or a ledger, beside: a run from it must
    be told where they go."""
    if options.output.path is None:
        raise OutputError(
            _(
                "{path}: the input has no name to put the results beside; give -o PATH (or -o - for stdout)."
            ).format(path=STDIN_NAME)
        )
    if options.output.path == STDOUT and options.output.journal is None:
        raise OutputError(
            _(
                "{path}: with the results on stdout too, the journal has no file to sit beside; give --journal PATH."
            ).format(path=STDIN_NAME)
        )


def journal_path(options: RunOptions, output: str) -> Path | None:
    """The ledger: ``--journal``, else beside the results (beside the input for stdout), the
    real file's when the path given is a link, so that every way of naming the results finds
    the same ledger. It may be neither the input nor the results. None for standard input
    with the results on stdout: nowhere to keep one (a run refuses it, see
    :func:`check_stdin_places`; a check reads none)."""
    if options.output.journal is not None:
        path = Path(options.output.journal)
    elif output == STDOUT and options.input.path == STDIN:
        return None
    elif output == STDOUT:
        path = Path(os.path.realpath(options.input.path) + ".journal")
    else:
        path = default_journal_path(os.path.realpath(output))
    for other in (str(options.input.path), output):
        if other != STDOUT and os.path.realpath(path) == os.path.realpath(other):
            raise OutputError(
                _("{path}: the journal would overwrite {other}; choose another --journal.").format(
                    path=path, other=other
                )
            )
    return path


def carried_over(plan: pd.DataFrame, table: Table, journal: Journal | None) -> pd.DataFrame:
    """The plan with every lead the ledger (or a results file given as input) shows done
    carried over."""
    done = {r.phone: r.status for r in records_in_results(table.results)}
    if journal is not None:
        done.update(journal.done())
    return carry_over(plan, done)


async def lookups(
    options: RunOptions, target: Target, client: PlugChatClient, plan: pd.DataFrame
) -> Directory:
    """The account's departments (when a row to send names one) and operators (with a
    ticket); raises :class:`TokenRefusedError` on a 401."""
    if not options.requests.lookup:
        return Directory()
    need_departments = bool((plan["department"][pending(plan)] != "").any())
    if not (need_departments or target.ticket):
        return Directory()
    return await fetch_directory(
        client,
        target.base_url,
        ticket=target.ticket,
        operators=bool(target.ticket),
        departments=need_departments,
    )


def pool_members(options: RunOptions, pool: tuple[str, ...], directory: Directory | None):
    """The pool as IDs (a member that does not resolve is a usage error: nothing is sent)."""
    if pool and directory is not None and options.requests.lookup:
        return resolve_pool(pool, directory)
    return pool


def plan_requests(
    options: RunOptions,
    plan: pd.DataFrame,
    directory: Directory | None,
    members: tuple[str, ...],
    online: list[OnlineState] | None = None,
) -> pd.DataFrame:
    """Resolve names with ``directory`` (None: no lookups were made), skip the later rows of a
    phone (a row whose names do not resolve claims no phone), keep the operators ``online``
    now (``--online-only``), then give the pool's ``members`` (those online) to the rows still
    to send that have no operators."""
    if directory is not None and options.requests.lookup:
        plan = resolve_names(plan, directory)
    plan = skip_duplicates(plan)
    if online is not None:
        plan = keep_online(plan, online)
        members = online_members(members, online)
    return assign_pool(plan, members, options.requests.distribute) if members else plan


def run_batch(options: RunOptions, env: Env | None = None, watch: Watch | None = None) -> RunReport:
    """Run one batch end to end and write its results (and ``--summary-json``); raises
    :class:`BatchAttendError` for problems found before sending (nothing is sent then, and an
    existing results file is left as it was). ``watch``: progress and cancel for a caller in
    another thread."""
    env = env or Env()
    facts = {"exit_code": None, "started_at": started_at(), "input": str(options.input.path)}
    facts.update(output=None, journal=None, retry_at=None)
    clock = time.perf_counter()
    try:
        report = _run(options, env, clock, watch)
    except BatchAttendError as exc:
        facts["exit_code"] = int(exc.exit_status)
        with contextlib.suppress(OSError):  # the summary's own path may be what is wrong
            write_summary_json(options.output.summary_json, None, facts, str(exc))
        raise
    except KeyboardInterrupt:
        facts["exit_code"] = int(ExitStatus.INTERRUPTED)
        write_summary_json(
            options.output.summary_json, None, facts, "interrupted before any request was sent"
        )
        raise
    facts.update(
        retry_at=report.summary.retry_at,
        exit_code=int(report.exit_status),
        output=report.output,
        journal=str(report.journal) if report.journal else None,
    )
    try:
        write_summary_json(
            options.output.summary_json, report.summary, facts, report.summary.write_error
        )
    except OSError as exc:
        env.log(
            "batch-attend: "
            + _("error: {path}: the summary could not be written ({reason}).").format(
                path=options.output.summary_json, reason=_reason(exc)
            )
        )
        report.exit_status = ExitStatus.WRITE_FAILED
    return report


def _run(options: RunOptions, env: Env, clock: float, watch: Watch | None = None) -> RunReport:
    dry_run = options.sending.dry_run
    batch = prepare(options, env, sending=True)
    summary = RunSummary(output=batch.output, dry_run=dry_run, started_at=started_at())
    summary.input = str(options.input.path)
    summary.department_column = options.input.department_column
    path = journal_path(options, batch.output)
    for file in (None if dry_run else path, options.output.summary_json, options.output.log_file):
        if file is not None:
            check_writable(Path(file))
    held = HeldSignals()
    journal = None
    try:
        if dry_run:  # no network, and the ledger is only read
            if not options.display.quiet:  # what was read, as check says it
                env.log(_("Input: {source}").format(source=batch.table.where))
                for line in describe_columns(batch.table, batch.columns):
                    env.log(line)
            plan, frame = _dry_run(options, env, batch, Journal.open_readonly(path))
            stopped = "dry_run"
        else:
            with api_target(options, env) as target:
                plan, frame, stopped, journal = run_async(
                    _online(options, env, target, batch, path, summary, held, watch)
                )
        summary.resumed = int(plan["carried"].sum())
        summary.counts.update(frame["status"].value_counts().to_dict())
        codes = frame.loc[frame["error_code"] != "", "error_code"]
        summary.error_counts.update(codes.value_counts().to_dict())
        summary.elapsed = time.perf_counter() - clock
        summary.token_refused = stopped == "unauthorized"
        summary.interrupted_by = stopped if stopped in ("SIGINT", "SIGTERM") else None
        try:
            write_results(
                batch.output,
                batch.table.columns,
                contract_frame(batch.table.frame, frame),
                stdout=env.stdout,
                summary=summary,
                bom=options.output.bom,
                delimiter=csv_delimiter(
                    options.output.output_delimiter,
                    batch.table.delimiter,
                    options.output.results_lang,
                ),
                lang=options.output.results_lang or "en",
            )
        except OSError as exc:
            if isinstance(exc, BrokenPipeError) or batch.output == STDOUT:
                raise
            summary.write_error = summary.write_error or _(
                "{path}: the results could not be written ({reason})"
            ).format(path=batch.output, reason=_reason(exc))
    finally:
        held.release()
        if journal is not None:
            journal.unlock()
    summary.interrupted_by = summary.interrupted_by or held.name  # came once sending was done
    journal = None if dry_run else path
    _say_how_it_ended(summary, options, env, journal)
    return RunReport(summary, frame, batch.output, journal, exit_status_for(summary))


def _marked_skipped(count: int) -> str:
    return ngettext(
        "{count} row is marked skipped", "{count} rows are marked skipped", count
    ).format(count=f"{count:,}")


def _reason(exc: Exception) -> str:
    """An OS or SQLite error in words (``No space left on device``, ``database or disk is
    full``)."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _outcomes(
    plan: pd.DataFrame,
    batch: Prepared,
    journal: Journal | None,
    stopped,
    *,
    resolved: bool,
    retry_at: str | None = None,
):
    """Every row's outcome, from the plan and what the ledger (and a results file given as
    input) recorded; rows left undecided are skipped, saying why. ``resolved``: the plan's
    operators are IDs, so a carried row's can be compared with what was sent."""
    records = itertools.chain(
        journal.records() if journal else (), records_in_results(batch.table.results)
    )
    if stopped == "rate_limited":
        unsent = (ErrorCode.RATE_LIMITED, sentences.NOT_SENT_RETRY_AT.format(when=retry_at))
    else:
        unsent = UNSENT.get(stopped) or (
            ErrorCode.INTERRUPTED,
            sentences.NOT_FINISHED.format(signal=stopped),
        )
    return outcome_frame(plan, records, unsent, compare_asked=resolved)


def _dry_run(options: RunOptions, env: Env, batch: Prepared, journal: Journal | None):
    """No start, and the ledger only read; with ``--verify-whatsapp`` its GET requests are
    made (and said), their answers not kept."""
    try:
        plan = batch.plan
        if options.requests.verify_whatsapp:
            with api_target(options, env) as target:
                plan = run_async(verify_apart(options, env, target, batch, journal))
        plan = carried_over(plan, batch.table, journal)
        plan = plan_requests(options, plan, None, batch.pool)
        resolved = not options.requests.lookup  # no lookups in a dry run: names stay names
        return plan, _outcomes(plan, batch, journal, "dry_run", resolved=resolved)
    finally:
        if journal is not None:
            journal.close()


async def _online(
    options: RunOptions,
    env: Env,
    target: Target,
    batch: Prepared,
    path: Path,
    summary: RunSummary,
    held: HeldSignals,
    watch: Watch | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, str | None, Journal]:
    """Everything that talks to the API, on one client, with the ledger open: look names up,
    plan, send. Returns the final plan, every row's outcome, why sending stopped early (None
    when it did not), and the closed journal, still locked."""
    async with PlugChatClient(
        target.base_url,
        target.token,
        timeout=options.sending.timeout,
        concurrency=options.sending.concurrency,
        rate=options.sending.rate,
        policy=RetryPolicy(retries=options.sending.retries, base=options.sending.backoff),
    ) as client:
        journal = Journal.open(
            path, target=target.name, input=str(options.input.path), fresh=options.output.fresh
        )
        if journal.set_aside is not None and not options.display.quiet:
            env.log(
                "batch-attend: "
                + _("--fresh: the journal it forgets is kept as {path}.").format(
                    path=journal.set_aside
                )
            )
        stopped = None
        try:
            gate = client.gate
            plan, online = batch.plan, None
            try:
                directory = await lookups(options, target, client, plan)
                members = pool_members(options, batch.pool, directory)
                if options.requests.status_check and pending(plan).any():
                    await check_connected(client, target.base_url)
                if options.requests.verify_whatsapp:
                    plan = await verify_whatsapp(options, env, client, plan, batch, journal, gate)
                if options.requests.online_only:
                    online = await fetch_online(client, target.base_url, target.account_id)
            except TokenRefusedError:
                directory, members, stopped = Directory(), batch.pool, "unauthorized"
            plan = carried_over(plan, batch.table, journal)
            journal.adopt(records_in_results(batch.table.results))
            plan = plan_requests(options, plan, None if stopped else directory, members, online)
            todo = 0 if stopped else int(pending(plan).sum())
            if watch is not None:
                watch.planned(plan, todo)
            if todo:
                held.hold()  # from here on, what is sent is written out whatever comes
                try:
                    stopped = await _send(
                        options,
                        env,
                        client,
                        leads_to_send(plan),
                        todo,
                        journal,
                        summary,
                        gate,
                        watch,
                    )
                except Exception as exc:
                    if journal.failure is None:
                        raise
                    stopped = "write_failed"
                    summary.write_error = _(
                        "{path}: the journal could not be written ({reason})"
                    ).format(path=path, reason=_reason(exc))
            outcomes = _outcomes(
                plan,
                batch,
                journal,
                stopped,
                resolved=stopped != "unauthorized",
                retry_at=summary.retry_at,
            )
        except BaseException:
            journal.close(stopped)
            raise
        journal.close(stopped, unlock=False)  # held until the results are written
        return plan, outcomes, stopped, journal


async def verify_apart(
    options: RunOptions, env: Env, target: Target, batch: Prepared, journal: Journal | None
) -> pd.DataFrame:
    """``--verify-whatsapp`` for a dry run or a check: its own client and gate, nothing kept."""
    async with PlugChatClient(
        target.base_url,
        target.token,
        timeout=options.sending.timeout,
        concurrency=options.sending.concurrency,
    ) as client:
        gate = Backpressure(options.sending.concurrency, options.sending.rate)
        return await verify_whatsapp(
            options, env, client, batch.plan, batch, journal, gate, keep=False
        )


async def verify_whatsapp(
    options: RunOptions,
    env: Env,
    client: PlugChatClient,
    plan: pd.DataFrame,
    batch: Prepared,
    journal: Journal | None,
    gate: Backpressure,
    *,
    keep: bool = True,
) -> pd.DataFrame:
    """``--verify-whatsapp``: ask PlugChat whether each phone still to send has WhatsApp (and,
    for a Brazilian mobile without, its other ninth-digit form), with the run's gate and
    retries, and apply the answers to the plan. Answers an earlier run kept are not asked
    again; this run's are kept in the ledger (``keep``)."""
    known = journal.whatsapp_answers() if journal is not None else {}
    done = {r.phone for r in records_in_results(batch.table.results)}
    done.update(journal.done() if journal is not None else ())
    policy = RetryPolicy(retries=options.sending.retries, base=options.sending.backoff)
    found: dict[str, bool | None] = dict(known)
    asked = phones_to_ask(plan, done.union(known))
    found.update(await ask_exists(client, client.base_url, asked, gate, policy))
    others = other_forms_to_ask(asked + [p for p in known if p not in done], found)
    found.update(await ask_exists(client, client.base_url, others, gate, policy))
    if keep and journal is not None:
        journal.note_whatsapp({p: found[p] for p in asked + others})
    if not options.display.quiet:
        env.log(
            "batch-attend: "
            + _(
                "asked PlugChat whether {count} phones have WhatsApp ({known} known from an "
                "earlier run)."
            ).format(count=f"{len(asked) + len(others):,}", known=f"{len(known):,}")
        )
    return apply_exists(plan, found, done)


async def _send(
    options: RunOptions,
    env: Env,
    client: PlugChatClient,
    leads,
    total: int,
    journal: Journal,
    summary: RunSummary,
    gate: Backpressure,
    watch: Watch | None = None,
) -> str | None:
    progress = Progress(total, env, enabled=not options.display.quiet)
    log = RequestLog(options.output.log_file) if options.output.log_file else None

    def on_attempt(lead: Lead, attempt: int, outcome: Outcome, seconds: float, wait) -> None:
        if log is not None:
            log.write(lead, attempt, outcome, seconds, wait)
        if options.display.verbose:
            what = outcome.error or str(outcome.status)
            http = f" HTTP {outcome.http_status}" if outcome.http_status else ""
            then = f"; retry in {wait:.1f} s" if wait is not None else ""
            progress.write(
                f"row {lead.row} {mask_phone(lead.phone)} attempt {attempt}:{http} "
                f"{what} ({seconds * 1000:.0f} ms){then}"
            )

    async def recheck() -> str | None:
        try:
            status = await whatsapp_status(client, client.base_url)
        except (WhatsAppUnknown, TokenRefusedError):
            return None  # not known to have dropped: the answers speak for themselves
        return None if status.ok else status.problem()

    def on_outcome(lead: Lead, outcome: Outcome) -> None:
        progress.advance()
        if watch is not None:
            watch.decided(outcome)

    sending = options.sending
    engine = Engine(
        client,
        concurrency=sending.concurrency,
        policy=RetryPolicy(retries=sending.retries, base=sending.backoff),
        backpressure=gate,
        journal=journal,
        on_outcome=on_outcome,
        on_attempt=on_attempt if (options.display.verbose or log is not None) else None,
        grace=sending.grace,
        recheck=recheck if options.requests.status_check else None,
    )
    try:
        with signals_stop(engine):
            if watch is not None:
                watch.attach(engine)
            return await engine.run(leads)
    finally:
        if watch is not None:
            watch.detach()
        progress.close()
        if log is not None:
            log.close()
        summary.sent_rows = engine.sent_leads
        summary.decided_rows = engine.decided
        summary.requests = engine.requests
        summary.retries = engine.retries
        summary.pushbacks = engine.gate.pushbacks
        if engine.retry_at is not None:
            summary.retry_at = engine.retry_at.isoformat(timespec="seconds")
        summary.whatsapp_problem = engine.problem


def _say_how_it_ended(summary: RunSummary, options: RunOptions, env: Env, journal: Path | None):
    if not options.display.quiet:
        env.log(format_summary(summary))
    if summary.write_error:
        env.log(
            f"batch-attend: {_('error')}: {summary.write_error}. "
            + _(
                "Sending stopped; what could be written was. Rows whose answer was not "
                "recorded are marked skipped: fix this and run the same command again, and "
                "nothing is started twice."
            )
        )
    elif summary.interrupted_by:
        unsent = summary.error_counts.get(ErrorCode.INTERRUPTED, 0)
        env.log(
            "batch-attend: "
            + _("interrupted ({signal}); {skipped}.").format(
                signal=summary.interrupted_by,
                skipped=ngettext(
                    "{count} row not finished is marked skipped",
                    "{count} rows not finished are marked skipped",
                    unsent,
                ).format(count=f"{unsent:,}"),
            )
            + " "
            + _("Run the same command again to resume (progress is in {journal}).").format(
                journal=journal
            )
        )
    elif summary.whatsapp_problem:
        skipped = summary.error_counts.get(ErrorCode.WHATSAPP_DISCONNECTED, 0)
        env.log(
            "batch-attend: "
            + _(
                "{problem}; sending stopped. {skipped}: reconnect it in PlugChat and run the "
                "same command again."
            ).format(problem=summary.whatsapp_problem, skipped=_marked_skipped(skipped))
        )
    elif summary.retry_at:
        skipped = summary.error_counts.get(ErrorCode.RATE_LIMITED, 0)
        env.log(
            "batch-attend: "
            + _(
                "the API asked to be called again at {when}, later than batch-attend waits; "
                "sending stopped. {skipped}: run the same command again after that time to "
                "resume."
            ).format(when=summary.retry_at, skipped=_marked_skipped(skipped))
        )
    elif summary.token_refused:
        skipped = summary.error_counts.get(ErrorCode.UNAUTHORIZED, 0)
        env.log(
            "batch-attend: "
            + _(
                "the API refused the token (HTTP 401); sending stopped. Check {env} (or --token). "
                "{skipped}: fix the token and run again."
            ).format(env=TOKEN_ENV, skipped=_marked_skipped(skipped))
        )
