"""``batch-attend undo``: finish once, as its first operator, each attendance the ledger shows
this tool started (never an ``already_in_service``), on the run's engine. A lead finished, or with
no attendance left, is ``undone`` in the rewritten results, and a later run starts it anew."""

from __future__ import annotations

import contextlib
import csv
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from batch_attend import i18n, results, sentences
from batch_attend.api import read_finish
from batch_attend.engine import HeldSignals, Starts
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _, ngettext
from batch_attend.journal import History, Journal, now
from batch_attend.leads import Lead
from batch_attend.outcomes import (
    RESULT_COLUMNS,
    ErrorCode,
    ExitStatus,
    RowStatus,
    RunSummary,
    Stop,
    exit_status_for,
)
from batch_attend.plan import journal_path
from batch_attend.reading.files import read_table
from batch_attend.reading.table import Table
from batch_attend.run import Watch, send
from batch_attend.session import open_session, run_async
from batch_attend.settings import RunOptions

#: Leads that could not be finished, listed after the summary line (they all stay started).
SHOWN = 20


class UndoError(BatchAttendError):
    """Nothing can be undone this way (no ledger, not a results file)."""


@dataclass(frozen=True)
class Narrowing:
    """Which started leads to finish (by default all the results show); ``rows``: ranges of
    ``row`` numbers; ``auto_transfer``: the chat goes to the general department once finished."""

    last_run: bool = False
    operators: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    rows: tuple[tuple[int, int], ...] | None = None
    auto_transfer: bool = True


class Finishes(Starts):
    """A finish per lead, as its first operator; ``decided``: each decided outcome, by phone."""

    desc = "Finishing attendances"
    read = staticmethod(read_finish)

    def __init__(self, journal: Journal, auto_transfer: bool) -> None:
        super().__init__(journal)
        self.auto_transfer = auto_transfer
        self.decided: dict = {}

    def history(self, lead):
        return History()

    async def record(self, lead):
        return await self.journal.finishing(lead, self.auto_transfer)

    def send(self, client, lead):
        return client.finish_attendance(lead, self.auto_transfer)

    def judge(self, lead, answer, outcome, history) -> None:
        outcome.operators = lead.operators
        if outcome.status is RowStatus.UNDONE and not outcome.error_code:
            said = sentences.FINISHED_MOVED if self.auto_transfer else sentences.FINISHED
            outcome.error_code = ErrorCode.FINISHED
            outcome.error_message = said.format(operator=lead.operators[0])

    def answered(self, request, lead, outcome, answer, final) -> None:
        self.journal.finished(request, lead, outcome, decides=final)
        if final:
            self.decided[lead.phone] = outcome


def chosen(journal: Journal, shown: pd.DataFrame, narrowing: Narrowing) -> list[Lead]:
    """The leads to finish, in the results' order: started as the ledger says, as narrowed."""
    started = {
        phone: (operators, department)
        for phone, (operators, department) in journal.started(narrowing.last_run).items()
        if operators
        and (not narrowing.operators or set(operators) & set(narrowing.operators))
        and (not narrowing.departments or department in narrowing.departments)
    }
    rows = pd.to_numeric(shown["row"], errors="coerce").fillna(0).astype(int).to_numpy()
    spans = narrowing.rows or [(0, 1 << 62)]
    leads = []
    for i, phone in enumerate(shown["phone"].str.strip()):
        if phone in started and any(a <= rows[i] <= b for a, b in spans):
            leads.append(Lead(i, int(rows[i]), phone, *started.pop(phone)))  # each lead once
    return leads


@dataclass
class UndoReport:
    """How an undo went; ``frame``: the results rewritten (None: nothing was written)."""

    exit_status: ExitStatus
    summary: RunSummary
    table: Table | None = None
    frame: pd.DataFrame | None = None


def undo_results(
    options: RunOptions,
    narrowing: Narrowing,
    env: Env | None = None,
    watch: Watch | None = None,
    confirm=lambda: True,
) -> UndoReport:
    """Finish what the ledger of the results ``options.input.path`` shows started, as narrowed,
    once ``confirm()`` agreed, then rewrite them (a dry run lists the rows)."""
    env, clock = env or Env(), time.perf_counter()
    path = Path(options.input.path)
    table = read_table(path)
    if table.results is None:
        raise UndoError(_("{path}: not a results file of batch-attend.").format(path=path))
    results.output_format(str(path))
    results.check_writable(path)
    ledger = journal_path(options, str(path))
    journal = Journal.open_readonly(ledger)
    if journal is None:
        said = _("{path}: no journal there, so nothing batch-attend started is known.")
        raise UndoError(said.format(path=ledger))
    with contextlib.closing(journal):
        leads = chosen(journal, table.results, narrowing)
    summary = RunSummary(output=str(path), started_at=now(), input=str(path))
    report = UndoReport(ExitStatus.SUCCESS, summary, table)
    if not leads:
        nothing = _(
            "nothing to undo: these results show no attendance batch-attend started (as narrowed)."
        )
        env.log("batch-attend: " + nothing)
        return report
    env.log("batch-attend: " + _ending(len(leads), narrowing.auto_transfer))
    if options.sending.dry_run:
        rows = [(lead.row, lead.phone, lead.operators[0], lead.department) for lead in leads]
        writer = csv.writer(env.stdout, lineterminator="\n")
        writer.writerows([("row", "phone", "operator", "department"), *rows])
        return report
    if not confirm():
        env.log("batch-attend: " + _("nothing was finished."))
        report.exit_status = ExitStatus.USAGE_OR_INPUT_ERROR
        return report
    held, journal = HeldSignals(), None
    try:
        with open_session(options, env) as session:
            journal = Journal.open(ledger, target=session.name, input=str(path), fresh=False)
            kind = Finishes(journal, narrowing.auto_transfer)
            try:
                if watch is not None:
                    watch.planned(len(leads), len(leads))
                held.hold()  # from here on, what is sent is written out whatever comes
                summary.stop = run_async(_send(options, env, session, leads, summary, watch, kind))
                undone = {r.phone: r for r in journal.records() if r.status == RowStatus.UNDONE}
            finally:  # the ledger stays locked until the results are out
                journal.close(summary.stop.key if summary.stop else None, unlock=False)
        try:
            report.frame = _rewrite(path, table, undone, options.output.results_lang, summary)
        except OSError as exc:
            said = _("{path}: the results could not be written ({reason})")
            summary.write_error = said.format(path=path, reason=exc.strerror or exc)
    finally:
        held.release()
        if journal is not None:
            journal.unlock()
    summary.stop = summary.stop or Stop.named(held.name)
    summary.elapsed = time.perf_counter() - clock
    for lead in leads:  # what the undo did, lead by lead: undone, failed, or not sent
        outcome = kind.decided.get(lead.phone)
        status = RowStatus.UNDONE if lead.phone in undone else outcome and outcome.status
        summary.counts[status or RowStatus.SKIPPED] += 1
    report.exit_status = exit_status_for(summary)
    if not options.display.quiet:
        env.log(results.format_summary(summary))
    failed = [lead for lead in leads if lead.phone in kind.decided and lead.phone not in undone]
    for lead in failed[:SHOWN]:
        error = kind.decided[lead.phone].error
        env.log("  " + _("row {row}: {error}").format(row=lead.row, error=error))
    if summary.write_error:
        env.log(f"batch-attend: {_('error')}: {summary.write_error}.")
    elif summary.stop:
        stopped = _(
            "undo stopped ({reason}); the rest stays started: run the same command again to finish it."
        )
        env.log("batch-attend: " + stopped.format(reason=summary.stop.key))
    return report


def _ending(count: int, auto_transfer: bool) -> str:
    said = ngettext(
        "{count} attendance batch-attend started will be finished in PlugChat.",
        "{count} attendances batch-attend started will be finished in PlugChat.",
        count,
    ).format(count=i18n.number(count))
    said += " " + _("Conversations operators have begun in them will be closed too.")
    return said + (" " + _("Their chats go to the general department.") if auto_transfer else "")


async def _send(options, env, session, leads, summary, watch, kind: Finishes):
    async with session.client(options) as client:
        return await send(
            options, env, client, leads, len(leads), kind.journal, summary, watch, kind=kind
        )


def _rewrite(path: Path, table: Table, undone: dict, lang: str | None, summary: RunSummary):
    """The results again (format, language), their started rows the ledger shows undone now
    ``undone``, saying when and why; returns what it wrote."""
    shown = table.results.copy()
    phones = shown["phone"].str.strip()
    rows = (shown["status"].str.strip() == RowStatus.STARTED) & phones.isin(undone.keys())
    kept = [undone[phone] for phone in phones[rows]]
    shown.loc[rows, "status"] = str(RowStatus.UNDONE)
    shown.loc[rows, "done_at"] = [r.done_at for r in kept]
    shown.loc[rows, "http_status"] = [str(r.http_status or "") for r in kept]
    shown.loc[rows, "error"] = [f"{r.error_code}: {r.error_message}" for r in kept]
    for name in ("row", "http_status", "attempts"):  # numbers as a run writes them
        with contextlib.suppress(ValueError, TypeError):
            shown[name] = pd.to_numeric(shown[name].where(shown[name] != "")).astype("Int64")
    frame = pd.concat([table.frame, shown[list(RESULT_COLUMNS)]], axis=1, ignore_index=True)
    lang = "pt_BR" if shown.attrs.get("portuguese") else lang or "en"
    summary = results.summary_of(summary, shown)
    delimiter = table.delimiter or ","
    results.write_results(
        str(path), table.columns, frame, summary=summary, delimiter=delimiter, lang=lang
    )
    return frame
