"""The web server of ``batch-attend serve``: routes, pages, and what keeps them safe.

* Every route needs the key printed at start: a first visit with ``?key=`` leaves an HttpOnly,
  SameSite=Strict cookie named after this server's port and holding a value derived from the key
  and that port, never the key (a browser sends cookies to every port of a host); without it,
  or with a wrong one, 403.
* A request that changes anything (POST) must carry ``X-Batch-Attend: 1``, which no form or
  link of another site can send, and come from this site (``Origin``, ``Sec-Fetch-Site``).
* The API token stays in this process: runs get it through their options, built here; it is
  in no page, answer, stored file or log.
* Runs go on in a worker thread whatever the browser does; the page follows one through
  server-sent events and can cancel it, which stops it as Ctrl-C stops a CLI run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import html
import io
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from batch_attend import i18n, sentences
from batch_attend.api import check_base_url, check_token
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _, ngettext
from batch_attend.journal import now
from batch_attend.planning import DISTRIBUTIONS
from batch_attend.results import counted_words
from batch_attend.run import Watch
from batch_attend.sandbox import serve_until_stopped
from batch_attend.settings import RunOptions, resolve_token
from batch_attend.web import preview as previews
from batch_attend.web.runs import (
    EXTENSIONS,
    MAX_UPLOAD,
    ChoiceError,
    Run,
    RunStore,
    clean_choices,
    execute,
)

HERE = Path(__file__).parent


class ServeError(BatchAttendError):
    """The server cannot start (a port taken, an address not this machine's)."""


CSRF_HEADER = "X-Batch-Attend"
HISTORY_PAGE = 50
LANG_COOKIE = "lang"
EVENTS_PER_SECOND = 4
STATUSES = ("started", "already_in_service", "invalid", "failed", "skipped")
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


@dataclass
class Job:
    watch: Watch
    task: asyncio.Task


@dataclass
class Server:
    """What the app serves from: the runs, the key, and the settings every run gets (the
    credentials among them, which never leave this object but for a run's options)."""

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


def check_settings(settings: dict, environ: Mapping[str, str]) -> None:
    """Refuse to serve, before listening, what no run could use: no token, a bad base URL."""
    requests = RunOptions.build(**settings).requests
    if not requests.sandbox:
        check_base_url(requests.base_url)
        check_token(resolve_token(requests, environ))


def language(request: web.Request) -> str:
    """The ``lang`` cookie (the page's switch), else the browser's first language."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in ("en", "pt_BR"):
        return chosen
    first = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0].strip()
    return i18n.normal(first) if first else "en"


def forbidden() -> web.Response:
    return web.Response(status=403, text="403: " + _("forbidden"))


def same_site(request: web.Request) -> bool:
    """A request the page itself made: with the header only a script of this origin can add,
    and nothing saying it came from elsewhere."""
    if request.headers.get(CSRF_HEADER) != "1":
        return False
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


@web.middleware
async def guard(request: web.Request, handler):
    server = request.app[SERVER]
    given = request.query.get("key")
    if given is not None:  # the printed address: keep the key in a cookie, then forget it
        if not server.right_key(given):
            return forbidden()
        query = request.query.copy()
        query.popall("key")
        target = str(request.rel_url.with_query(query))
        page = html.escape(target, quote=True)
        response = web.Response(
            text=f'<!DOCTYPE html><meta http-equiv="refresh" content="0;url={page}">'
            f'<a href="{page}">batch-attend</a>',
            content_type="text/html",
        )
        name, value = server.cookie(request)
        response.set_cookie(name, value, httponly=True, samesite="Strict", path="/")
        return response
    name, value = server.cookie(request)
    if not hmac.compare_digest(request.cookies.get(name, "").encode(), value.encode()):
        return forbidden()
    if request.method not in ("GET", "HEAD") and not same_site(request):
        return forbidden()
    with i18n.speaking(language(request)):
        return await handler(request)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def js_strings() -> dict[str, str]:
    """The few words the page's script shows, in the page's language."""
    return {
        "uploading": _("Uploading…"),
        "upload_failed": _("The upload failed."),
        "starting": _("Starting…"),
        "cancelling": _("Cancelling…"),
        "left": _("about {seconds} s left"),
        "rate": _("{rate} rows/s"),
        "of": _("{done} of {total} rows sent"),
        "interrupted": _("Cancelled: the rows not sent are marked skipped; resume to send them."),
        "cancel": _("Cancel"),
        "more": _("… and {count} more"),
        **status_names(),
        "count_words": count_words(),
        **{f"state_{name}": text for name, text in state_names().items()},
    }


def tiles(view: dict) -> list[tuple[str, str, int, str]]:
    """The preview's counts: (name, style, count, its words, singular or plural)."""
    words = {
        "rows": ngettext("{count} row", "{count} rows", view["rows"]),
        "ready": counted_words("ready", view["ready"]),
        "invalid": counted_words("invalid", view["invalid"]),
        "duplicates": ngettext("{count} duplicate", "{count} duplicates", view["duplicates"]),
        "done": _("{count} done by an earlier run"),
    }
    styles = {"ready": "s-started", "invalid": "s-invalid", "duplicates": "s-skipped"}
    styles["done"] = "s-already_in_service"
    return [
        (name, styles.get(name, ""), view[name], text.replace("{count}", "").strip())
        for name, text in words.items()
        if name != "done" or view["done"]
    ]


def count_words() -> dict[str, tuple[str, str]]:
    """Per status, the words for one row and for several, ``{count}`` where the number goes."""
    return {s: (counted_words(s, 1), counted_words(s, 2)) for s in STATUSES}


def status_names() -> dict[str, str]:
    return {
        "started": _("started"),
        "already_in_service": _("already in service"),
        "invalid": _("invalid"),
        "failed": _("failed"),
        "skipped": _("skipped"),
    }


def state_names() -> dict[str, str]:
    return {
        "new": _("not started"),
        "running": _("running"),
        "finished": _("finished"),
        "interrupted": _("cancelled"),
        "error": _("error"),
        "crashed": _("stopped unexpectedly"),
    }


def render(request: web.Request, name: str, **context) -> web.Response:
    lang = i18n.language()
    page = request.app[TEMPLATES].get_template(name)
    text = page.render(
        lang=lang,
        here=request.path,
        strings=js_strings(),
        statuses=STATUSES,
        status_names=status_names(),
        count_words=count_words(),
        state_names=state_names(),
        **context,
    )
    return web.Response(text=text, content_type="text/html")


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def state_of(server: Server, run: Run) -> str:
    """The run's state; one that says running with no job here died with an earlier server."""
    if run.id in server.jobs:
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


def downloads(run: Run) -> dict[str, str]:
    return {
        fmt: f"/runs/{run.id}/results.{fmt}" for fmt in ("xlsx", "csv") if run.results(fmt).exists()
    }


def outcome(server: Server, run: Run) -> dict:
    """How the run stands, for the page and the last event."""
    state = state_of(server, run)
    counts = run.status.get("counts", {})
    code = run.status.get("exit_code")
    # A rerun could send more when the run stopped early or rows failed (invalid rows stay so).
    stopped = state in ("interrupted", "crashed", "error") or code not in (0, 1)
    return {
        "state": state,
        "exit_code": code,
        "resumable": state not in ("new", "running") and (stopped or bool(counts.get("failed"))),
        "counts": counts,
        "summary": run.status.get("summary", ""),
        "message": run.status.get("message", ""),
        "not_done": said_not_done(run.status.get("not_done") or {"rows": [], "more": 0}),
        "downloads": downloads(run),
    }


def said_not_done(not_done: dict) -> dict:
    """The rows not done, their reasons in the page's language."""
    rows = [[row, status, said_reason(error)] for row, status, error in not_done["rows"]]
    return {"rows": rows, "more": not_done["more"]}


def said_reason(error: str) -> str:
    """A row's reason in the page's language; a row a stop left is sent by the page's Resume
    button, not by a command run again (as the results file says)."""
    if error.partition(": ")[0] == "interrupted":
        return "interrupted: " + _("not sent: the run was cancelled; Resume sends it")
    return sentences.render_error(error)


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
    if (request.content_length or 0) > MAX_UPLOAD + (1 << 16):
        return error(413, _("The file is larger than {limit} MiB.").format(limit=MAX_UPLOAD >> 20))
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
    ext = PurePosixPath(name).suffix.lower()
    if ext not in EXTENSIONS:
        return error(
            400,
            _("Only these files can be sent: {extensions}.").format(
                extensions=" ".join(EXTENSIONS)
            ),
        )
    run = server.store.new(name, ext)
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
        if size:
            return error(
                413, _("The file is larger than {limit} MiB.").format(limit=MAX_UPLOAD >> 20)
            )
        return error(400, _("The file is empty."))
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
    await asyncio.to_thread(server.store.discard, run)
    return web.json_response({"ok": True})


@routes.get("/runs/{run}")
async def run_page(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    run = find_run(request)
    state = state_of(server, run)
    view = None
    if state == "new":
        view = await asyncio.to_thread(previews.preview, run, server.settings, server.environ)
    return render(
        request,
        "run.html",
        run=run,
        state=state,
        view=view,
        outcome=outcome(server, run),
        roles=previews.role_names(),
        distributions=DISTRIBUTIONS,
        online_possible=bool(server.settings.get("sandbox") or server.settings.get("account_id")),
    )


async def _json(request: web.Request) -> dict:
    try:
        return clean_choices(await request.json())
    except (ValueError, ChoiceError) as exc:
        raise web.HTTPBadRequest(text=f"400: {exc}") from exc


@routes.post("/runs/{run}/options")
async def set_options(request: web.Request) -> web.Response:
    """The page's choices (sheet, columns, defaults), for the preview and the run. Another sheet
    has other columns: the columns chosen for the last one are forgotten."""
    server = request.app[SERVER]
    choices = await _json(request)
    run = find_run(request)  # read after the body came: as the last request saved it
    if state_of(server, run) != "new":
        return error(409, _("This run has started; its choices can no longer change."))
    if "sheet" in choices and choices["sheet"] != run.choices.get("sheet"):
        for name in (
            "header_row",
            "phone_column",
            "ddd_column",
            "operators_column",
            "department_column",
            "ignore_columns",
        ):
            run.choices.pop(name, None)
    run.choices.update(choices)
    server.store.save(run)
    return web.json_response({"ok": True})


@routes.post("/runs/{run}/start")
async def start(request: web.Request) -> web.Response:
    """Start (or resume) the run in a worker thread; a run already going is not started twice:
    two runs would write the same results."""
    server = request.app[SERVER]
    choices = await _json(request)
    run = find_run(request)  # read after the body came: as the last request saved it
    if run.id in server.jobs:
        return error(409, _("This run is already going."))
    if choices and state_of(server, run) == "new":
        run.choices.update(choices)
    watch = Watch()
    run.status = {"state": "running", "started": now()}
    server.store.save(run)
    task = asyncio.get_running_loop().create_task(_execute(server, run, watch))
    server.jobs[run.id] = Job(watch, task)
    return web.json_response({"ok": True})


async def _execute(server: Server, run: Run, watch: Watch) -> None:
    status = {"state": "error", "exit_code": 1, "message": "stopped", "finished": now()}
    try:
        status = await asyncio.to_thread(execute, run, server.settings, server.environ, watch)
    finally:
        run.status = status
        server.store.save(run)
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
    """Server-sent events: how the run goes, a few times a second, then how it ended. Closing
    the page closes only this stream; the run goes on."""
    server = request.app[SERVER]
    run = find_run(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):
        while (job := server.jobs.get(run.id)) is not None:
            data = json.dumps(job.watch.snapshot())
            await response.write(f"event: progress\ndata: {data}\n\n".encode())
            await asyncio.wait({job.task}, timeout=1 / EVENTS_PER_SECOND)
        ended = server.store.get(run.id) or run
        data = json.dumps(outcome(server, ended), ensure_ascii=False)
        await response.write(f"event: end\ndata: {data}\n\n".encode())
    return response


@routes.get("/runs/{run}/results.{fmt}")
async def download(request: web.Request) -> web.StreamResponse:
    run = find_run(request)
    fmt = request.match_info["fmt"]
    path = run.results(fmt) if fmt in ("xlsx", "csv") else None
    if path is None or not path.is_file():
        raise web.HTTPNotFound()
    kind = {
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv": "text/csv; charset=utf-8",
    }[fmt]
    return web.FileResponse(
        path,
        headers={
            "Content-Type": kind,
            "Content-Disposition": f'attachment; filename="batch-attend-{run.id}.{fmt}"',
        },
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


async def _forget_old_runs(app: web.Application) -> None:
    """``--keep-days N``: runs made more than N days ago are deleted, at start and every hour."""
    server = app[SERVER]

    async def forget() -> None:
        while True:
            for run_id in await asyncio.to_thread(server.store.older_than, server.keep_days):
                run = server.store.get(run_id)
                if run is not None and run_id not in server.jobs:
                    await asyncio.to_thread(server.store.discard, run)
            await asyncio.sleep(3600)

    if server.keep_days is not None:
        task = asyncio.get_running_loop().create_task(forget())
        app.on_cleanup.append(lambda app: _cancel(task))


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stop_runs(app: web.Application) -> None:
    """The server stopping: every run stops as after Ctrl-C, its results written."""
    jobs = list(app[SERVER].jobs.values())
    for job in jobs:
        job.watch.cancel()
    if jobs:
        await asyncio.gather(*(job.task for job in jobs), return_exceptions=True)


def make_app(
    data_dir: Path,
    key: str,
    settings: dict,
    environ: Mapping[str, str],
    keep_days: float | None = None,
) -> web.Application:
    """The app; ``settings`` are RunOptions.build names every run gets (credentials, base URL,
    time-out, sandbox), ``environ`` the environment runs see (PLUGCHAT_TOKEN among it);
    ``keep_days``: runs older than that are deleted."""
    app = web.Application(middlewares=[guard], client_max_size=1 << 20)
    store = RunStore(Path(data_dir))
    app[SERVER] = Server(store, key, dict(settings), dict(environ), keep_days)
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[TEMPLATES].globals.update(_=_, tiles=tiles)
    app.add_routes(routes)
    app.router.add_static("/static", HERE / "static")
    app.on_response_prepare.append(security_headers)
    app.on_startup.append(_forget_old_runs)
    app.on_shutdown.append(_stop_runs)
    return app


def make_data_dir(path: Path) -> Path:
    """The data directory, readable only by the server's user."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def reachable(host: str) -> list[str]:
    """The addresses another machine can open for ``host``: this machine's own for a wildcard
    (``0.0.0.0``, ``::``), the host itself otherwise."""
    if host not in ("0.0.0.0", "::", ""):
        return [host]
    import socket

    found = set()
    with contextlib.suppress(OSError):
        for *_ignored, sockaddr in socket.getaddrinfo(socket.gethostname(), None):
            found.add(sockaddr[0])
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet leaves: the route tells the outward address
        found.add(probe.getsockname()[0])
    outward = sorted(a for a in found if not ipaddress.ip_address(a).is_loopback)
    return outward or ["127.0.0.1"]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
    """Serve until Ctrl-C; ``announce`` gets each address to open, with the key, and ``warn``
    what a person must know of an address other machines reach. One server per data
    directory: a second would take the first's runs for crashed ones."""
    from filelock import FileLock, Timeout

    check_settings(settings, environ)
    key = secrets.token_urlsafe(24)
    folder = make_data_dir(data_dir)
    try:
        held = FileLock(str(folder / ".serve.lock"), timeout=0).acquire()
    except Timeout:
        raise ServeError(
            _("{folder}: another batch-attend serve uses this data directory").format(folder=folder)
        ) from None
    if not is_loopback(host):
        warn(
            f"batch-attend: {_('warning')}: "
            + _(
                "the page listens on {host}: other machines can reach it, and its key, the "
                "cookie and the leads' phone numbers cross the network unencrypted (plain "
                "HTTP). Use it only on a network you trust, or behind an HTTPS proxy."
            ).format(host=host)
        )

    def bound(port: int) -> None:
        for name in reachable(host):
            announce(f"{address(name, port)}/?key={key}")

    with held:
        serve_until_stopped(
            make_app(folder, key, settings, environ, keep_days),
            host,
            port,
            bound,
            ServeError,
            shutdown_timeout=2,
        )
