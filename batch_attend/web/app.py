"""The page of ``batch-attend serve``: upload, preview, the run followed live (in a worker thread,
whatever the browser does), results and History. Every route needs the printed key (then a
cookie), a POST a header no other site can send; the API token stays in this process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import html
import ipaddress
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from filelock import FileLock, Timeout

from batch_attend import i18n, sentences
from batch_attend.api import check_base_url, check_token
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _, ngettext
from batch_attend.journal import now
from batch_attend.outcomes import split_error
from batch_attend.planning import DISTRIBUTIONS
from batch_attend.results import counted_words
from batch_attend.run import Watch
from batch_attend.sandbox import serve_until_stopped
from batch_attend.sentences import label
from batch_attend.settings import RunOptions, resolve_token
from batch_attend.web import runs

HISTORY_PAGE = 50
LANG_COOKIE = "lang"
EVENTS_PER_SECOND = 4
#: What a change of sheet makes meaningless: the columns, header and fixes of the last one.
OF_A_SHEET = ("header_row", "phone_column", "ddd_column", "operators_column",
              "department_column", "ignore_columns", "cell_edits", "value_map")  # fmt: skip
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KINDS = {"xlsx": XLSX, "csv": "text/csv; charset=utf-8"}
#: The printed address's answer: a same-site move to the page, which the Strict cookie goes with.
MOVE_TO = (
    '<!DOCTYPE html><meta http-equiv="refresh" content="0;url={0}"><a href="{0}">batch-attend</a>'
)
#: Each page's own headers: nothing from elsewhere runs in it, it is framed nowhere, and the
#: address (which may hold the key) is never sent on as a referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ServeError(BatchAttendError):
    """The server cannot start (a port taken, an address not this machine's)."""


@dataclass
class Job:
    """A run in a worker thread; ``ended`` once its results are known, before its workbook."""

    watch: Watch
    task: asyncio.Task | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Server:
    """What the app serves from; the credentials in ``settings`` leave it only in runs' options."""

    store: runs.RunStore
    key: str
    settings: dict
    environ: Mapping[str, str]
    jobs: dict[str, Job] = field(default_factory=dict)


SERVER = web.AppKey("server", Server)
#: The pages, with numbers and moments as the reader writes them.
PAGES = jinja2.Environment(
    loader=jinja2.PackageLoader(__package__), autoescape=True, undefined=jinja2.StrictUndefined
)
PAGES.globals.update(_=_, ngettext=i18n.ngettext, counted_words=counted_words)
PAGES.globals.update(roles=runs.ROLES, distributions=DISTRIBUTIONS, extensions=runs.EXTENSIONS)
PAGES.filters.update(number=i18n.number, moment=i18n.moment)


def render(request: web.Request, name: str, **context) -> web.Response:
    text = PAGES.get_template(name).render(lang=i18n.language(), here=request.path, **context)
    return web.Response(text=text, content_type="text/html")


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def attachment(fmt: str, name: str) -> dict[str, str]:
    return {"Content-Type": KINDS[fmt], "Content-Disposition": f'attachment; filename="{name}"'}


def find_run(request: web.Request) -> tuple[Server, runs.Run]:
    server = request.app[SERVER]
    run = server.store.get(request.match_info["run"])
    if run is None:
        raise web.HTTPNotFound()
    return server, run


def outcome(server: Server, run: runs.Run) -> dict:
    """How the run stands, for the page and the last event, in the page's words."""
    status = {"state": "new", "counts": {}, "summary": "", "message": "", **run.status}
    state = status["state"]
    if state == "running" and run.id not in server.jobs:  # it died with an earlier server
        state = "crashed"
    # A rerun could send more when the run stopped early or rows failed (invalid rows stay so).
    stopped = state in ("interrupted", "crashed", "error") or status.get("exit_code") not in (0, 1)
    failed = bool(status["counts"].get("failed"))
    not_done = status.get("not_done") or {"rows": [], "more": 0}
    rows = []
    for row, done, error in not_done["rows"]:
        kind, said = split_error(error)
        rows.append([row, done, sentences.render(said, page=True) if said else label(kind)])
    started = status["counts"].get("started", 0) if state in ("finished", "interrupted") else 0
    undo = None
    if started:  # what the Undo button says, and its confirmation
        n = i18n.number(started)
        undo = {
            "label": ngettext("Undo: end {count} attendance", "Undo: end {count} attendances", started).format(count=n),
            "confirm": ngettext(
                "End the attendance this run started? A conversation an operator has begun in it is closed too; the chat goes to the general department. Sending these leads again starts it anew.",
                "End the {count} attendances this run started? Conversations operators have begun in them are closed too; the chats go to the general department. Sending these leads again starts them anew.",
                started,
            ).format(count=n),
        }  # fmt: skip
    return {
        **status,
        "state": state,
        "resumable": state not in ("new", "running") and (stopped or failed),
        "not_done": {"rows": rows, "more": not_done["more"]},
        "downloads": {f: f"/runs/{run.id}/results.{f}" for f in KINDS if run.results(f).exists()},
        "undo": undo,
    }


@web.middleware
async def guard(request: web.Request, handler):
    server = request.app[SERVER]
    # Bound to the port, not the key: a browser sends it to every port of the host.
    port = request.transport.get_extra_info("sockname")[1]
    name = f"batch_attend_{port}"
    value = hmac.new(server.key.encode(), f"cookie:{port}".encode(), hashlib.sha256).hexdigest()
    given = request.query.get("key")  # the printed address
    origin = request.headers.get("Origin")
    if given is not None:
        allowed = hmac.compare_digest(given.encode(), server.key.encode())
    elif not hmac.compare_digest(request.cookies.get(name, "").encode(), value.encode()):
        allowed = False
    else:  # a change comes only from the page's own script, and nothing says it came from elsewhere
        allowed = request.method in ("GET", "HEAD") or (
            request.headers.get("X-Batch-Attend") == "1"
            and request.headers.get("Sec-Fetch-Site") in (None, "same-origin", "none")
            and (origin is None or urlsplit(origin).netloc == request.host)
        )
    if not allowed:
        return web.Response(status=403, text="403: " + _("forbidden"))
    if given is not None:  # the key kept in the cookie, the address forgets it
        query = request.query.copy()
        query.popall("key")
        page = html.escape(str(request.rel_url.with_query(query)))
        response = web.Response(text=MOVE_TO.format(page), content_type="text/html")
        response.set_cookie(name, value, httponly=True, samesite="Strict", path="/")
        return response
    lang = request.cookies.get(LANG_COOKIE)  # the page's switch, else the browser's language
    if lang not in ("en", "pt_BR"):
        lang = request.headers.get("Accept-Language", "").split(",")[0].strip()
    with i18n.speaking(lang):
        return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


routes = web.RouteTableDef()
routes.static("/static", Path(__file__).parent / "static")


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    latest, _page, _pages = await asyncio.to_thread(server.store.page, 1, 5)
    recent = [(run, outcome(server, run)["state"]) for run in latest]
    return render(request, "upload.html", recent=recent, limit=runs.MAX_UPLOAD >> 20)


@routes.post("/upload")
async def upload(request: web.Request) -> web.Response:
    """One file, streamed: never past the limit, never under the browser's name (only shown)."""
    server = request.app[SERVER]
    too_large = _("The file is larger than {limit} MiB.").format(limit=runs.MAX_UPLOAD >> 20)
    if (request.content_length or 0) > runs.MAX_UPLOAD + (1 << 16):
        return error(413, too_large)
    try:
        part = await (await request.multipart()).next()  # the page sends the file alone
    except (AssertionError, ValueError):  # not a form
        part = None
    if part is None or getattr(part, "name", None) != "file" or not part.filename:
        return error(400, _("No file was sent."))
    name = PurePosixPath(part.filename.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:200] or "upload"
    ext = PurePosixPath(name).suffix.lower()
    if ext not in runs.EXTENSIONS:
        only = _("Only these files can be sent: {extensions}.")
        return error(400, only.format(extensions=" ".join(runs.EXTENSIONS)))
    run = server.store.new(name, ext)
    size = 0
    try:
        with open(run.input, "xb", opener=lambda path, flags: os.open(path, flags, 0o600)) as fh:
            while size <= runs.MAX_UPLOAD and (chunk := await part.read_chunk(1 << 16)):
                size += len(chunk)
                fh.write(chunk)  # past the limit by a chunk at most, then deleted
    except BaseException:  # the upload cut off: no run with half a spreadsheet is left
        server.store.discard(run)
        raise
    if size > runs.MAX_UPLOAD or size == 0:
        server.store.discard(run)
        return error(413, too_large) if size else error(400, _("The file is empty."))
    return web.json_response({"url": f"/runs/{run.id}"})


@routes.get("/runs")
async def history(request: web.Request) -> web.Response:
    """A page of runs at a time, read in a worker thread: other requests never wait for it."""
    server = request.app[SERVER]
    asked = request.query.get("page", "")
    number = int(asked) if asked.isdigit() else 1
    listed, page, pages = await asyncio.to_thread(server.store.page, number, HISTORY_PAGE)
    listed = [(run, outcome(server, run)) for run in listed]
    return render(request, "history.html", runs=listed, page=page, pages=pages)


@routes.post("/runs/{run}/delete")
async def delete(request: web.Request) -> web.Response:
    server, run = find_run(request)
    if run.id in server.jobs:
        return error(409, _("This run is going; cancel it before deleting it."))
    await asyncio.to_thread(server.store.discard, run)
    return web.json_response({"ok": True})


@routes.get("/runs/{run}")
async def run_page(request: web.Request) -> web.Response:
    """The run's page, or only its preview (``?part=preview``, and after a choice), which the page
    puts in place; a run not started shows its upload's (``?problem=``: that problem's rows)."""
    server, run = find_run(request)
    shown = outcome(server, run)
    args = (run, server.settings, server.environ, request.query.get("problem", ""))
    view = await asyncio.to_thread(runs.preview, *args) if shown["state"] == "new" else None
    online = bool(server.settings.get("sandbox") or server.settings.get("account_id"))
    part = request.method == "POST" or request.query.get("part") == "preview"
    name = "preview.html" if part else "run.html"
    return render(request, name, run=run, view=view, outcome=shown, online_possible=online)


async def _choices(request: web.Request) -> tuple[dict, Server, runs.Run]:
    """The choices sent, then the run, read after them: as the last request saved it."""
    try:
        choices = runs.clean_choices(await request.json())
    except ValueError as exc:  # not JSON, or a choice that cannot be used
        raise web.HTTPBadRequest(text=f"400: {exc}") from exc
    return choices, *find_run(request)


@routes.post("/runs/{run}/options")
async def set_options(request: web.Request) -> web.Response:
    """A choice saved, and the preview it makes. Another sheet forgets the last one's columns and
    fixes; cell edits and mappings add to those before (a mapping to nothing undoes one)."""
    choices, server, run = await _choices(request)
    if outcome(server, run)["state"] != "new":
        return error(409, _("This run has started; its choices can no longer change."))
    if "sheet" in choices and choices["sheet"] != run.choices.get("sheet"):
        for name in OF_A_SHEET:
            run.choices.pop(name, None)
    for name in ("cell_edits", "value_map"):
        for key, pairs in choices.pop(name, {}).items():
            merged = {**run.choices.setdefault(name, {}).get(key, {}), **pairs}
            run.choices[name][key] = {k: v for k, v in merged.items() if v or name == "cell_edits"}
    run.choices.update(choices)
    server.store.save(run)
    return await run_page(request)


@routes.get("/runs/{run}/problems.xlsx")
async def problems(request: web.Request) -> web.StreamResponse:
    server, run = find_run(request)
    try:
        path = await asyncio.to_thread(runs.write_problems, run, server.settings, server.environ)
    except BatchAttendError as exc:
        return error(409, run.shown(exc.page or str(exc)))
    name = f"batch-attend-{run.id}-problems.xlsx"
    return web.FileResponse(path, headers=attachment("xlsx", name))


@routes.post("/runs/{run}/{work:start|undo}")
async def begin(request: web.Request) -> web.Response:
    """Start (or resume) the run, or undo what it started; never two at once: both write results."""
    undoing = request.match_info["work"] == "undo"
    choices, server, run = await _choices(request)
    # Asked again after each wait: two requests waiting on one job's end must not both begin.
    while (job := server.jobs.get(run.id)) is not None and not job.task.done():
        if not job.ended.is_set():
            return error(409, _("This run is already going."))
        await asyncio.shield(job.task)  # its workbook being written: a moment
        _server, run = find_run(request)
    if undoing and not outcome(server, run)["undo"]:
        return error(409, _("This run has no attendance to undo."))
    if choices and outcome(server, run)["state"] == "new":
        run.choices.update(choices)
    if not undoing:
        run.status = {"state": "running", "started": now()}
        server.store.save(run)
    job = server.jobs[run.id] = Job(Watch())
    job.task = asyncio.get_running_loop().create_task(_execute(server, run, job, undoing))
    return web.json_response({"ok": True})


async def _execute(server: Server, run: runs.Run, job: Job, undoing: bool) -> None:
    """The run (or its undo); its status kept once its results are known, then their workbook."""
    status = {"state": "error", "exit_code": 1, "message": "stopped"}
    workbook = None
    try:
        args = (run, server.settings, server.environ, job.watch, undoing)
        status, workbook = await asyncio.to_thread(runs.execute, *args)
    finally:
        run.status = {**status, "finished": now()}
        server.store.save(run)
        job.ended.set()
        try:
            if workbook is not None:
                await asyncio.to_thread(workbook)
        finally:
            server.jobs.pop(run.id, None)


@routes.post("/runs/{run}/cancel")
async def cancel(request: web.Request) -> web.Response:
    server, run = find_run(request)
    if (job := server.jobs.get(run.id)) is None:
        return error(409, _("This run is not going."))
    job.watch.cancel()
    return web.json_response({"ok": True})


@routes.get("/runs/{run}/events")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events until the run's files are written; the run outlives the stream."""
    server, run = find_run(request)
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
    _server, run = find_run(request)
    fmt = request.match_info["fmt"]
    path = run.results(fmt) if fmt in KINDS else None
    if path is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers=attachment(fmt, f"batch-attend-{run.id}.{fmt}"))


@routes.get("/template.xlsx")
async def template(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    try:
        data = await asyncio.to_thread(server.store.template, server.settings, server.environ)
    except BatchAttendError as exc:
        return web.Response(status=502, text=str(exc))
    return web.Response(body=data, headers=attachment("xlsx", "leads.xlsx"))


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


async def forget_old_runs(app: web.Application, days: float):
    """``--keep-days``: runs made more than ``days`` ago are deleted, at start and every hour."""
    server = app[SERVER]

    async def forget() -> None:
        while True:
            await asyncio.to_thread(server.store.forget, days, server.jobs)
            await asyncio.sleep(3600)

    task = asyncio.get_running_loop().create_task(forget())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def stop_runs(app: web.Application) -> None:
    """The server stopping: every run stops as after Ctrl-C, its results written."""
    jobs = list(app[SERVER].jobs.values())
    for job in jobs:
        job.watch.cancel()
    await asyncio.gather(*(job.task for job in jobs), return_exceptions=True)


def make_app(
    data_dir: Path,
    key: str,
    settings: dict,
    environ: Mapping[str, str],
    keep_days: float | None = None,
) -> web.Application:
    """``settings``: the RunOptions.build names every run gets; ``environ``: what runs see."""
    app = web.Application(middlewares=[guard], client_max_size=1 << 20)
    app[SERVER] = Server(runs.RunStore(data_dir), key, dict(settings), dict(environ))
    app.add_routes(routes)
    app.on_response_prepare.append(security_headers)
    if keep_days is not None:
        app.cleanup_ctx.append(functools.partial(forget_old_runs, days=keep_days))
    app.on_shutdown.append(stop_runs)
    return app


def reachable(host: str) -> list[str]:
    """The addresses another machine can open for ``host``: this machine's own for a wildcard."""
    if host not in ("0.0.0.0", "::", ""):
        return [host]
    found = set()
    with contextlib.suppress(OSError):
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet leaves: the route tells the outward address
        found.add(probe.getsockname()[0])
    outward = sorted(a for a in found if not ipaddress.ip_address(a).is_loopback)
    return outward or ["127.0.0.1"]


def serve(
    host: str,
    port: int,
    data_dir: Path,
    settings: dict,
    environ: Mapping[str, str],
    announce: Callable[[str], None],
    warn: Callable[[str], None] = lambda line: None,
    keep_days: float | None = None,
) -> None:
    """Serve until Ctrl-C, announcing each address to open (with the key). One server per data
    directory: a second would take the first's runs for crashed ones."""
    requests = RunOptions.build(**settings).requests
    if not requests.sandbox:  # refused before listening: what no run could use
        check_base_url(requests.base_url)
        check_token(resolve_token(requests, environ))
    key = secrets.token_urlsafe(24)
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        held = FileLock(str(data_dir / ".serve.lock"), timeout=0).acquire()
    except Timeout:
        message = _("{folder}: another batch-attend serve uses this data directory")
        raise ServeError(message.format(folder=data_dir)) from None
    try:
        local = ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = host == "localhost"
    if not local:
        warning = _(
            "the page listens on {host}: other machines can reach it, and its key, the "
            "cookie and the leads' phone numbers cross the network unencrypted (plain "
            "HTTP). Use it only on a network you trust, or behind an HTTPS proxy."
        ).format(host=host)
        warn(f"batch-attend: {_('warning')}: {warning}")

    def bound(port: int) -> None:
        for name in reachable(host):
            origin = f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"
            announce(f"{origin}/?key={key}")

    with held:
        app = make_app(data_dir, key, settings, environ, keep_days)
        serve_until_stopped(app, host, port, bound, ServeError, shutdown_timeout=2)
