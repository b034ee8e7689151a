"""What the page shows before a run starts: the plan ``batch-attend check`` makes of the file
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
from batch_attend.outcomes import ErrorCode, RowStatus
from batch_attend.plan import check_plan
from batch_attend.reading.files import read_table, sheet_names
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
    view: dict = {"error": None, "sheets": [], "columns": [], "taken": {}, "owners": []}
    try:
        with contextlib.suppress(OSError):  # a file gone or unreadable: the check says so
            view["sheets"] = sheet_names(run.input)
        plan = check_plan(options, env)
    except BatchAttendError as exc:
        view["error"] = run.shown(str(exc))
        view["owners"] = list(getattr(exc, "owners", ()))
        view["columns"] = _columns_anyway(run, options.input.sheet)
        return view
    table, columns, account = plan.table, plan.columns, plan.account
    problems = plan.problems()
    view.update(
        sheet=table.sheet,
        header_row=table.header_row,
        columns=table.columns,
        taken={
            role: table.columns[j] for role in ROLES if (j := getattr(columns, role)) is not None
        },
        why=dict(columns.why),
        check=[run.shown(line) for line in [*plan.lines(), *account.lines()]],
        rows=len(table),
        ready=plan.ready,
        invalid=plan.count(RowStatus.INVALID),
        duplicates=plan.count(RowStatus.SKIPPED, ErrorCode.DUPLICATE_ROW),
        done=int(plan.frame["carried"].sum()),
        problems=problems[:MAX_PROBLEMS_SHOWN],
        more_problems=max(0, len(problems) - MAX_PROBLEMS_SHOWN),
        token=account.token,
    )
    # The account's lists as the plan fetched them (operators only with a ticket).
    directory = account.directory
    view["operators"] = [o for o in directory.operators or () if o.active]
    view["departments"] = [d for d in directory.departments or () if d.active]
    view["lists_available"] = {
        "operators": directory.operators is not None,
        "departments": directory.departments is not None,
    }
    view["notes"] = [run.shown(str(e)) for k, e in account.errors.items() if k == "operators"]
    leads = itertools.islice(plan.leads(), REQUESTS_SHOWN)
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
