"""The web server of ``batch-attend serve`` and what keeps it safe: every route needs the printed
key (then a cookie), a POST a header no other site can send; the API token stays in this process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import html
import ipaddress
import secrets
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from filelock import FileLock, Timeout

from batch_attend import i18n
from batch_attend.api import check_base_url, check_token
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.sandbox import serve_until_stopped
from batch_attend.settings import RunOptions, resolve_token
from batch_attend.web.routes import LANG_COOKIE, SERVER, Server, routes
from batch_attend.web.runs import RunStore

#: The printed address's answer: a same-site move to the page, which the Strict cookie goes with.
MOVE_TO = (
    '<!DOCTYPE html><meta http-equiv="refresh" content="0;url={0}"><a href="{0}">batch-attend</a>'
)


class ServeError(BatchAttendError):
    """The server cannot start (a port taken, an address not this machine's)."""


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
    app[SERVER] = Server(RunStore(Path(data_dir)), key, dict(settings), dict(environ))
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
    """Serve until Ctrl-C; ``announce`` gets each address to open, with the key. One server per
    data directory: a second would take the first's runs for crashed ones."""
    requests = RunOptions.build(**settings).requests
    if not requests.sandbox:  # refused before listening: what no run could use
        check_base_url(requests.base_url)
        check_token(resolve_token(requests, environ))
    key = secrets.token_urlsafe(24)
    folder = Path(data_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        held = FileLock(str(folder / ".serve.lock"), timeout=0).acquire()
    except Timeout:
        raise ServeError(
            _("{folder}: another batch-attend serve uses this data directory").format(folder=folder)
        ) from None
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
        app = make_app(folder, key, settings, environ, keep_days)
        serve_until_stopped(app, host, port, bound, ServeError, shutdown_timeout=2)
