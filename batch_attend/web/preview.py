"""What the page shows before a run starts: exactly what ``batch-attend check`` says of the file
(header, columns taken and why, rows ready / invalid / duplicates, the reasons), the sheets and
columns a person may choose instead, the account's operators and departments to choose defaults
from, and the first requests as they will be sent.

Everything here is computed by the library with the run's own options, so the preview and the
run cannot disagree; the server's paths in its messages are replaced by the file's name.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json

from batch_attend.directory import Directory, DirectoryError
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.journal import Journal
from batch_attend.leads import leads_to_send
from batch_attend.preflight import check_batch, list_directory
from batch_attend.reading import read_table, sheet_names
from batch_attend.runner import carried_over, journal_path, plan_requests, pool_members, prepare
from batch_attend.web.runs import Run

MAX_PROBLEMS_SHOWN = 50
REQUESTS_SHOWN = 3
ROLES = ("phone", "ddd", "operators", "department")


def quiet_env(environ) -> Env:
    return Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)


def account_lists(options, env: Env) -> dict:
    """The account's active operators and departments (None: not available, with a note)."""
    found: dict = {"operators": None, "departments": None, "notes": []}
    for kind in ("operators", "departments"):
        try:
            found[kind] = list_directory(options, kind, env)
        except BatchAttendError as exc:  # no ticket, a refused token, an unreachable API
            found["notes"].append(str(exc))
    return found


def _columns_anyway(run: Run, sheet: str | None) -> list[str]:
    """The columns of the sheet as read without a phone column, so that one can be chosen."""
    try:
        return read_table(run.input, sheet=sheet).columns
    except BatchAttendError:
        return []


def preview(run: Run, settings: dict, environ) -> dict:
    """Everything the preview page shows; ``error`` says why the file cannot be sent as chosen."""
    options = run.options(settings)
    env = quiet_env(environ)
    view: dict = {"error": None, "sheets": [], "columns": [], "taken": {}}
    try:
        with contextlib.suppress(OSError):  # a file gone or unreadable: the check says so
            view["sheets"] = sheet_names(run.input)
        report = check_batch(options, env)
        batch = prepare(options, env, sending=False)
    except BatchAttendError as exc:
        view["error"] = run.shown(str(exc))
        view["columns"] = _columns_anyway(run, options.input.sheet)
        return view
    table, columns = batch.table, batch.columns
    view.update(
        sheet=table.sheet,
        header_row=table.header_row,
        columns=table.columns,
        taken={
            role: table.columns[j] for role in ROLES if (j := getattr(columns, role)) is not None
        },
        why=dict(columns.why),
        check=[run.shown(line) for line in report.lines()],
        rows=report.rows,
        ready=report.ready,
        invalid=report.invalid,
        duplicates=report.duplicates,
        done=report.done,
        problems=report.problems[:MAX_PROBLEMS_SHOWN],
        more_problems=max(0, len(report.problems) - MAX_PROBLEMS_SHOWN),
        token=report.token,
    )
    lists = account_lists(options, env)
    view["operators"] = [o for o in lists["operators"] or () if o.active]
    view["departments"] = [d for d in lists["departments"] or () if d.active]
    view["lists_available"] = {k: lists[k] is not None for k in ("operators", "departments")}
    view["notes"] = [run.shown(n) for n in lists["notes"]]
    try:
        view["requests"] = first_requests(options, batch, lists)
    except (BatchAttendError, DirectoryError) as exc:
        view["requests"] = []
        view["notes"].append(run.shown(str(exc)))
    return view


def first_requests(options, batch, lists: dict) -> list[str]:
    """The JSON bodies of the first starts, names resolved and the pool given out as the run
    does (the phone checks of --verify-whatsapp, made only by the run, may still change one)."""
    directory = Directory(lists["operators"], lists["departments"])
    journal = Journal.open_readonly(journal_path(options, batch.output))
    try:
        plan = carried_over(batch.plan, batch.table, journal)
    finally:
        if journal is not None:
            journal.close()
    plan = plan_requests(options, plan, directory, pool_members(options, batch.pool, directory))
    leads = itertools.islice(leads_to_send(plan), REQUESTS_SHOWN)
    return [json.dumps(lead.body(), ensure_ascii=False) for lead in leads]


def role_names() -> dict[str, str]:
    """The roles a column plays, in the page's language."""
    return {
        "phone": _("Phone"),
        "ddd": _("Area code (DDD)"),
        "operators": _("Operators"),
        "department": _("Department"),
    }
