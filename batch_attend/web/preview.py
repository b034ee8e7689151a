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

from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.leads import leads_to_send
from batch_attend.preflight import check_batch
from batch_attend.reading import read_table, sheet_names
from batch_attend.web.runs import Run

MAX_PROBLEMS_SHOWN = 50
REQUESTS_SHOWN = 3
ROLES = ("phone", "ddd", "operators", "department")


def quiet_env(environ) -> Env:
    return Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)


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
    except BatchAttendError as exc:
        view["error"] = run.shown(str(exc))
        view["columns"] = _columns_anyway(run, options.input.sheet)
        return view
    table, columns = report.batch.table, report.batch.columns
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
    # The account's lists as check fetched them (operators only with a ticket).
    view["operators"] = [o for o in report.operators or () if o.active]
    view["departments"] = [d for d in report.departments or () if d.active]
    view["lists_available"] = {
        "operators": report.operators is not None,
        "departments": report.departments is not None,
    }
    view["notes"] = [run.shown(n) for n in (report.operators_note,) if n]
    leads = itertools.islice(leads_to_send(report.plan), REQUESTS_SHOWN)
    view["requests"] = [json.dumps(lead.body(), ensure_ascii=False) for lead in leads]
    return view


def role_names() -> dict[str, str]:
    """The roles a column plays, in the page's language."""
    return {
        "phone": _("Phone"),
        "ddd": _("Area code (DDD)"),
        "operators": _("Operators"),
        "department": _("Department"),
    }
