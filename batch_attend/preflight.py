"""``batch-attend check``, ``operators`` and ``departments``: look before sending anything.

A check reads and validates the input exactly as a run would, asks the API whether the token is
accepted (by listing the departments) and whether the operator list is reachable (with the
ticket), resolves names, and counts the rows that would be sent. No start request is made.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batch_attend import sentences
from batch_attend.directory import (
    Department,
    Directory,
    DirectoryError,
    OnlineState,
    Operator,
    TokenRefusedError,
    fetch_directory,
    fetch_online,
)
from batch_attend.env import Env
from batch_attend.i18n import _, ngettext
from batch_attend.journal import Journal
from batch_attend.leads import pending
from batch_attend.outcomes import DONE_STATUSES, ErrorCode, ExitStatus, RowStatus
from batch_attend.reading import describe_columns
from batch_attend.runner import (
    RunOptions,
    Target,
    api_target,
    carried_over,
    journal_path,
    plan_requests,
    pool_members,
    prepare,
    run_async,
    verify_apart,
)
from batch_attend.whatsapp import WhatsAppUnknown, whatsapp_status

if TYPE_CHECKING:
    import pandas as pd

    from batch_attend.runner import Prepared

MAX_PROBLEMS_SHOWN = 20


@dataclass
class CheckReport:
    source: str
    rows: int = 0
    ready: int = 0
    done: int = 0
    duplicates: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    invalid: int = 0
    token: str = "missing"  # accepted / refused / missing / unreachable
    token_note: str = ""
    departments: list[Department] | None = None
    operators: list[Operator] | None = None
    operators_note: str = ""
    operators_failed: bool = False
    whatsapp: str = ""  # what the WhatsApp status said, in words ("" when not asked)
    whatsapp_down: bool = False
    online: list[OnlineState] | None = None  # who is online now (with an account ID)
    online_note: str = ""
    no_whatsapp: int = 0  # invalid rows PlugChat said have no WhatsApp (--verify-whatsapp)
    columns: list[str] = field(default_factory=list)  # header row and columns taken, and why
    # The batch as read and the plan as a run would send it (for the web page's preview).
    batch: Prepared | None = field(default=None, repr=False, compare=False)
    plan: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def all_ready(self) -> bool:
        return (
            self.token == "accepted"
            and self.invalid == 0
            and not self.operators_failed
            and not self.whatsapp_down
        )

    @property
    def exit_status(self) -> ExitStatus:
        if self.token == "refused":
            return ExitStatus.TOKEN_REFUSED
        if self.whatsapp_down:
            return ExitStatus.WHATSAPP_DISCONNECTED
        if self.all_ready:
            return ExitStatus.SUCCESS
        if self.token in ("missing", "unknown"):
            return ExitStatus.USAGE_OR_INPUT_ERROR
        return ExitStatus.ROWS_NOT_DONE

    def lines(self) -> list[str]:
        token = {
            "accepted": _("accepted"),
            "refused": _("refused by the API (HTTP 401)"),
            "missing": _("not given (set PLUGCHAT_TOKEN or --token)"),
        }.get(self.token, self.token)
        out = [
            _("Input: {source}").format(source=self.source),
            *self.columns,
            _("Token: {token}").format(token=token) + self.token_note,
        ]
        if self.whatsapp:
            out.append(_("WhatsApp: {status}").format(status=self.whatsapp))
        if self.departments is not None:
            active = sum(d.active for d in self.departments)
            out.append(
                _("Departments: {count} ({active} active)").format(
                    count=len(self.departments), active=active
                )
            )
        if self.operators is not None:
            active = sum(o.active for o in self.operators)
            out.append(
                _("Operators: {count} ({active} active)").format(
                    count=len(self.operators), active=active
                )
            )
        elif self.operators_note:
            out.append(_("Operators: {note}").format(note=self.operators_note))
        if self.online is not None:
            on = [o.label for o in self.online if o.online] or [_("none")]
            off = [o.label for o in self.online if not o.online] or [_("none")]
            out.append(
                _("Operators online now: {online}; offline: {offline}").format(
                    online=", ".join(on), offline=", ".join(off)
                )
            )
        elif self.online_note:
            out.append(_("Operators online now: {note}").format(note=self.online_note))
        out.append(
            _("Rows: {rows}: {ready}, {invalid}{without}, {duplicates}").format(
                rows=f"{self.rows:,}",
                ready=ngettext("{count} ready to send", "{count} ready to send", self.ready).format(
                    count=f"{self.ready:,}"
                ),
                invalid=ngettext("{count} invalid", "{count} invalid", self.invalid).format(
                    count=f"{self.invalid:,}"
                ),
                without=_(" ({count} without WhatsApp)").format(count=f"{self.no_whatsapp:,}")
                if self.no_whatsapp
                else "",
                duplicates=ngettext(
                    "{count} duplicate (skipped)", "{count} duplicates (skipped)", self.duplicates
                ).format(count=f"{self.duplicates:,}"),
            )
            + (
                _("; {done} done by an earlier run").format(done=f"{self.done:,}")
                if self.done
                else ""
            )
        )
        for row, error in self.problems[:MAX_PROBLEMS_SHOWN]:
            out.append("  " + _("row {row}: {error}").format(row=row, error=error))
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            more = len(self.problems) - MAX_PROBLEMS_SHOWN
            out.append("  " + _("... and {count} more").format(count=f"{more:,}"))
        out.append(_("Ready: yes") if self.all_ready else _("Ready: no"))
        return out


async def _lookups(options: RunOptions, target: Target, report: CheckReport) -> Directory:
    from batch_attend.api import PlugChatClient

    directory = Directory()
    async with PlugChatClient(
        target.base_url, target.token, timeout=options.sending.timeout, concurrency=2
    ) as client:
        try:
            found = await fetch_directory(
                client, target.base_url, ticket=None, operators=False, departments=True
            )
            directory.departments = found.departments
            report.departments = found.departments
            report.token = "accepted"
        except TokenRefusedError:
            report.token = "refused"
            return directory
        except DirectoryError as exc:
            report.token = "unknown"
            report.token_note = " " + _("(could not ask: {reason})").format(reason=exc)
            return directory
        if options.requests.status_check:
            await _whatsapp(client, target, report)
        if target.account_id:
            try:
                report.online = await fetch_online(client, target.base_url, target.account_id)
            except DirectoryError as exc:
                report.online_note = _("could not ask ({reason})").format(reason=exc)
        if not target.ticket:
            report.operators_note = _(
                "not checked: no ticket (--ticket or PLUGCHAT_TICKET); names cannot be resolved"
            )
            return directory
        try:
            found = await fetch_directory(
                client, target.base_url, ticket=target.ticket, operators=True, departments=False
            )
            directory.operators = found.operators
            report.operators = found.operators
        except DirectoryError as exc:
            report.operators_note = _("error: {reason}").format(reason=exc)
            report.operators_failed = True
    return directory


async def _whatsapp(client, target: Target, report: CheckReport) -> None:
    try:
        status = await whatsapp_status(client, target.base_url)
    except (WhatsAppUnknown, TokenRefusedError) as exc:
        report.whatsapp = _("could not ask ({reason})").format(reason=exc)
        return
    report.whatsapp = _("connected") if status.ok else status.problem()
    report.whatsapp_down = not status.ok


def check_batch(options: RunOptions, env: Env | None = None) -> CheckReport:
    """Everything a run would check before its first start request, and nothing more: the
    ledger is read, not written."""
    env = env or Env()
    batch = prepare(options, env, sending=False)
    path = journal_path(options, batch.output)  # None: standard input, no -o or --journal
    journal = Journal.open_readonly(path) if path is not None else None
    plan = carried_over(batch.plan, batch.table, journal)
    report = CheckReport(
        source=batch.table.where,
        rows=len(batch.table),
        columns=describe_columns(batch.table, batch.columns),
    )
    with api_target(options, env) as target:
        directory = Directory()
        if target.token:
            directory = run_async(_lookups(options, target, report))
            if options.requests.verify_whatsapp and report.token == "accepted":
                verified = run_async(verify_apart(options, env, target, batch, journal))
                plan = carried_over(verified, batch.table, journal)
        online = report.online if options.requests.online_only else None
        members = pool_members(options, batch.pool, directory)
        plan = plan_requests(options, plan, directory, members, online)
    report.batch, report.plan = batch, plan
    live = pending(plan)
    report.ready = int(live.sum()) if report.token != "refused" else 0
    report.done = int(plan["status"].isin(DONE_STATUSES).sum())
    decided = plan[~live]
    for number, status, code, message in decided[
        ["row", "status", "error_code", "error_message"]
    ].itertuples(index=False, name=None):
        if status == RowStatus.INVALID:
            report.invalid += 1
            report.no_whatsapp += code == ErrorCode.NO_WHATSAPP
            report.problems.append((number, f"{code}: {sentences.say(message)}"))
        elif code == ErrorCode.DUPLICATE_ROW:
            report.duplicates += 1
    return report


def list_directory(
    options: RunOptions, kind: str, env: Env | None = None
) -> list[Operator] | list[Department]:
    """What the account has: ``kind`` is ``operators``, ``departments`` or ``online`` (who is
    online now)."""
    from batch_attend.api import PlugChatClient, check_token

    async def fetch(target: Target):
        async with PlugChatClient(
            target.base_url, target.token, timeout=options.sending.timeout
        ) as c:
            if kind == "online":
                return await fetch_online(c, target.base_url, target.account_id)
            found = await fetch_directory(
                c,
                target.base_url,
                ticket=target.ticket,
                operators=kind == "operators",
                departments=kind == "departments",
            )
        return found.operators if kind == "operators" else found.departments

    with api_target(options, env or Env()) as target:
        check_token(target.token)
        if kind == "operators" and not target.ticket:
            raise DirectoryError(
                _("listing operators needs the Ticket header: set PLUGCHAT_TICKET or --ticket")
            )
        return run_async(fetch(target))


def _field(item, name: str):
    if name == "departments":
        return ";".join(item.departments)
    if name == "since":  # when the state last changed, as the journal shows moments
        if item.last_changed is None:
            return ""
        moment = dt.datetime.fromtimestamp(item.last_changed / 1000).astimezone()
        return moment.isoformat(timespec="seconds")
    return getattr(item, name)


def format_directory(items: list, kind: str, fmt: str) -> str:
    """``table`` for people, ``csv`` and ``json`` for scripts."""
    fields = {
        "operators": ["id", "name", "login", "email", "active", "departments"],
        "online": ["id", "name", "online", "since"],
    }.get(kind, ["id", "name", "active"])
    records = [{f: _field(i, f) for f in fields} for i in items]
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    rows = [[str(r[f]) for f in fields] for r in records]
    widths = [max([len(f), *(len(row[j]) for row in rows)]) for j, f in enumerate(fields)]
    lines = ["  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines) + "\n"
