"""What the page shows before a run starts, and what a person fixes there: the plan
``batch-attend check`` makes of the upload with the run's own options (its edits and mappings
among them), so the preview and the run cannot disagree; and the rows with problems."""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import json
from pathlib import Path

import pandas as pd

from batch_attend import i18n, sentences
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.outcomes import ErrorCode, RowStatus
from batch_attend.plan import Plan, check_plan
from batch_attend.reading.files import read_table, sheet_names
from batch_attend.reading.table import Table
from batch_attend.results import contract_frame, outcome_frame, write_results
from batch_attend.web.runs import Run

ROWS_SHOWN = 50
REQUESTS_SHOWN = 3
ROLES = ("phone", "ddd", "operators", "department")
#: The problems whose value a person maps once to one of the account's.
MAPPED = (ErrorCode.UNKNOWN_OPERATOR, ErrorCode.AMBIGUOUS_OPERATOR, ErrorCode.UNKNOWN_DEPARTMENT)


@functools.lru_cache(maxsize=4)
def _kept(path: Path, stamp: int, **how) -> Table:
    """The last few ways of reading an upload: a big workbook takes seconds, a plan much less."""
    return read_table(path, **how)


def role_of(code: str) -> str:
    """The role of the column a problem lies in (its cell is what a person edits)."""
    return "department" if "department" in code else "operators" if "operator" in code else "phone"


def plan_of(run: Run, settings: dict, environ) -> Plan:
    """The run's plan; what stops one is raised with the table read (its columns, to choose)."""
    options = run.options(settings)
    given = options.input
    how = dict(sheet=given.sheet, header_row=given.header_row, phone_column=given.phone_column)
    try:
        table = _kept(run.input, run.input.stat().st_mtime_ns, **how)
    except OSError:  # the upload gone: read_table says so
        table = read_table(run.input, **how)
    env = Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)
    try:
        return check_plan(options, env, source=(table, str(run.results("xlsx"))))
    except BatchAttendError as exc:
        exc.table = table
        raise


def preview(run: Run, settings: dict, environ, problem: str = "") -> dict:
    """What the preview shows; ``problem``: the code of the problems whose rows are listed."""
    view: dict = {"error": None, "sheets": [], "columns": [], "taken": {}, "owners": []}
    with contextlib.suppress(BatchAttendError, OSError):  # a file gone: the plan says so
        view["sheets"] = sheet_names(run.input)
    try:
        plan = plan_of(run, settings, environ)
    except BatchAttendError as exc:
        view["error"] = run.shown(exc.page or str(exc))
        view["owners"] = list(getattr(exc, "owners", ()))
        view["columns"] = getattr(getattr(exc, "table", None), "columns", [])
        if not view["columns"]:
            with contextlib.suppress(BatchAttendError):
                view["columns"] = read_table(run.input, sheet=run.choices.get("sheet")).columns
        return view
    table, columns, account, frame = plan.table, plan.columns, plan.account, plan.frame
    taken = {role: j for role in ROLES if (j := getattr(columns, role)) is not None}
    chosen = _("chosen here")
    view.update(
        sheet=table.sheet,
        header_row=table.header_row,
        columns=table.columns,
        taken={role: table.columns[j] for role, j in taken.items()},
        why={r: chosen if run.choices.get(f"{r}_column") else w for r, w in columns.why.items()},
        rows=len(table),
        ready=plan.ready,
        invalid=plan.count(RowStatus.INVALID),
        duplicates=plan.count(RowStatus.SKIPPED, ErrorCode.DUPLICATE_ROW),
        done=int(frame["carried"].sum()),
        landlines=plan.landlines(),
        refused=account.token == "refused",
        blocking=[run.shown(e.page or str(e)) for e in plan.blocking()],
        operators=[o for o in account.directory.operators or () if o.active],
        departments=[d for d in account.directory.departments or () if d.active],
    )
    invalid = frame[frame["status"] == RowStatus.INVALID]
    counts = invalid["error_code"].value_counts()
    view["groups"] = [(code, sentences.label(code), int(n)) for code, n in counts.items()]
    view["problem"] = problem if problem in counts else ""
    shown = invalid[invalid["error_code"] == problem] if view["problem"] else invalid
    view["problems"] = _rows(shown.head(ROWS_SHOWN), table, taken)
    view["more_problems"] = max(0, len(shown) - ROWS_SHOWN)
    view["mappings"] = _mappings(invalid, run.choices.get("value_map", {}))
    view["edits"] = sum(map(len, run.choices.get("cell_edits", {}).values()))
    view["requests"] = list(itertools.islice(plan.leads(), REQUESTS_SHOWN))
    return view


def _rows(rows: pd.DataFrame, table: Table, taken: dict[str, int]) -> list[dict]:
    """The problem rows shown, with the cell each lies in, which a person may edit."""
    shown = []
    for index, row, code, message in rows[["row", "error_code", "error_message"]].itertuples():
        j = taken.get(role_of(code))
        cell = None if j is None else table.frame.at[index, j]
        column = None if j is None else table.columns[j]
        reason = sentences.render(message, page=True)
        shown.append({"row": int(row), "reason": reason, "column": column, "cell": cell})
    return shown


def _mappings(invalid: pd.DataFrame, value_map: dict) -> list[dict]:
    """Each value the account does not know (an operator, a department) once, most rows first."""
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    mapped = invalid[invalid["error_code"].isin(list(MAPPED))]
    for (code, message), n in mapped.value_counts(["error_code", "error_message"]).items():
        value = json.loads(message.partition(" ")[2] or "{}").get("value")
        if value is not None:
            found[role_of(code), value] += int(n)
    return [
        {"role": role, "value": value, "rows": n, "to": value_map.get(role, {}).get(value, "")}
        for (role, value), n in found.most_common()
    ]


def write_problems(run: Run, settings: dict, environ) -> str:
    """The invalid rows with their reasons, as results in the page's language, to fix and upload."""
    plan = plan_of(run, settings, environ)
    invalid = (plan.frame["status"] == RowStatus.INVALID).to_numpy()
    outcomes = outcome_frame(plan.frame, [], (ErrorCode.INTERRUPTED, ""))
    frame = contract_frame(plan.table.frame[invalid], outcomes[invalid])
    path = run.folder / "problems.xlsx"
    write_results(str(path), plan.table.columns, frame, lang=i18n.language())
    return str(path)
