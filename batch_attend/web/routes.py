"""The page's routes: upload, the preview a person fixes the sheet on, the run followed live,
its results, and History. Every word a person reads is in the templates, in their language.

Runs go on in a worker thread whatever the browser does; the page follows one through
server-sent events and can cancel it, which stops it as Ctrl-C stops a CLI run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import jinja2
from aiohttp import web

from batch_attend import i18n, sentences
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _, ngettext
from batch_attend.journal import now
from batch_attend.outcomes import split_error
from batch_attend.planning import DISTRIBUTIONS
from batch_attend.results import counted_words
from batch_attend.run import Watch
from batch_attend.sentences import label
from batch_attend.settings import RunOptions
from batch_attend.web import preview as previews
from batch_attend.web.runs import (
    EXTENSIONS,
    MAX_UPLOAD,
    ChoiceError,
    Run,
    RunStore,
    clean_choices,
    execute,
    undo,
)

HISTORY_PAGE = 50
LANG_COOKIE = "lang"
EVENTS_PER_SECOND = 4
STATUSES = ("started", "already_in_service", "invalid", "failed", "skipped", "undone")
#: What a change of sheet makes meaningless: the columns, header and fixes of the last one.
OF_A_SHEET = ("header_row", "phone_column", "ddd_column", "operators_column",
              "department_column", "ignore_columns", "cell_edits", "value_map")  # fmt: skip


@dataclass
class Job:
    """A run going in a worker thread; ``ended`` once its results are known (the workbook may
    still be being written: the job holds the run until it is)."""

    watch: Watch
    task: asyncio.Task | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Server:
    """What the app serves from: the runs, the key, and the settings
    every run gets (the credentials among them, which never leave this object but for a run's
    options)."""

    store: RunStore
    key: str
    settings: dict
    environ: Mapping[str, str]
    keep_days: float | None = None
    jobs: dict[str, Job] = field(default_factory=dict)

    def cookie(self, request: web.Request) -> tuple[str, str]:
        """The cookie's name and value for the port this request came in on: bound to it, and
        not the key, so another service of this host that gets it learns nothing it can use
        elsewhere."""
        port = request.transport.get_extra_info("sockname")[1]
        value = hmac.new(self.key.encode(), f"cookie:{port}".encode(), hashlib.sha256)
        return f"batch_attend_{port}", value.hexdigest()

    def right_key(self, given: str | None) -> bool:
        return hmac.compare_digest((given or "").encode(), self.key.encode())


SERVER = web.AppKey("server", Server)
TEMPLATES = web.AppKey("templates", jinja2.Environment)


def language(request: web.Request) -> str:
    """The ``lang`` cookie (the page's switch), else the browser's first language."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in ("en", "pt_BR"):
        return chosen
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return i18n.normal(first) if first else "en"


def templates(folder) -> jinja2.Environment:
    """The pages, with numbers and moments as the reader writes them."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.globals.update(_=_, ngettext=i18n.ngettext, counted_words=counted_words)
    env.filters.update(number=i18n.number, moment=i18n.moment)
    return env


def render(request: web.Request, name: str, **context) -> web.Response:
    page = request.app[TEMPLATES].get_template(name)
    text = page.render(lang=i18n.language(), here=request.path, statuses=STATUSES, **context)
    return web.Response(text=text, content_type="text/html")


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def state_of(server: Server, run: Run) -> str:
    """The run's state; one that says running with no job here died with an earlier server."""
    job = server.jobs.get(run.id)
    if job is not None and not job.ended.is_set():
        return "running"
    state = run.status.get("state", "new")
    return "crashed" if state == "running" else state


def find_run(request: web.Request) -> Run:
    run = request.app[SERVER].store.get(request.match_info["run"])
    if run is None:
        raise web.HTTPNotFound()
    return run


def shown_name(filename: str) -> str:
    """The browser's file name as text to show: its last part only, no control characters."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    return "".join(ch for ch in name if ch.isprintable())[:200] or "upload"


def outcome(server: Server, run: Run) -> dict:
    """How the run stands, for the page and the last event; the rows not done with their
    reasons in the page's words."""
    state = state_of(server, run)
    counts = run.status.get("counts", {})
    code = run.status.get("exit_code")
    # A rerun could send more when the run stopped early or rows failed (invalid rows stay so).
    stopped = state in ("interrupted", "crashed", "error") or code not in (0, 1)
    not_done = run.status.get("not_done") or {"rows": [], "more": 0}
    rows = []
    for row, status, error in not_done["rows"]:
        kind, said = split_error(error)
        rows.append([row, status, sentences.render(said, page=True) if said else label(kind)])
    return {
        "state": state,
        "exit_code": code,
        "resumable": state not in ("new", "running") and (stopped or bool(counts.get("failed"))),
        "counts": counts,
        "summary": run.status.get("summary", ""),
        "message": run.status.get("message", ""),
        "not_done": {"rows": rows, "more": not_done["more"]},
        "downloads": {
            f: f"/runs/{run.id}/results.{f}" for f in ("xlsx", "csv") if run.results(f).exists()
        },
        "undo": _undo_offer(counts.get("started", 0))
        if state in ("finished", "interrupted")
        else None,
    }


def _undo_offer(count: int) -> dict | None:
    """What the Undo button says, and its confirmation, for ``count`` attendances started."""
    if not count:
        return None
    n = i18n.number(count)
    return {
        "label": ngettext("Undo: end {count} attendance", "Undo: end {count} attendances", count).format(count=n),
        "confirm": ngettext(
            "End the attendance this run started? A conversation an operator has begun in it is closed too; the chat goes to the general department. Sending these leads again starts it anew.",
            "End the {count} attendances this run started? Conversations operators have begun in them are closed too; the chats go to the general department. Sending these leads again starts them anew.",
            count,
        ).format(count=n),
    }  # fmt: skip


# --- routes ------------------------------------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    store = server.store
    runs = await asyncio.to_thread(lambda: store.page(store.ids(), 0, 5))
    recent = [(run, state_of(server, run)) for run in runs]
    return render(
        request, "upload.html", recent=recent, extensions=EXTENSIONS, limit=MAX_UPLOAD >> 20
    )


@routes.post("/upload")
async def upload(request: web.Request) -> web.Response:
    """One file, streamed to ``runs/<id>/input.<ext>``: never more than the limit, never under
    a name from the browser."""
    server = request.app[SERVER]
    too_large = _("The file is larger than {limit} MiB.").format(limit=MAX_UPLOAD >> 20)
    if (request.content_length or 0) > MAX_UPLOAD + (1 << 16):
        return error(413, too_large)
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError):
        return error(400, _("No file was sent."))
    part = await reader.next()
    while part is not None and getattr(part, "name", None) != "file":
        part = await reader.next()
    if part is None or not part.filename:
        return error(400, _("No file was sent."))
    name = shown_name(part.filename)
    if PurePosixPath(name).suffix.lower() not in EXTENSIONS:
        only = _("Only these files can be sent: {extensions}.")
        return error(400, only.format(extensions=" ".join(EXTENSIONS)))
    run = server.store.new(name, PurePosixPath(name).suffix.lower())
    size = 0
    try:
        fd = os.open(run.input, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            while chunk := await part.read_chunk(1 << 16):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    break
                fh.write(chunk)
    except BaseException:  # the upload cut off: no run with half a spreadsheet is left
        server.store.discard(run)
        raise
    if size > MAX_UPLOAD or size == 0:
        server.store.discard(run)
        return error(413, too_large) if size else error(400, _("The file is empty."))
    return web.json_response({"url": f"/runs/{run.id}"})


@routes.get("/runs")
async def history(request: web.Request) -> web.Response:
    """A page of runs at a time, read in a worker thread: other requests never wait for it."""
    server, store = request.app[SERVER], request.app[SERVER].store
    ids = await asyncio.to_thread(store.ids)
    pages = max(1, -(-len(ids) // HISTORY_PAGE))
    asked = request.query.get("page", "1")
    page = min(max(1, int(asked) if asked.isdigit() else 1), pages)
    runs = await asyncio.to_thread(store.page, ids, (page - 1) * HISTORY_PAGE, HISTORY_PAGE)
    runs = [(run, outcome(server, run)) for run in runs]
    return render(request, "history.html", runs=runs, page=page, pages=pages)


@routes.post("/runs/{run}/delete")
async def delete(request: web.Request) -> web.Response:
    """The run's upload and results deleted (the person confirmed on the page); not while it
    runs."""
    server = request.app[SERVER]
    run = find_run(request)
    if run.id in server.jobs:
        return error(409, _("This run is going; cancel it before deleting it."))
    previews._kept.cache_clear()  # nothing of its upload kept, in memory either
    await asyncio.to_thread(server.store.discard, run)
    return web.json_response({"ok": True})


async def _preview(request: web.Request, run: Run, name: str = "preview.html") -> web.Response:
    server = request.app[SERVER]
    state = state_of(server, run)
    view = None
    if state == "new":
        problem = request.query.get("problem", "")
        view = await asyncio.to_thread(
            previews.preview, run, server.settings, server.environ, problem
        )
    return render(
        request,
        name,
        run=run,
        state=state,
        view=view,
        outcome=outcome(server, run),
        roles=previews.ROLES,
        distributions=DISTRIBUTIONS,
        online_possible=bool(server.settings.get("sandbox") or server.settings.get("account_id")),
    )


@routes.get("/runs/{run}")
async def run_page(request: web.Request) -> web.Response:
    """The run's page; ``?part=preview``: only its preview, which the page puts in place."""
    part = request.query.get("part") == "preview"
    return await _preview(request, find_run(request), "preview.html" if part else "run.html")


@routes.post("/runs/{run}/options")
async def set_options(request: web.Request) -> web.Response:
    """A choice of the page (sheet, columns, defaults, a cell edited, a value mapped) saved, and
    the preview it makes. Another sheet has other columns: the choices and fixes made for the
    last one are forgotten. A cell edit or a mapping adds to those made before (a mapping to
    nothing undoes one)."""
    server = request.app[SERVER]
    choices = await _json(request)
    run = find_run(request)  # read after the body came: as the last request saved it
    if state_of(server, run) != "new":
        return error(409, _("This run has started; its choices can no longer change."))
    if "sheet" in choices and choices["sheet"] != run.choices.get("sheet"):
        for name in OF_A_SHEET:
            run.choices.pop(name, None)
    for name in ("cell_edits", "value_map"):
        for key, pairs in choices.pop(name, {}).items():
            merged = {**run.choices.setdefault(name, {}).get(key, {}), **pairs}
            kept = {k: v for k, v in merged.items() if v or name == "cell_edits"}
            run.choices[name][key] = kept
    run.choices.update(choices)
    server.store.save(run)
    return await _preview(request, run)


async def _json(request: web.Request) -> dict:
    try:
        return clean_choices(await request.json())
    except (ValueError, ChoiceError) as exc:
        raise web.HTTPBadRequest(text=f"400: {exc}") from exc


@routes.get("/runs/{run}/problems.xlsx")
async def problems(request: web.Request) -> web.StreamResponse:
    """The rows with problems, with their reasons, to fix in a spreadsheet and upload again."""
    server, run = request.app[SERVER], find_run(request)
    try:
        path = await asyncio.to_thread(
            previews.write_problems, run, server.settings, server.environ
        )
    except BatchAttendError as exc:
        return error(409, run.shown(exc.page or str(exc)))
    return _file(path, "xlsx", f"batch-attend-{run.id}-problems.xlsx")


@routes.post("/runs/{run}/start")
async def start(request: web.Request) -> web.Response:
    """Start (or resume) the run in a worker thread; a run already going is not started twice:
    two runs would write the same results."""
    return await _begin(request, execute)


@routes.post("/runs/{run}/undo")
async def undo_run(request: web.Request) -> web.Response:
    """Finish what a finished run started (the page asked for a confirmation), followed as a
    run is; its status is the run's until the undo ends."""
    return await _begin(request, undo)


async def _begin(request: web.Request, work) -> web.Response:
    server = request.app[SERVER]
    choices = await _json(request)
    run = find_run(request)  # read after the body came: as the last request saved it
    if (job := server.jobs.get(run.id)) is not None:
        if not job.ended.is_set():
            return error(409, _("This run is already going."))
        await asyncio.shield(job.task)  # its workbook being written: a moment
        run = find_run(request)
    if work is undo and not outcome(server, run)["undo"]:
        return error(409, _("This run has no attendance to undo."))
    if choices and state_of(server, run) == "new":
        run.choices.update(choices)
    if work is execute:
        run.status = {"state": "running", "started": now()}
        server.store.save(run)
    job = server.jobs[run.id] = Job(Watch())
    job.task = asyncio.get_running_loop().create_task(_execute(server, run, job, work))
    return web.json_response({"ok": True})


async def _execute(server: Server, run: Run, job: Job, work=execute) -> None:
    """The run (or its undo), its status kept as soon as its results are known (the page shows
    them), then the workbook of its results."""
    status = {"state": "error", "exit_code": 1, "message": "stopped", "finished": now()}
    workbook = None
    try:
        args = (run, server.settings, server.environ, job.watch)
        status, workbook = await asyncio.to_thread(work, *args)
    finally:
        run.status = status
        server.store.save(run)
        job.ended.set()
        try:
            if workbook is not None:
                await asyncio.to_thread(workbook)
        finally:
            server.jobs.pop(run.id, None)


@routes.post("/runs/{run}/cancel")
async def cancel(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    job = server.jobs.get(find_run(request).id)
    if job is None:
        return error(409, _("This run is not going."))
    job.watch.cancel()
    return web.json_response({"ok": True})


@routes.get("/runs/{run}/events")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: how the run goes, a few times a second, then how it ended, then the
    files to download once both are written. Closing the page closes only this stream; the
    run goes on."""
    server = request.app[SERVER]
    run = find_run(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def send(kind: str, data: dict) -> None:
        text = json.dumps(data, ensure_ascii=False)
        await response.write(f"event: {kind}\ndata: {text}\n\n".encode())

    with contextlib.suppress(ConnectionError):
        while (job := server.jobs.get(run.id)) is not None and not job.ended.is_set():
            await send("progress", job.watch.snapshot())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.ended.wait(), 1 / EVENTS_PER_SECOND)
        await send("end", outcome(server, server.store.get(run.id) or run))
        if (job := server.jobs.get(run.id)) is not None:
            await asyncio.wait({job.task})
        await send("files", outcome(server, run)["downloads"])
    return response


@routes.get("/runs/{run}/results.{fmt}")
async def download(request: web.Request) -> web.StreamResponse:
    run = find_run(request)
    fmt = request.match_info["fmt"]
    path = run.results(fmt) if fmt in ("xlsx", "csv") else None
    if path is None or not path.is_file():
        raise web.HTTPNotFound()
    return _file(path, fmt, f"batch-attend-{run.id}.{fmt}")


def _file(path, fmt: str, name: str) -> web.FileResponse:
    kind = {
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv": "text/csv; charset=utf-8",
    }[fmt]
    disposition = f'attachment; filename="{name}"'
    return web.FileResponse(
        path, headers={"Content-Type": kind, "Content-Disposition": disposition}
    )


@routes.get("/template.xlsx")
async def template(request: web.Request) -> web.Response:
    """A leads workbook to fill in, with drop-downs of the account's active operators (with the
    server's ticket) and departments: ``batch-attend template``, made for the page."""
    server = request.app[SERVER]
    try:
        data = await asyncio.to_thread(make_template, server)
    except BatchAttendError as exc:
        return web.Response(status=502, text=str(exc))
    return web.Response(
        body=data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="leads.xlsx"'},
    )


def make_template(server: Server) -> bytes:
    """The template written under the data directory, read back and removed."""
    from batch_attend.template import write_template

    folder = server.store.root.parent / "templates"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / f"leads-{secrets.token_hex(6)}.xlsx"
    env = Env(stdout=io.StringIO(), stderr=io.StringIO(), environ=server.environ)
    try:
        write_template(path, RunOptions.build(**server.settings), env, on_page=True)
        return path.read_bytes()
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


@routes.get("/lang/{lang}")
async def switch_language(request: web.Request) -> web.Response:
    """Only a cookie in the browser changes; the page goes back where it was (on this site)."""
    back = request.query.get("next", "/")
    if not re.fullmatch(r"/(?!/)[\w./-]*", back):  # nor a tab or a line break, which browsers drop
        back = "/"
    response = web.Response(status=303, headers={"Location": back})
    lang = i18n.normal(request.match_info["lang"])
    response.set_cookie(LANG_COOKIE, lang, samesite="Strict", path="/", max_age=365 * 86400)
    return response
