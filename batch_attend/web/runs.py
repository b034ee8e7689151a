"""The runs of the web page, kept under the data directory: one folder per upload.

``runs/<id>/`` holds ``input.<ext>`` (a name the server makes; the browser's file name is kept
only as text to show), ``options.json`` (what the person chose on the page: never a credential),
``status.json`` (how the last run ended), the results and their ledger. A run started again uses
the same folder, so it resumes from its ledger as a CLI run writing the same results does. The
history is the list of those folders.

Results: the run writes ``results.csv`` itself, as ``-o results.csv`` would; ``results.xlsx``
(with its Summary sheet) is then written by :func:`batch_attend.results.write_results` from
the same outcome frame and the same table, so both downloads say the same thing.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from batch_attend import i18n
from batch_attend.atomic import write_text
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.journal import now
from batch_attend.outcomes import DONE_STATUSES, RESULT_COLUMNS, RowStatus
from batch_attend.planning import DISTRIBUTIONS
from batch_attend.reading.table import CONTROL_CHARACTERS
from batch_attend.results import (
    check_capacity,
    check_cell_lengths,
    contract_frame,
    format_summary,
    summary_of,
    write_results,
)
from batch_attend.run import Watch, run_batch
from batch_attend.settings import RunOptions
from batch_attend.undo import Narrowing, undo_results

log = logging.getLogger(__name__)

EXTENSIONS = (".csv", ".xlsx", ".xls", ".ods")
#: Rows not done listed on the page at the end (all of them are in the results).
PROBLEMS_SHOWN = 50
MAX_UPLOAD = 50 * 1024 * 1024
CONTROL = re.compile(CONTROL_CHARACTERS)
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")
STATES = ("new", "running", "finished", "interrupted", "error")
#: What the page may choose, and the type each takes (see settings.InputOptions/RequestOptions).
CHOICES = {
    "sheet": str,
    "phone_column": str,
    "operators_column": str,
    "department_column": str,
    "ddd_column": str,
    "header_row": int,  # or None: found as the CLI finds it
    "ignore_columns": list,  # owners' columns set aside on purpose
    "pool": list,
    "department": str,
    "distribute": str,
    "verify_whatsapp": bool,
    "online_only": bool,
    "cell_edits": dict,  # {row: {column: text}}: cells a person changed
    "value_map": dict,  # {"operators" or "department": {value: the account's ID}}
}


def _text(value: object) -> bool:
    """Text a person may type into a cell: no control character but tab and line ends."""
    return isinstance(value, str) and len(value) <= 32767 and not CONTROL.search(value)


class ChoiceError(ValueError):
    """A choice from the page that cannot be used (a wrong type, an unknown name)."""


def clean_choices(given: object) -> dict:
    """Only the known choices, each of its type; anything else is refused."""
    if not isinstance(given, dict):
        raise ChoiceError("expected an object")
    out = {}
    for name, value in given.items():
        kind = CHOICES.get(name)
        if kind is None:
            raise ChoiceError(f"unknown choice {name!r}")
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
            raise ChoiceError(f"{name}: wrong type")
        out[name] = value
    if out.get("distribute", DISTRIBUTIONS[0]) not in DISTRIBUTIONS:
        raise ChoiceError("distribute: unknown")
    return out


def option_values(choices: dict) -> dict:
    """The choices as RunOptions.build names (empty means: as the CLI finds it by default)."""
    values = {k: (v or None) for k, v in choices.items() if k not in ("pool", "ignore_columns")}
    values["ignore_columns"] = tuple(choices.get("ignore_columns") or ())
    values["pool"] = ",".join(choices.get("pool") or ()) or None
    for flag in ("verify_whatsapp", "online_only"):
        values[flag] = bool(choices.get(flag))
    return values


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, ensure_ascii=False, indent=1))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _status(data: dict) -> dict:
    """A ``status.json`` as this server writes it; any other (edited by hand, from another
    version) reads as a run stopped in error, which a resume continues from its ledger."""
    if not data:
        return {"state": "new"}
    try:
        counts, not_done = data.get("counts", {}), data.get("not_done") or {"rows": [], "more": 0}
        sane = (
            data.get("state", "new") in STATES
            and all(isinstance(n, int) for n in counts.values())
            and all(isinstance(data.get(k, ""), str) for k in ("summary", "message"))
            and isinstance(not_done["more"], int)
            and all(
                isinstance(row, int) and isinstance(status, str) and isinstance(error, str)
                for row, status, error in not_done["rows"]
            )
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        sane = False
    return data if sane else {"state": "error", "exit_code": 1}


@dataclass
class Run:
    id: str
    folder: Path
    name: str  # the browser's file name: for display only, never a path
    ext: str
    created: str
    choices: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)  # state: new, running, finished, interrupted, error

    @property
    def input(self) -> Path:
        return self.folder / f"input{self.ext}"

    def results(self, fmt: str) -> Path:
        return self.folder / f"results.{fmt}"

    def options(self, settings: dict) -> RunOptions:
        """The run's options as the CLI builds them: the page's choices, the server's settings,
        and the ledger every run of the account shares (so a sheet uploaded again sends no lead
        twice); a run made before it was shared keeps its own."""
        own = self.folder / "results.xlsx.journal"
        shared = self.folder.parent.parent / ("ledger.sandbox.journal" if settings.get("sandbox")
                                              else "ledger.journal")  # fmt: skip
        return RunOptions.build(
            input=self.input,
            output=str(self.results("csv")),  # then the workbook (see execute)
            journal=own if own.exists() else shared,
            quiet=True,
            label=self.name,
            results_lang=i18n.language(),  # the page's: who reads the results
            **option_values(self.choices),
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
        """A new run's folder (its ID made here), before the upload is written into it."""
        created = now()
        run_id = f"{dt.datetime.fromisoformat(created):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        folder = self.root / run_id
        folder.mkdir(mode=0o700)
        run = Run(run_id, folder, name, ext, created)
        run.status = {"state": "new"}
        self.save(run)
        return run

    def get(self, run_id: str) -> Run | None:
        if not RUN_ID.fullmatch(run_id):
            return None
        folder = self.root / run_id
        meta = _read_json(folder / "options.json")
        if meta.get("ext") not in EXTENSIONS:  # not a folder this server made
            return None
        try:
            choices = clean_choices(meta.get("choices", {}))
        except ChoiceError:
            choices = {}
        return Run(
            run_id,
            folder,
            str(meta.get("name", "")),
            meta["ext"],
            str(meta.get("created", "")),
            choices,
            _status(_read_json(folder / "status.json")),
        )

    def ids(self) -> list[str]:
        """Every run's ID, newest first, from the folders' names alone (read no file: a History
        of thousands of runs lists at once)."""
        with os.scandir(self.root) as entries:
            return sorted((e.name for e in entries if RUN_ID.fullmatch(e.name)), reverse=True)

    def page(self, ids: list[str], start: int, count: int) -> list[Run]:
        """The runs of ``ids[start:start + count]``, read."""
        return [run for run in map(self.get, ids[start : start + count]) if run is not None]

    def older_than(self, days: float) -> list[str]:
        """The runs made more than ``days`` ago (their IDs begin with the moment)."""
        limit = f"{dt.datetime.now() - dt.timedelta(days=days):%Y%m%d-%H%M%S}"
        return [run_id for run_id in self.ids() if run_id < limit]

    def save(self, run: Run) -> None:
        meta = {"name": run.name, "ext": run.ext, "created": run.created, "choices": run.choices}
        _write_json(run.folder / "options.json", meta)
        _write_json(run.folder / "status.json", run.status)

    def discard(self, run: Run) -> None:
        """The run's upload, results and choices gone (the shared ledger keeps what stops its
        leads being sent twice)."""
        shutil.rmtree(run.folder)


def execute(run: Run, settings: dict, environ, watch: Watch) -> tuple[dict, Callable | None]:
    """Run the batch as the CLI does, in this thread, its results as CSV; returns the status to
    keep, and what writes the workbook of the same results (slower: 20,000 rows take seconds,
    which the page need not wait for). Nothing the library writes for a person reaches the
    page, except the summary line and error messages."""
    env = Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)
    try:
        report = run_batch(run.options(settings), env, watch=watch)
    except BatchAttendError as exc:
        message, code = run.shown(str(exc)), int(exc.exit_status)
        return {"state": "error", "exit_code": code, "message": message, "finished": now()}, None
    except Exception as exc:
        log.exception("run %s failed", run.id)
        failed = {"state": "error", "exit_code": 1, "message": type(exc).__name__}
        return {**failed, "finished": now()}, None
    frame = contract_frame(report.plan.table.frame, report.frame)
    status = {
        "state": "interrupted" if report.summary.stop and report.summary.stop.interrupted else "finished",
        "exit_code": int(report.exit_status),
    }  # fmt: skip
    return _ended(run, status, report.summary, report.plan.table, frame)


def undo(run: Run, settings: dict, environ, watch: Watch) -> tuple[dict, Callable | None]:
    """Finish what the run started (the page asked, and the person confirmed), as ``batch-attend
    undo results.csv --yes`` does; its results rewritten in both forms. The run keeps its state
    and exit code (Resume sends the rows not done, the undone ones among them); a message says
    what was left started, if anything was."""
    options = run.options(settings)
    options.input.path = run.results("csv")
    env = Env(stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO(), environ=environ)
    try:
        report = undo_results(options, Narrowing(), env, watch=watch)
    except BatchAttendError as exc:
        return {**run.status, "message": run.shown(str(exc))}, None
    except Exception as exc:
        log.exception("undo of run %s failed", run.id)
        return {**run.status, "message": type(exc).__name__}, None
    if report.frame is None:  # nothing to undo, or the results could not be written
        return {**run.status, "message": run.shown(report.summary.write_error or "")}, None
    left = _("Some attendances could not be finished and stay started: Undo tries them again.")
    status = {**run.status, "message": left if report.exit_status else ""}
    return _ended(run, status, report.summary, report.table, report.frame)


def _ended(run: Run, status: dict, summary, table, frame) -> tuple[dict, Callable]:
    """The status of a run (or an undo) that wrote its results (``frame``, as written), and what
    writes the workbook of the same results."""
    lang = i18n.language()
    summary.output = "results.xlsx"  # the person's name for it, not the server's path
    contract = frame.iloc[:, -len(RESULT_COLUMNS) :].set_axis(list(RESULT_COLUMNS), axis=1)
    counted = summary_of(summary, contract)  # every row's status (an undo's summary: its own)

    def workbook() -> None:
        path = str(run.results("xlsx"))
        try:
            check_capacity(path, len(table))
            check_cell_lengths(path, table)
            write_results(path, table.columns, frame, summary=counted, lang=lang)
        except (BatchAttendError, OSError) as exc:  # the CSV holds them all the same
            log.warning("run %s: the XLSX results could not be written (%s)", run.id, exc)

    return {
        **status,
        "counts": {str(k): int(v) for k, v in counted.counts.items()},
        "summary": format_summary(summary),
        "not_done": not_done(contract),
        "finished": now(),
    }, workbook


def not_done(frame) -> dict:
    """The first rows the run did not get done (duplicates, and the rows an undo asked for,
    aside), as the results say them (in English: the page says them in its reader's language)."""
    shown = ~frame["status"].isin([*DONE_STATUSES, RowStatus.UNDONE])
    rows = frame[shown & ~frame["error"].str.startswith("duplicate_row")]
    shown = [
        [int(row), str(status), error]
        for row, status, error in zip(rows["row"], rows["status"], rows["error"], strict=True)
    ]
    return {"rows": shown[:PROBLEMS_SHOWN], "more": max(0, len(shown) - PROBLEMS_SHOWN)}
