"""``batch-attend undo``: take back what a run started, each attendance finished once.

The ledger knows which attendances this tool started (``started``, ``confirmed_on_retry``
included) and which were someone else's (``already_in_service``: never touched). Undo ends the
first through PlugChat's ``finish-attendance``, as the first operator each was sent to, on the
run's engine (the same gate, retries, Ctrl-C and SIGTERM): the :class:`Finishes` kind of
request, each finish recorded in the ledger before it goes out. A finished lead is ``undone``,
and so is one PlugChat had no attendance left for (``chatFounded: false``); the results file
is rewritten with those rows ``undone``, and a later run writing it starts them anew.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from batch_attend import i18n, sentences
from batch_attend.api import Answer, PlugChatClient, read_finish
from batch_attend.engine import HeldSignals, Starts
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import N_, _, ngettext
from batch_attend.journal import History, Journal, now
from batch_attend.leads import Lead
from batch_attend.outcomes import RESULT_COLUMNS, ErrorCode, ExitStatus, RowStatus, RunSummary, Stop
from batch_attend.plan import journal_path
from batch_attend.reading.files import read_table
from batch_attend.reading.table import Table
from batch_attend.results import check_writable, format_summary, output_format, write_results
from batch_attend.run import Watch, send
from batch_attend.session import open_session, run_async
from batch_attend.settings import TOKEN_ENV, RunOptions

#: Rows that could not be finished, listed after the summary line (all of them stay started).
FAILURES_SHOWN = 20


class UndoError(BatchAttendError):
    """Nothing can be undone this way (no ledger, not a results file, no terminal to ask on)."""


@dataclass(frozen=True)
class Narrowing:
    """Which started leads to finish (every one the results show, by default): those of the
    newest run that started any, sent to one of ``operators`` or to one of ``departments``,
    on ``rows`` (ranges of the results' ``row`` numbers); ``auto_transfer``: the chat goes to
    the general department once finished (PlugChat's ``autoTransfer``) rather than nowhere."""

    last_run: bool = False
    operators: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    rows: tuple[tuple[int, int], ...] = ()
    auto_transfer: bool = True


class Finishes(Starts):
    """The request of ``batch-attend undo``: a finish per lead, as its first operator."""

    desc = "Finishing attendances"
    read = staticmethod(read_finish)

    def __init__(self, journal: Journal, auto_transfer: bool) -> None:
        super().__init__(journal)
        self.auto_transfer = auto_transfer

    def history(self, lead: Lead) -> History:
        return History()

    async def record(self, lead: Lead) -> int:
        return await self.journal.finishing(lead, self.auto_transfer)

    def send(self, client: PlugChatClient, lead: Lead):
        return client.finish_attendance(lead, self.auto_transfer)

    def judge(self, lead: Lead, answer: Answer, outcome, history: History) -> None:
        outcome.operators = lead.operators
        if outcome.status is RowStatus.UNDONE and not outcome.error_code:
            said = sentences.FINISHED_MOVED if self.auto_transfer else sentences.FINISHED
            outcome.error_code = ErrorCode.FINISHED
            outcome.error_message = said.format(operator=lead.operators[0])

    def answered(self, request: int, lead: Lead, outcome, answer: Answer, final: bool) -> None:
        self.journal.finished(request, lead, outcome, decides=final)


def chosen(journal: Journal, results: pd.DataFrame, narrowing: Narrowing) -> list[Lead]:
    """The leads to finish, in the results' order: started by this tool as the ledger says,
    shown in the results, as narrowed."""
    started = {phone: rest for phone, *rest in journal.started(narrowing.last_run)}
    rows = pd.to_numeric(results["row"], errors="coerce").fillna(0).astype(int).to_numpy()
    wanted = np.ones(len(rows), dtype=bool)
    if narrowing.rows:
        wanted = np.any([(rows >= a) & (rows <= b) for a, b in narrowing.rows], axis=0)
    leads, seen = [], set()
    for i, (row, phone) in enumerate(zip(rows, results["phone"].str.strip(), strict=True)):
        operators, department = started.get(phone, ((), ""))
        if not operators or phone in seen or not wanted[i]:
            continue
        if narrowing.operators and not set(operators) & set(narrowing.operators):
            continue
        if narrowing.departments and department not in narrowing.departments:
            continue
        seen.add(phone)
        leads.append(Lead(i, int(row), phone, operators, department))
    return leads


@dataclass
class UndoReport:
    """How an undo went: ``summary`` counts the rows of the results as rewritten (``frame``,
    with ``table``'s own columns: None when nothing was written)."""

    exit_status: ExitStatus
    summary: RunSummary
    table: Table | None = None
    frame: pd.DataFrame | None = None
    failed: list[tuple[int, str]] = field(default_factory=list)  # row, error: not finished


def undo_results(
    options: RunOptions,
    narrowing: Narrowing,
    env: Env | None = None,
    watch: Watch | None = None,
    confirm=lambda: True,
) -> UndoReport:
    """Finish what the ledger of the results ``options.input.path`` shows this tool started,
    as narrowed, once it said how many and ``confirm()`` agreed; then rewrite the results. A
    dry run lists the rows on stdout instead."""
    env, clock = env or Env(), time.perf_counter()
    path = Path(options.input.path)
    table = read_table(path)
    if table.results is None:
        raise UndoError(_("{path}: not a results file of batch-attend.").format(path=path))
    output_format(str(path))
    check_writable(path)
    ledger = journal_path(options, str(path))
    journal = Journal.open_readonly(ledger)
    if journal is None:
        raise UndoError(
            _("{path}: no journal there, so nothing batch-attend started is known.").format(
                path=ledger
            )
        )
    try:
        leads = chosen(journal, table.results, narrowing)
    finally:
        journal.close()
    report = UndoReport(ExitStatus.SUCCESS, RunSummary(output=str(path), started_at=now()))
    if not leads:
        env.log("batch-attend: " + _("nothing to undo: these results show no attendance batch-attend started (as narrowed)."))  # fmt: skip
        return report
    env.log("batch-attend: " + _ending(len(leads), narrowing.auto_transfer))
    if options.sending.dry_run:
        listing = [(lead.row, lead.phone, lead.operators[0], lead.department) for lead in leads]
        header = ("row", "phone", "operator", "department")
        csv.writer(env.stdout, lineterminator="\n").writerows([header, *listing])
        return report
    if not confirm():
        env.log("batch-attend: " + _("nothing was finished."))
        report.exit_status = ExitStatus.USAGE_OR_INPUT_ERROR
        return report
    summary, held = report.summary, HeldSignals()
    summary.input = str(path)
    try:
        with open_session(options, env) as session:
            undone, journal = run_async(_finish(options, env, session, ledger, leads, narrowing, report, held, watch))  # fmt: skip
        try:
            report.table = table
            report.frame = _rewrite(path, table, undone, options.output.results_lang, summary)
        except OSError as exc:
            summary.write_error = _("{path}: the results could not be written ({reason})").format(
                path=path, reason=exc.strerror or exc
            )
        finally:
            journal.unlock()
    finally:
        held.release()
    summary.stop = summary.stop or Stop.named(held.name)
    summary.elapsed = time.perf_counter() - clock
    report.exit_status = _exit_status(summary, report.failed)
    done = [lead for lead in leads if lead.phone in undone]
    _say_how_it_ended(report, len(leads), done, undone, env, options.display.quiet)
    return report


async def _finish(options, env, session, path, leads, narrowing, report, held, watch):
    """The finishes sent with the ledger open; returns the leads it shows undone, and the
    ledger, closed but still locked until the results are written."""
    summary = report.summary
    async with session.client(options) as client:
        journal = Journal.open(path, target=session.name, input=str(options.input.path), fresh=False)  # fmt: skip
        try:
            if watch is not None:
                watch.planned(len(leads), len(leads))
            held.hold()  # from here on, what is sent is written out whatever comes

            def decided(lead: Lead, outcome) -> None:
                if outcome.status is RowStatus.FAILED:
                    report.failed.append((lead.row, outcome.error))

            kind = Finishes(journal, narrowing.auto_transfer)
            try:
                summary.stop = await send(options, env, client, leads, len(leads), journal, summary,
                                          watch, kind=kind, on_outcome=decided)  # fmt: skip
            except Exception as exc:
                if journal.failure is None:
                    raise
                summary.stop = Stop.WRITE_FAILED
                summary.write_error = _("{path}: the journal could not be written ({reason})").format(path=path, reason=exc)  # fmt: skip
            undone = {r.phone: r for r in journal.records() if r.status == RowStatus.UNDONE}
        except BaseException:
            journal.close(summary.stop.key if summary.stop else None)
            raise
        journal.close(summary.stop.key if summary.stop else None, unlock=False)
    return undone, journal


def _rewrite(path: Path, table: Table, undone: dict, lang: str | None, summary: RunSummary):
    """The results file again, in its format and language, atomically: its rows started whose
    lead the ledger shows undone now ``undone``, saying when and why. Returns what it wrote."""
    results = table.results.copy()
    phones = results["phone"].str.strip()
    rows = (results["status"].str.strip() == RowStatus.STARTED) & phones.isin(undone.keys())
    kept = [undone[phone] for phone in phones[rows]]
    results.loc[rows, "status"] = str(RowStatus.UNDONE)
    results.loc[rows, "done_at"] = [r.done_at for r in kept]
    results.loc[rows, "http_status"] = [str(r.http_status or "") for r in kept]
    results.loc[rows, "error"] = [f"{r.error_code}: {r.error_message}" for r in kept]
    for name in ("row", "http_status", "attempts"):  # numbers as a run writes them
        given = results[name].str.strip() != ""
        numbers = pd.to_numeric(results[name].where(given), errors="coerce")
        if numbers.notna().sum() == given.sum() and (numbers.dropna() % 1 == 0).all():
            results[name] = numbers.astype("Int64")
    summary.counts = Counter(status for status in results["status"].str.strip() if status)
    summary.error_counts = Counter(c for c in results["error"].str.partition(": ")[0] if c)
    inputs, contract = table.frame.reset_index(drop=True), results.reset_index(drop=True)
    frame = pd.concat([inputs, contract[list(RESULT_COLUMNS)]], axis=1)
    frame = frame.set_axis(range(frame.shape[1]), axis=1)
    portuguese = results.attrs.get("portuguese")
    write_results(str(path), table.columns, frame, summary=summary, delimiter=table.delimiter or ",",
                  lang="pt_BR" if portuguese else lang or "en")  # fmt: skip
    return frame


def _exit_status(summary: RunSummary, failed: list) -> ExitStatus:
    if summary.write_error:
        return ExitStatus.WRITE_FAILED
    stop = summary.stop
    if stop is not None and stop.exit_status not in (ExitStatus.SUCCESS, ExitStatus.ROWS_NOT_DONE):
        return stop.exit_status
    return ExitStatus.ROWS_NOT_DONE if failed or stop else ExitStatus.SUCCESS


def _ending(count: int, auto_transfer: bool) -> str:
    """What is said before anything is sent."""
    said = ngettext(
        "{count} attendance batch-attend started will be finished in PlugChat.",
        "{count} attendances batch-attend started will be finished in PlugChat.",
        count,
    ).format(count=i18n.number(count))
    said += " " + _("Conversations operators have begun in them will be closed too.")
    if auto_transfer:
        said += " " + _("Their chats go to the general department.")
    return said


#: What a person is told when undo stopped early, by why.
_CLOSING = {
    Stop.UNAUTHORIZED: N_("the API refused the token (HTTP 401); the rest stays started. Check {env} (or --token) and run the same command again."),
    Stop.RATE_LIMITED: N_("the API asked to be called again at {when}, later than batch-attend waits; the rest stays started: run the same command again after that time."),
    Stop.SIGINT: N_("interrupted ({signal}); the rest stays started: run the same command again to finish it."),
    Stop.SIGTERM: N_("interrupted ({signal}); the rest stays started: run the same command again to finish it."),
}  # fmt: skip


def _say_how_it_ended(report, total, done, undone, env, quiet) -> None:
    summary = report.summary
    if not quiet and report.frame is not None:
        env.log(format_summary(summary))
    nothing = sum(undone[lead.phone].error_code == ErrorCode.NOTHING_TO_FINISH for lead in done)
    line = ngettext(
        "{done} of {count} attendance finished", "{done} of {count} attendances finished", total
    ).format(done=i18n.number(len(done)), count=i18n.number(total))
    if nothing:
        line += _(" ({nothing} of them had nothing left to finish)").format(
            nothing=i18n.number(nothing)
        )
    env.log(f"batch-attend: {line}.")
    for row, error in report.failed[:FAILURES_SHOWN]:
        env.log("  " + _("row {row}: {error}").format(row=row, error=error))
    if summary.write_error:
        env.log(f"batch-attend: {_('error')}: {summary.write_error}.")
    elif summary.stop in _CLOSING:
        said = _(_CLOSING[summary.stop]).format(
            env=TOKEN_ENV, when=summary.retry_at, signal=summary.stop.key
        )
        env.log(f"batch-attend: {said}")
