"""The engine: read → validate → plan → send (bounded, async) → classify → results + summary.

:func:`run_batch` is the library's entry point and what the CLI calls; :func:`send_leads` is the
async core for callers that already hold validated leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from batch_attend.api import DEFAULT_BASE_URL, PlugChatClient, check_base_url, check_token, classify
from batch_attend.env import Env
from batch_attend.leads import (
    DEFAULT_COUNTRY_CODE,
    Lead,
    LeadDefaults,
    duplicate_of,
    validate_table,
)
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus, RunSummary
from batch_attend.reading import map_columns, read_table
from batch_attend.results import check_output, default_output_for, format_summary, write_results

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT = 30.0


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
    phone_column: str | None = None
    operators_column: str | None = None
    department_column: str | None = None
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    dry_run: bool = False
    allow_duplicates: bool = False
    sandbox: bool = False
    quiet: bool = False
    bom: bool = True

    def __post_init__(self) -> None:
        self.input = Path(self.input)


@dataclass
class RunReport:
    summary: RunSummary
    outcomes: list[Outcome] = field(default_factory=list)
    output: str = ""


class Progress:
    """A tqdm bar on stderr for a person watching; nothing at all for pipes, files and --quiet."""

    def __init__(self, total: int, env: Env, enabled: bool) -> None:
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

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def send_leads(
    leads: Sequence[Lead],
    client: PlugChatClient,
    *,
    concurrency: int,
    on_outcome: Callable[[Lead, Outcome], None],
) -> bool:
    """Send every lead with at most ``concurrency`` requests in flight.

    ``on_outcome`` is called once per lead that got an answer. Returns True when the API refused
    the token: no request is started after the first 401, and the leads never sent get no call.
    """
    pending: Iterator[Lead] = iter(leads)
    refused = False

    async def worker() -> None:
        nonlocal refused
        for lead in pending:
            if refused:
                return
            answer = await client.start_attendance(lead)
            outcome = classify(answer)
            outcome.phone = lead.phone
            outcome.attempts = 1
            if outcome.status is not RowStatus.ALREADY_IN_SERVICE:
                outcome.operators = lead.operators  # the IDs sent; otherwise the API's own list
            if outcome.error_code == ErrorCode.UNAUTHORIZED:
                refused = True
            on_outcome(lead, outcome)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(leads))))]
    await asyncio.gather(*workers)
    return refused


@contextlib.contextmanager
def _api_target(options: RunOptions):
    """(base URL, token) for the run: the built-in sandbox, or the configured API."""
    if options.sandbox:
        from batch_attend.sandbox import SandboxServer

        with SandboxServer() as server:
            yield server.base_url, server.token
    else:
        yield options.base_url, options.token


def run_batch(options: RunOptions, env: Env | None = None) -> RunReport:
    """Run one batch end to end and write its results; raises :class:`BatchAttendError` for
    problems found before sending (nothing is sent then)."""
    env = env or Env()
    started_at = time.perf_counter()
    output = options.output or default_output_for(options.input)
    table = read_table(
        options.input, sheet=options.sheet, encoding=options.encoding, delimiter=options.delimiter
    )
    check_output(output, options.input)
    columns = map_columns(
        table, options.phone_column, options.operators_column, options.department_column
    )
    if not (options.dry_run or options.sandbox):
        check_token(options.token)
        check_base_url(options.base_url)
    defaults = LeadDefaults(options.operators, options.department, options.country_code)
    validated = validate_table(table, columns, defaults)
    outcomes: list[Outcome | None] = [v if isinstance(v, Outcome) else None for v in validated]
    leads = [v for v in validated if isinstance(v, Lead)]
    if not options.allow_duplicates:
        duplicates = duplicate_of(leads)
        for lead in leads:
            if lead.index in duplicates:
                outcomes[lead.index] = Outcome(
                    RowStatus.SKIPPED,
                    phone=lead.phone,
                    operators=lead.operators,
                    error_code=ErrorCode.DUPLICATE_ROW,
                    error_message=f"same phone as row {duplicates[lead.index]}",
                )
        leads = [lead for lead in leads if lead.index not in duplicates]

    summary = RunSummary(output=output, dry_run=options.dry_run)
    if options.dry_run:
        for lead in leads:
            outcomes[lead.index] = Outcome(
                RowStatus.SKIPPED,
                phone=lead.phone,
                operators=lead.operators,
                error_code=ErrorCode.DRY_RUN,
                error_message="dry run: validated, not sent",
            )
    elif leads:
        summary.token_refused = _send(options, env, leads, outcomes)
        summary.sent_rows = sum(1 for o in outcomes if o is not None and o.attempts)
    for lead in leads:  # whatever was never sent: say so, never leave a row out
        if outcomes[lead.index] is None:
            outcomes[lead.index] = Outcome(
                RowStatus.SKIPPED,
                phone=lead.phone,
                operators=lead.operators,
                error_code=ErrorCode.UNAUTHORIZED,
                error_message="not sent: the API refused the token earlier in the run",
            )
    final: list[Outcome] = [o for o in outcomes if o is not None]
    for o in final:
        summary.add(o)
    summary.elapsed = time.perf_counter() - started_at
    write_results(
        output,
        table.columns,
        table.rows,
        table.row_numbers,
        final,
        stdout=env.stdout,
        summary=summary,
        bom=options.bom,
    )
    if not options.quiet:
        env.log(format_summary(summary))
    return RunReport(summary=summary, outcomes=final, output=output)


def _send(options: RunOptions, env: Env, leads: list[Lead], outcomes: list) -> bool:
    progress = Progress(len(leads), env, enabled=not options.quiet)

    def record(lead: Lead, outcome: Outcome) -> None:
        outcomes[lead.index] = outcome
        progress.advance()

    async def go(base_url: str, token: str) -> bool:
        async with PlugChatClient(
            base_url, token, timeout=options.timeout, concurrency=options.concurrency
        ) as client:
            return await send_leads(
                leads, client, concurrency=options.concurrency, on_outcome=record
            )

    try:
        with _api_target(options) as (base_url, token):
            return asyncio.run(go(base_url, token))
    finally:
        progress.close()
