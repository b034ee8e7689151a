"""The page's runs: a folder each (the upload under a name the server makes, the choices, never a
credential, the last status, the results); preview and run both use the run's own options."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import functools
import io
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path

from batch_attend import i18n, results, sentences
from batch_attend.atomic import write_text
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.journal import now
from batch_attend.outcomes import DONE_STATUSES, RESULT_COLUMNS, ErrorCode, RowStatus
from batch_attend.plan import Plan, check_plan
from batch_attend.planning import DISTRIBUTIONS
from batch_attend.reading.files import read_table, sheet_names
from batch_attend.reading.table import CONTROL_CHARACTERS, Table
from batch_attend.run import Watch, run_batch
from batch_attend.settings import RunOptions
from batch_attend.undo import Narrowing, undo_results

log = logging.getLogger(__name__)

EXTENSIONS = (".csv", ".xlsx", ".xls", ".ods")
#: Rows listed on the page, with problems before a run or not done after it (all are in a file).
ROWS_SHOWN = 50
REQUESTS_SHOWN = 3
ROLES = ("phone", "ddd", "operators", "department")
#: The problems whose value a person maps once to one of the account's.
MAPPED = (ErrorCode.UNKNOWN_OPERATOR, ErrorCode.AMBIGUOUS_OPERATOR, ErrorCode.UNKNOWN_DEPARTMENT)
MAX_UPLOAD = 50 * 1024 * 1024
CONTROL = re.compile(CONTROL_CHARACTERS)
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
STATES = ("new", "running", "finished", "interrupted", "error")
#: What the page may choose, and the type each takes (see settings.InputOptions/RequestOptions):
#: header_row may be None (found as the CLI finds it), ignore_columns are owners' columns set
#: aside on purpose, cell_edits are {row: {column: text}}, value_map {"operators" or
#: "department": {value: the account's ID}}.
CHOICES = {
    **dict.fromkeys(("sheet", "phone_column", "operators_column", "department_column"), str),
    **dict.fromkeys(("ddd_column", "department", "distribute"), str),
    **dict.fromkeys(("ignore_columns", "pool"), list),
    **dict.fromkeys(("verify_whatsapp", "online_only"), bool),
    **dict.fromkeys(("cell_edits", "value_map"), dict),
    "header_row": int,
}


def _text(value: object) -> bool:
    """Text a person may type into a cell: no control character but tab and line ends."""
    return isinstance(value, str) and len(value) <= 32767 and not CONTROL.search(value)


def clean_choices(given: object) -> dict:
    """Only the known choices, each of its type; anything else is refused (ValueError)."""
    if not isinstance(given, dict):
        raise ValueError("expected an object")
    for name, value in given.items():
        kind = CHOICES.get(name)
        if kind is None:
            raise ValueError(f"unknown choice {name!r}")
        if kind is list:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif kind is dict:
            keys = str.isdigit if name == "cell_edits" else ("operators", "department").__contains__
            ok = isinstance(value, dict) and all(
                keys(k)
                and isinstance(pairs, dict)
                and all(_text(t) for t in (*pairs, *pairs.values()))
                for k, pairs in value.items()
            )
        elif kind is int:
            ok = value is None or (type(value) is int and 1 <= value <= 1_048_576)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ValueError(f"{name}: wrong type")
    if given.get("distribute", DISTRIBUTIONS[0]) not in DISTRIBUTIONS:
        raise ValueError("distribute: unknown")
    return given


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _status(data: dict) -> dict:
    """A ``status.json`` as written here; any other is a run stopped in error, which can resume."""
    if not data:
        return {"state": "new"}
    not_done = data.get("not_done") or {"rows": [], "more": 0}
    with contextlib.suppress(AttributeError, KeyError, TypeError):
        if (
            data.get("state", "new") in STATES
            and all(isinstance(n, int) for n in data.get("counts", {}).values())
            and all(isinstance(data.get(k, ""), str) for k in ("summary", "message"))
            and isinstance(not_done["more"], int)
            and all([type(v) for v in row] == [int, str, str] for row in not_done["rows"])
        ):
            return data
    return {"state": "error", "exit_code": 1}


@dataclass
class Run:
    id: str
    folder: Path
    name: str  # the browser's file name: for display only, never a path
    ext: str
    created: str
    choices: dict = field(default_factory=dict)
    status: dict = field(default_factory=lambda: {"state": "new"})  # see STATES

    @property
    def input(self) -> Path:
        return self.folder / f"input{self.ext}"

    def results(self, fmt: str) -> Path:
        return self.folder / f"results.{fmt}"

    def options(self, settings: dict) -> RunOptions:
        """As the CLI builds them, with the ledger every run shares: no lead is sent twice."""
        own = self.folder / "results.xlsx.journal"  # a run made before it was shared keeps its own
        ledger = "ledger.sandbox.journal" if settings.get("sandbox") else "ledger.journal"
        chosen = {name: value or None for name, value in self.choices.items()}  # None: default
        chosen["ignore_columns"] = tuple(self.choices.get("ignore_columns") or ())
        chosen["pool"] = ",".join(self.choices.get("pool") or ()) or None
        return RunOptions.build(
            input=self.input,
            output=str(self.results("csv")),  # then the workbook (see execute)
            journal=own if own.exists() else self.folder.parent.parent / ledger,
            quiet=True,
            label=self.name,
            results_lang=i18n.language(),  # the page's: who reads the results
            **chosen,
            **settings,
        )

    def shown(self, message: str) -> str:
        """A library message with the server's paths replaced by what the person knows."""
        return message.replace(str(self.input), self.name).replace(str(self.folder) + os.sep, "")


class RunStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "runs"
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def new(self, name: str, ext: str) -> Run:
        created = now()
        run_id = f"{dt.datetime.fromisoformat(created):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        run = Run(run_id, self.root / run_id, name, ext, created)
        run.folder.mkdir(mode=0o700)
        self.save(run)
        return run

    def get(self, run_id: str) -> Run | None:
        folder = self.root / run_id
        meta = _read_json(folder / "options.json") if RUN_ID.fullmatch(run_id) else {}
        if meta.get("ext") not in EXTENSIONS:  # not a folder this server made
            return None
        try:
            choices = clean_choices(meta.get("choices", {}))
        except ValueError:
            choices = {}
        name, created = str(meta.get("name", "")), str(meta.get("created", ""))
        status = _status(_read_json(folder / "status.json"))
        return Run(run_id, folder, name, meta["ext"], created, choices, status)

    def ids(self) -> list[str]:
        """Every run's ID, newest first, from the folders' names alone: no file read."""
        with os.scandir(self.root) as entries:
            return sorted((e.name for e in entries if RUN_ID.fullmatch(e.name)), reverse=True)

    def page(self, number: int, size: int) -> tuple[list[Run], int, int]:
        """The runs on page ``number`` (or the nearest), its number, and the number of pages."""
        ids = self.ids()
        pages = max(1, -(-len(ids) // size))
        number = min(max(1, number), pages)
        chosen = ids[(number - 1) * size : number * size]
        return [run for run in map(self.get, chosen) if run is not None], number, pages

    def forget(self, days: float, going: Container[str]) -> None:
        """Runs made more than ``days`` ago deleted (IDs begin with the moment), but those going."""
        limit = f"{dt.datetime.now() - dt.timedelta(days=days):%Y%m%d-%H%M%S}"
        for run in map(self.get, [i for i in self.ids() if i < limit and i not in going]):
            if run is not None:
                self.discard(run)

    def save(self, run: Run) -> None:
        meta = {"name": run.name, "ext": run.ext, "created": run.created, "choices": run.choices}
        for name, data in (("options.json", meta), ("status.json", run.status)):
            write_text(run.folder / name, json.dumps(data, ensure_ascii=False, indent=1))

    def template(self, settings: dict, environ) -> bytes:
        """``batch-attend template``, written under the data directory, read back and removed."""
        from batch_attend.template import write_template

        folder = self.root.parent / "templates"
        folder.mkdir(mode=0o700, exist_ok=True)
        env = Env(stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)
        with tempfile.TemporaryDirectory(dir=folder) as made:
            path = Path(made) / "leads.xlsx"
            write_template(path, RunOptions.build(**settings), env, on_page=True)
            return path.read_bytes()

    def discard(self, run: Run) -> None:
        """The run's folder and its upload in memory gone; the shared ledger keeps its leads."""
        _kept.cache_clear()
        shutil.rmtree(run.folder)


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
        stamp = run.input.stat().st_mtime_ns
    except OSError:
        stamp = 0  # gone: read_table says so
    table = _kept(run.input, stamp, **how)
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
    view["problems"] = []  # with the cell each lies in, which a person may edit
    listed = shown[["row", "error_code", "error_message"]].head(ROWS_SHOWN)
    for index, row, code, message in listed.itertuples():
        j = taken.get(role_of(code))
        cell = None if j is None else table.frame.at[index, j]
        column = None if j is None else table.columns[j]
        reason = sentences.render(message, page=True)
        view["problems"].append({"row": int(row), "reason": reason, "column": column, "cell": cell})
    view["more_problems"] = max(0, len(shown) - ROWS_SHOWN)
    # Each value the account does not know (an operator, a department) once, most rows first.
    found: collections.Counter[tuple[str, str]] = collections.Counter()
    mapped = invalid[invalid["error_code"].isin(list(MAPPED))]
    for (code, message), n in mapped.value_counts(["error_code", "error_message"]).items():
        value = json.loads(message.partition(" ")[2] or "{}").get("value")
        if value is not None:
            found[role_of(code), value] += int(n)
    value_map = run.choices.get("value_map", {})
    view["mappings"] = [
        {"role": role, "value": value, "rows": n, "to": value_map.get(role, {}).get(value, "")}
        for (role, value), n in found.most_common()
    ]
    view["edits"] = sum(map(len, run.choices.get("cell_edits", {}).values()))
    view["requests"] = list(itertools.islice(plan.leads(), REQUESTS_SHOWN))
    return view


def write_problems(run: Run, settings: dict, environ) -> str:
    """The invalid rows with their reasons, as results in the page's language, to fix and upload."""
    plan = plan_of(run, settings, environ)
    invalid = (plan.frame["status"] == RowStatus.INVALID).to_numpy()
    outcomes = results.outcome_frame(plan.frame, [], (ErrorCode.INTERRUPTED, ""))
    frame = results.contract_frame(plan.table.frame[invalid], outcomes[invalid])
    path = run.folder / "problems.xlsx"
    results.write_results(str(path), plan.table.columns, frame, lang=i18n.language())
    return str(path)


def execute(
    run: Run, settings: dict, environ, watch: Watch, undoing: bool = False
) -> tuple[dict, Callable | None]:
    """The batch run as the CLI runs it, results as CSV; ``undoing``: as ``batch-attend undo
    results.csv --yes``, the run keeping its state and exit code (Resume sends the rows not done,
    the undone ones among them). Returns the status to keep, and what writes the workbook."""
    options = run.options(settings)
    env = Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)
    kept = run.status if undoing else {"state": "error", "exit_code": 1}
    try:
        if undoing:
            options.input.path = run.results("csv")
            report = undo_results(options, Narrowing(), env, watch=watch)
        else:
            report = run_batch(options, env, watch=watch)
    except BatchAttendError as exc:
        code = {} if undoing else {"exit_code": int(exc.exit_status)}
        return {**kept, **code, "message": run.shown(str(exc))}, None
    except Exception as exc:
        log.exception("%s %s failed", "undo of run" if undoing else "run", run.id)
        return {**kept, "message": type(exc).__name__}, None
    if not undoing:
        stop = report.summary.stop
        state = "interrupted" if stop and stop.interrupted else "finished"
        frame = results.contract_frame(report.plan.table.frame, report.frame)
        status = {"state": state, "exit_code": int(report.exit_status)}
        return _ended(run, status, report.summary, report.plan.table, frame)
    if report.frame is None:  # nothing to undo, or the results could not be written
        return {**kept, "message": run.shown(report.summary.write_error or "")}, None
    left = _("Some attendances could not be finished and stay started: Undo tries them again.")
    status = {**kept, "message": left if report.exit_status else ""}
    return _ended(run, status, report.summary, report.table, report.frame)


def _ended(run: Run, status: dict, summary, table, frame) -> tuple[dict, Callable]:
    """The status of a run (or an undo) that wrote ``frame``, and what writes its workbook."""
    lang = i18n.language()
    summary.output = "results.xlsx"  # the person's name for it, not the server's path
    contract = frame.iloc[:, -len(RESULT_COLUMNS) :].set_axis(list(RESULT_COLUMNS), axis=1)
    counted = results.summary_of(summary, contract)  # every row's (an undo's summary: its own)
    # The first rows not done (duplicates and undone rows aside), in the results' English: the
    # page words them in its reader's language.
    shown = ~contract["status"].isin([*DONE_STATUSES, RowStatus.UNDONE])
    rows = contract[shown & ~contract["error"].str.startswith("duplicate_row")]
    first = rows[["row", "status", "error"]].head(ROWS_SHOWN).itertuples(index=False)

    def workbook() -> None:
        path = str(run.results("xlsx"))
        try:
            results.check_fits(path, table)
            results.write_results(path, table.columns, frame, summary=counted, lang=lang)
        except (BatchAttendError, OSError) as exc:  # the CSV holds them all the same
            log.warning("run %s: the XLSX results could not be written (%s)", run.id, exc)

    return {
        **status,
        "counts": {str(k): int(v) for k, v in counted.counts.items()},
        "summary": results.format_summary(summary),
        "not_done": {
            "rows": [[int(row), str(state), error] for row, state, error in first],
            "more": max(0, len(rows) - ROWS_SHOWN),
        },
    }, workbook
