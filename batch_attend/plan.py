"""One pipeline from a spreadsheet to its requests: ``check``, ``--dry-run``, the page's preview and
the run all call :func:`build_plan`, so they agree on every row and the run sends just the plan."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from batch_attend import i18n, leads, planning, results, sentences, session
from batch_attend.api import check_base_url, check_token
from batch_attend.directory import Directory, fetch_directory
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.journal import Journal
from batch_attend.outcomes import ErrorCode, ExitStatus, RowStatus, Stop
from batch_attend.reading.files import STDIN, STDIN_NAME, read_stdin_table, read_table
from batch_attend.reading.headers import ColumnMap, fold, map_columns
from batch_attend.reading.table import Table
from batch_attend.settings import RunOptions, resolve_token
from batch_attend.whatsapp import WhatsAppDisconnected, verify_phones

#: A column is the operators' by content when this share of its first cells are the account's.
OWNER_SHARE, OWNER_SAMPLE = 0.5, 2000
PROBLEMS_SHOWN = 20
ROLES = ("phone", "operators", "department", "ddd")


@dataclass
class Plan:
    """What a run sends, and why; ``stop``: why sending cannot begin."""

    options: RunOptions
    table: Table
    columns: ColumnMap
    frame: pd.DataFrame
    account: session.Account
    pool: tuple[str, ...] = ()
    stop: Stop | None = None
    unchecked: list[str] = field(default_factory=list)  # what needed the account, not asked

    def leads(self):
        """The requests to send, in input order."""
        return leads.leads_to_send(self.frame, self.table.frame)

    @property
    def ready(self) -> int:
        return 0 if self.stop else int(leads.pending(self.frame).sum())

    def count(self, status: str, code: str | None = None) -> int:
        match = self.frame["status"] == status
        if code is not None:
            match &= self.frame["error_code"] == code
        return int(match.sum())

    def landlines(self) -> int:
        """The phones to send that are Brazilian landlines, which have no WhatsApp."""
        phones = self.frame.loc[leads.pending(self.frame), "phone"]
        return int(phones.str.fullmatch(r"55[0-9]{2}[2-5][0-9]{7}").sum())

    def blocking(self) -> list[BatchAttendError]:
        """What stops the run before sending: a list or WhatsApp status unread, the number down."""
        if not self.ready:
            return []
        requests = self.options.requests
        needed = {"operators", "whatsapp"}
        if requests.online_only:
            needed.add("online")
        if (self.frame["department"][leads.pending(self.frame)] != "").any():
            needed.add("departments")
        found = [error for what, error in self.account.errors.items() if what in needed]
        whatsapp = self.account.whatsapp
        if whatsapp is not None and not whatsapp.ok:
            said = _("; nothing was sent. Reconnect it in PlugChat and run again.")
            found.append(WhatsAppDisconnected(whatsapp.problem() + said))
        return found

    def exit_status(self) -> ExitStatus:
        """``check``'s exit code: what the run would end with if every request succeeded."""
        if self.stop is not None:
            return self.stop.exit_status
        blocking = self.blocking()
        if any(isinstance(error, WhatsAppDisconnected) for error in blocking):
            return ExitStatus.WHATSAPP_DISCONNECTED
        if self.account.token in ("missing", "unknown"):
            return ExitStatus.USAGE_OR_INPUT_ERROR
        if blocking or self.count(RowStatus.INVALID):
            return ExitStatus.ROWS_NOT_DONE
        return ExitStatus.SUCCESS

    def lines(self) -> list[str]:
        """The plan shown before sending."""
        table, columns, requests = self.table, self.columns, self.options.requests
        parts = []
        labels = (_("phone"), _("operators"), _("department"), _("DDD"))
        for role, label in zip(ROLES, labels, strict=True):
            j = getattr(columns, role)
            taken = f"{label} '{table.columns[j]}' ({columns.why[role]})" if j is not None else ""
            parts.append(taken or _("{role}: none").format(role=label))
        if self.pool:
            way = _("balanced") if requests.distribute == "balanced" else _("in turn")
            fill = _("the pool {members} ({way})").format(members=", ".join(self.pool), way=way)
        else:
            fill = ", ".join(requests.operators) or _("nothing (such rows are invalid)")
        invalid = results.counted(RowStatus.INVALID, self.count(RowStatus.INVALID))
        if without := self.count(RowStatus.INVALID, ErrorCode.NO_WHATSAPP):
            invalid += _(" ({count} without WhatsApp)").format(count=i18n.number(without))
        ready = results.counted("ready", self.ready)
        duplicates = self.count(RowStatus.SKIPPED, ErrorCode.DUPLICATE_ROW)
        rows = f"{results.counted('rows', len(table))}: {ready}, {invalid}, {results.counted('duplicates', duplicates)}"
        if done := int(self.frame["carried"].sum()):
            rows += _("; {done} done by an earlier run").format(done=i18n.number(done))
        header = _("header row {row}").format(row=table.header_row)
        said = _("Plan: {where}, {header}: {columns}.")
        out = [said.format(where=table.where, header=header, columns=", ".join(parts))]
        said = _("Empty operators cells: {fill}; empty department cells: {department}. {rows}.")
        department = requests.department or _("none")
        out.append(said.format(fill=fill, department=department, rows=rows))
        if (landlines := self.landlines()) * 2 > self.ready:
            said = _(
                "{count} of the {ready} phones to send are landlines, which have no WhatsApp: is '{column}' the phone column?"
            )
            count, ready = i18n.number(landlines), i18n.number(self.ready)
            out.append(said.format(count=count, ready=ready, column=table.columns[columns.phone]))
        if self.unchecked:
            what = ", ".join(self.unchecked)
            out.append(_("Not checked without asking the account: {what}.").format(what=what))
        return out

    def facts(self) -> dict:
        """The plan for ``--summary-json`` and the ledger."""
        columns = {
            role: {"name": self.table.columns[j], "why": self.columns.why[role]}
            for role in ROLES
            if (j := getattr(self.columns, role)) is not None
        }
        requests = self.options.requests
        return {
            "input": self.table.where,
            "header_row": self.table.header_row,
            "columns": columns,
            "empty_operators": list(self.pool or requests.operators),
            "distribute": requests.distribute if self.pool else None,
            "empty_department": requests.department or None,
            "rows": len(self.table),
            "ready": self.ready,
            "not_checked": self.unchecked,
        }


def read_source(options: RunOptions, env: Env, *, sending: bool) -> tuple[Table, str]:
    """The table and where its results go, with every check that needs no request (of the
    output, base URL and token when ``sending``). INPUT ``-`` is ``env.stdin``."""
    source, out, requests = options.input, options.output, options.requests
    stdin = source.path == STDIN
    if stdin and sending and out.path is None:  # no name to put the results, or a ledger, beside
        said = _(
            "{path}: the input has no name to put the results beside; give -o PATH (or -o - for stdout)."
        )
        raise results.OutputError(said.format(path=STDIN_NAME))
    if stdin and sending and out.path == results.STDOUT and out.journal is None:
        said = _(
            "{path}: with the results on stdout too, the journal has no file to sit beside; give --journal PATH."
        )
        raise results.OutputError(said.format(path=STDIN_NAME))
    how = dict(sheet=source.sheet, encoding=source.encoding, delimiter=source.delimiter)
    how.update(phone_column=source.phone_column, header_row=source.header_row)
    if stdin:
        table = read_stdin_table(getattr(env.stdin, "buffer", env.stdin), **how)
    else:
        table = read_table(source.path, **how)
    beside = Path(source.path)
    if requests.sandbox:  # a rehearsal's results apart, never in the live run's way
        beside = beside.with_name(f"{beside.stem}.sandbox{beside.suffix}")
    output = out.path or (results.STDOUT if stdin else results.default_output_for(beside))
    if sending:
        results.check_output(output, source.path, input_is_results=table.results is not None)
        results.check_fits(output, table)
    if sending and not requests.sandbox:
        check_base_url(requests.base_url)
        if not options.sending.dry_run:
            check_token(resolve_token(requests, env.environ))
    return table, output


def journal_path(options: RunOptions, output: str) -> Path | None:
    """The ledger: ``--journal``, else beside the results' real file (the input's for stdout),
    so every way of naming the results finds it; None with nowhere to keep one."""
    if options.output.journal is not None:
        path = Path(options.output.journal)
    elif output == results.STDOUT and options.input.path == STDIN:
        return None
    else:
        beside = os.path.realpath(options.input.path if output == results.STDOUT else output)
        if options.requests.sandbox and ".sandbox." not in Path(beside).name:
            beside += ".sandbox"
        path = Path(beside + ".journal")
    for other in (str(options.input.path), output):
        if other != results.STDOUT and os.path.realpath(path) == os.path.realpath(other):
            said = _("{path}: the journal would overwrite {other}; choose another --journal.")
            raise results.OutputError(said.format(path=path, other=other))
    return path


def owners_by_content(table: Table, directory: Directory) -> dict[int, float]:
    """The columns whose cells are mostly the account's operators, with that share."""
    if not directory.operators:
        return {}
    known = {fold(v) for op in directory.operators for v in (op.id, op.login, op.name, op.email)}
    known.discard("")
    found = {}
    for j in range(len(table.columns)):
        cells = table.frame[j].head(OWNER_SAMPLE).str.strip()
        counts = cells[cells != ""].value_counts()
        if counts.empty:
            continue
        ours = sum(
            n
            for cell, n in counts.items()
            if (names := leads.split_operators(cell)) and all(fold(name) in known for name in names)
        )
        if (share := ours / counts.sum()) >= OWNER_SHARE:
            found[j] = share
    return found


async def build_plan(
    options: RunOptions,
    env: Env,
    access: session.Access | None,
    journal: Journal | None,
    table: Table,
    *,
    strict: bool = False,
) -> Plan:
    """The plan, asking the account through ``access`` (None: nothing), carrying over the
    ``journal``'s done leads; ``strict`` (a run) raises what stops sending before phones are asked."""
    given = options.input
    table = table.edited(given.cell_edits)
    requests = options.requests
    asking = access is not None and access.lists
    if asking:
        account = await session.ask_account(options, access)
    else:
        has_token = access or requests.sandbox or resolve_token(requests, env.environ)
        ticket = bool(access.session.ticket if access else requests.ticket or requests.sandbox)
        account = session.Account(token="not asked" if has_token else "missing", ticket=ticket)
    # Without the account's operator list, a name is refused only if no ticket could fetch it.
    directory = account.directory
    directory.unchecked = account.ticket and directory.operators is None
    lookup = directory if requests.lookup else None
    columns = map_columns(
        table,
        given.phone_column,
        given.operators_column,
        given.department_column,
        given.ddd_column,
        given.ignore_columns,
        owners_by_content(table, directory),
    )
    table = leads.map_values(table, columns, given.value_map)
    pool = planning.read_pool(requests, lookup)
    defaults = leads.LeadDefaults(
        requests.operators, requests.department, requests.country_code, pool=bool(pool)
    )
    frame = leads.validate(table, columns, defaults)
    done = dict(journal.done()) if journal is not None else {}
    done.update({r.phone: (r.status, None) for r in results.records_in_results(table.results)})
    frame = planning.carry_over(frame, done, lambda index: leads.row_keys(table.frame.loc[index]))
    named = (frame["department"] != "") & (leads.pending(frame) | frame["carried"])
    if asking and (access.check or (requests.lookup and named.any())):
        lists = fetch_directory(access.client, ticket=None, operators=False, departments=True)
        await account.ask("departments", lists)
    stop = Stop.UNAUTHORIZED if account.token == "refused" else None
    plan = Plan(options, table, columns, frame, account, pool, stop)
    if strict and plan.blocking():
        raise plan.blocking()[0]
    if lookup is not None:
        frame = planning.resolve_names(frame, lookup)
    if requests.verify_whatsapp and access is not None and not plan.stop:
        known = journal.whatsapp_answers() if journal is not None else {}
        frame, asked = await verify_phones(access.client, frame, set(done), known)
        if journal is not None and journal.run is not None:
            journal.note_whatsapp(asked)
        if not options.display.quiet:
            said = _(
                "asked PlugChat whether {count} phones have WhatsApp ({known} known from an earlier run)."
            )
            count, known = i18n.number(len(asked)), i18n.number(len(known))
            env.log("batch-attend: " + said.format(count=count, known=known))
    frame = planning.skip_duplicates(frame)
    if requests.online_only and account.online is not None:
        frame, pool = planning.keep_online(frame, pool, account.online)
    plan.frame, plan.pool = planning.assign_pool(frame, pool, requests.distribute), pool
    if not asking:
        what = [_("the token")]
        if requests.lookup:
            what.append(_("names against the account's lists, the operators column by content"))
        if requests.status_check:
            what.append(_("the WhatsApp number"))
        if requests.online_only:
            what.append(_("who is online"))
        plan.unchecked = what
    return plan


def check_plan(
    options: RunOptions,
    env: Env | None = None,
    source: tuple[Table, str] | None = None,
    journal: Journal | None = None,
) -> Plan:
    """The plan as a run would make it, starting nothing and only reading the ledger. A dry run
    asks the account nothing (but the phones, with ``--verify-whatsapp``)."""
    env = env or Env()
    source = source or read_source(options, env, sending=False)
    path = journal_path(options, source[1]) if journal is None else None
    own = Journal.open_readonly(path) if path is not None else None
    dry = options.sending.dry_run

    async def plan(opened: session.Session | None) -> Plan:
        if opened is None or not opened.token:
            return await build_plan(options, env, None, journal or own, source[0])
        async with opened.client(options) as client:
            access = session.Access(opened, client, lists=not dry, check=not dry)
            return await build_plan(options, env, access, journal or own, source[0])

    asks = not dry or options.requests.verify_whatsapp
    try:
        with session.open_session(options, env) if asks else contextlib.nullcontext() as opened:
            return session.run_async(plan(opened))
    finally:
        if own is not None:
            own.close()


def check_lines(plan: Plan) -> list[str]:
    """Everything ``check`` prints: the plan, the account, the rows that would not be sent."""
    out = [*plan.lines(), *plan.account.lines()]
    invalid = plan.frame["status"] == RowStatus.INVALID
    problems = plan.frame.loc[invalid, ["row", "error_code", "error_message"]]
    for row, code, message in problems.head(PROBLEMS_SHOWN).itertuples(index=False):
        error = f"{code}: {sentences.render(message)}"  # only those shown are said
        out.append("  " + _("row {row}: {error}").format(row=row, error=error))
    if len(problems) > PROBLEMS_SHOWN:
        more = len(problems) - PROBLEMS_SHOWN
        out.append("  " + _("... and {count} more").format(count=i18n.number(more)))
    ready = plan.exit_status() is ExitStatus.SUCCESS
    out.append(_("Ready: yes") if ready else _("Ready: no"))
    return out
