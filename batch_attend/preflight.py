"""``batch-attend check``, ``operators`` and ``departments``: look before sending anything.

A check reads and validates the input exactly as a run would, asks the API whether the token is
accepted (by listing the departments) and whether the operator list is reachable (with the
ticket), resolves names, and counts the rows that would be sent. No start request is made.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from batch_attend.directory import (
    Department,
    Directory,
    DirectoryError,
    Operator,
    TokenRefusedError,
    fetch_directory,
)
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.runner import (
    RunOptions,
    Target,
    api_target,
    collector_paused,
    plan_requests,
    prepare,
    run_async,
)

MAX_PROBLEMS_SHOWN = 20


@dataclass
class CheckReport:
    source: str
    rows: int = 0
    ready: int = 0
    duplicates: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)
    invalid: int = 0
    token: str = "missing"  # accepted / refused / missing / unreachable
    token_note: str = ""
    departments: list[Department] | None = None
    operators: list[Operator] | None = None
    operators_note: str = ""

    @property
    def all_ready(self) -> bool:
        operators_ok = self.operators is not None or not self.operators_note.startswith("error")
        return self.token == "accepted" and self.invalid == 0 and operators_ok

    def lines(self) -> list[str]:
        token = {
            "accepted": "accepted",
            "refused": "refused by the API (HTTP 401)",
            "missing": "not given (set PLUGCHAT_TOKEN or --token)",
        }.get(self.token, self.token)
        out = [f"Input: {self.source}", f"Token: {token}{self.token_note}"]
        if self.departments is not None:
            active = sum(d.active for d in self.departments)
            out.append(f"Departments: {len(self.departments)} ({active} active)")
        if self.operators is not None:
            active = sum(o.active for o in self.operators)
            out.append(f"Operators: {len(self.operators)} ({active} active)")
        elif self.operators_note:
            out.append(f"Operators: {self.operators_note}")
        out.append(
            f"Rows: {self.rows:,}: {self.ready:,} ready to send, {self.invalid:,} invalid, "
            f"{self.duplicates:,} duplicates (skipped)"
        )
        for row, error in self.problems[:MAX_PROBLEMS_SHOWN]:
            out.append(f"  row {row}: {error}")
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            out.append(f"  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN:,} more")
        out.append("Ready: yes" if self.all_ready else "Ready: no")
        return out


async def _lookups(options: RunOptions, target: Target, report: CheckReport) -> Directory:
    from batch_attend.api import PlugChatClient

    directory = Directory()
    async with PlugChatClient(
        target.base_url, target.token, timeout=options.timeout, concurrency=2
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
            report.token_note = f" (could not ask: {exc})"
            return directory
        if not target.ticket:
            report.operators_note = (
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
            report.operators_note = f"error: {exc}"
    return directory


def check_batch(options: RunOptions) -> CheckReport:
    """Everything a run would check before its first start request, and nothing more."""
    with collector_paused():
        table, outcomes, leads = prepare(options, None)
    report = CheckReport(source=table.where, rows=len(table))
    with api_target(options) as target:
        directory = Directory()
        if target.token:
            directory = run_async(_lookups(options, target, report))
        planned = plan_requests(options, leads, outcomes, directory)
    report.ready = len(planned) if report.token != "refused" else 0
    for number, outcome in zip(table.row_numbers, outcomes, strict=True):
        if not isinstance(outcome, Outcome):
            continue
        if outcome.status is RowStatus.INVALID:
            report.invalid += 1
            report.problems.append((number, outcome.error))
        elif outcome.error_code == ErrorCode.DUPLICATE_ROW:
            report.duplicates += 1
    return report


def list_directory(options: RunOptions, kind: str) -> list[Operator] | list[Department]:
    """What the account has: ``kind`` is ``operators`` or ``departments``."""
    from batch_attend.api import PlugChatClient, check_token

    async def fetch(target: Target):
        async with PlugChatClient(target.base_url, target.token, timeout=options.timeout) as c:
            found = await fetch_directory(
                c,
                target.base_url,
                ticket=target.ticket,
                operators=kind == "operators",
                departments=kind == "departments",
            )
        return found.operators if kind == "operators" else found.departments

    with api_target(options) as target:
        check_token(target.token)
        if kind == "operators" and not target.ticket:
            raise DirectoryError(
                "listing operators needs the Ticket header: set PLUGCHAT_TICKET or --ticket"
            )
        return run_async(fetch(target))


def format_directory(items: list, kind: str, fmt: str) -> str:
    """``table`` for people, ``csv`` and ``json`` for scripts."""
    if kind == "operators":
        fields = ["id", "name", "login", "email", "active", "departments"]
    else:
        fields = ["id", "name", "active"]
    records = [
        {f: (";".join(getattr(i, f)) if f == "departments" else getattr(i, f)) for f in fields}
        for i in items
    ]
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
