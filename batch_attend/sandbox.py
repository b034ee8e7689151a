"""A local stand-in for PlugChat over real HTTP on 127.0.0.1 (``--sandbox``, ``batch-attend
sandbox``, the tests): it answers as the vendor's page says, and misbehaves on purpose (latency,
nginx's rate limit, a revoked token, per-phone faults, the WhatsApp number down)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from aiohttp import web

from batch_attend import settings
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _

SANDBOX_TICKET = "0000"  # the vendor page's example value
API_PREFIX = "/api/integrations"
FIRST_ATTENDANCE_NUMBER = 1001
SANDBOX_ACCOUNT_ID = "sandbox-account"
NOT_CONNECTED = "You are not connected."  # the vendor's `error` text

# Seeded for samples/leads.xlsx (the last entry of each is for tests only): its two landlines have
# no WhatsApp; two mobiles are registered only in their other ninth-digit form (written → registered).
NO_WHATSAPP = frozenset({"554430251234", "556232124455", "5544999990666"})
ONLY_OTHER_FORM = {
    "554499887766": "5544999887766",
    "5521987654321": "552187654321",
    "554488880777": "5544988880777",
}
ONLINE_OPERATORS = frozenset({"OP-ANA", "OP-CARLA"})  # OP-BRUNO, also active, is offline

#: What the faults that answer give, without acting ("act-fail": after acting). "drop" closes the
#: connection unanswered ("act-drop": after acting); "slow" acts, then waits ``slow_seconds``.
FAULT_ANSWERS = {
    "fail": (500, "application/json", '{"error": "internal error"}'),
    "act-fail": (500, "application/json", '{"error": "internal error"}'),
    "html": (200, "text/html", "<!DOCTYPE html><html><body>Login</body></html>"),
    "badjson": (200, "application/json", '{"status": "progr'),
    "empty": (200, "application/json", ""),
    "bad-gateway": (502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
}

OPERATORS = [
    {"id": "OP-ANA", "name": "Ana Souza", "login": "ana.souza", "active": True,
     "createdAt": 1617805323000, "departaments": ["DEP-VENDAS"]},
    {"id": "OP-BRUNO", "name": "Bruno Lima", "login": "bruno.lima", "active": True,
     "createdAt": 1617805324000, "departaments": ["DEP-VENDAS", "DEP-SUPORTE"]},
    {"id": "OP-CARLA", "name": "Carla Nogueira", "login": "carla", "active": True,
     "createdAt": 1617805325000, "departaments": ["DEP-SUPORTE"],
     "exactsales": {"email": "carla@example.com.br"}},
    {"id": "OP-DIEGO", "name": "Diego Araújo", "login": "diego", "active": False,
     "createdAt": 1617805326000, "departaments": ["DEP-VENDAS"]},
]  # fmt: skip
DEPARTMENTS = [
    {"active": True, "id": "DEP-VENDAS", "name": "Vendas", "createdAt": 1617708992443},
    {"active": True, "id": "DEP-SUPORTE", "name": "Suporte", "createdAt": 1617708992444},
    {"active": False, "id": "DEP-ANTIGO", "name": "Pós-venda (antigo)", "createdAt": 1617708992445},
]


@dataclass
class Fault:
    """A misbehaviour for one phone; ``times`` None means on every request."""

    kind: str
    times: int | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``kind`` or ``kind:times``, e.g. ``fail:2`` or ``act-drop``."""
        kind, _sep, times = text.partition(":")
        if kind not in settings.SANDBOX_FAULTS:
            message = _("unknown fault '{kind}'; known: {known}")
            raise ValueError(message.format(kind=kind, known=", ".join(settings.SANDBOX_FAULTS)))
        return cls(kind, int(times) if times else None)


@dataclass
class SandboxState:
    """Everything the sandbox did, for assertions: how often each phone was started, and a log."""

    token: str = settings.SANDBOX_TOKEN
    ticket: str = SANDBOX_TICKET
    latency: float = 0.0
    jitter: float = 0.0
    rate_limit: float | None = None
    burst: int = 0
    limit_status: int = 503
    retry_after: str = settings.SANDBOX_RETRY_AFTER  # "seconds", "date" or "none"
    revoke_after: int | None = None
    slow_seconds: float = settings.SANDBOX_SLOW_SECONDS
    faults: dict[str, Fault] = field(default_factory=dict)
    operators: list[dict] = field(default_factory=lambda: [dict(op) for op in OPERATORS])
    departments: list[dict] = field(default_factory=lambda: [dict(d) for d in DEPARTMENTS])
    directory_requests: Counter = field(default_factory=Counter)
    connected: bool = True
    disconnect_after: int | None = None
    no_whatsapp: set[str] = field(default_factory=lambda: set(NO_WHATSAPP))
    only_other_form: dict[str, str] = field(default_factory=lambda: dict(ONLY_OTHER_FORM))
    account_id: str = SANDBOX_ACCOUNT_ID
    online: set[str] = field(default_factory=lambda: set(ONLINE_OPERATORS))
    online_changed_at: int = field(default_factory=lambda: int(time.time() * 1000))  # ms
    status_requests: int = 0
    phone_exists_requests: Counter = field(default_factory=Counter)
    online_requests: int = 0
    attendances: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    starts: Counter = field(default_factory=Counter)
    finished: Counter = field(default_factory=Counter)  # attendances ended, by phone
    requests: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    keep_log: bool = True
    log: list[dict] = field(default_factory=list)
    _bucket: tuple[float, float] = (0.0, -1e9)  # nginx's excess (in requests) and last time

    def total_starts(self) -> int:
        return sum(self.starts.values())

    def is_connected(self) -> bool:
        """The number drops for good once ``disconnect_after`` starts went through."""
        if self.disconnect_after is not None and self.total_starts() >= self.disconnect_after:
            self.connected = False
        return self.connected

    def whatsapp_status(self) -> dict:
        up = self.is_connected()
        error = "" if up else NOT_CONNECTED
        return {"connected": up, "session": up, "smartphoneConnected": up, "error": error}

    def _over_rate(self) -> bool:
        """nginx's ``limit_req``: the excess drains at the rate; a refused request counts not."""
        if not self.rate_limit:
            return False
        now = time.monotonic()
        excess, last = self._bucket
        excess = max(0.0, excess - self.rate_limit * (now - last) + 1.0)
        if excess > self.burst:
            return True
        self._bucket = (excess, now)
        return False


STATE = web.AppKey("state", SandboxState)


class SandboxError(BatchAttendError):
    """A sandbox setting that cannot be used (a fault spec, a port taken)."""


def parse_faults(specs) -> dict[str, Fault]:
    """``PHONE=KIND[:TIMES]`` specs (``--fault``), by phone."""
    faults = {}
    for spec in specs:
        phone, sep, kind = spec.partition("=")
        try:
            if not sep:
                raise ValueError(_("expected PHONE=KIND[:TIMES]"))
            faults[phone.strip()] = Fault.parse(kind.strip())
        except ValueError as exc:
            message = _("--fault {spec}: {problem}")
            raise SandboxError(message.format(spec=spec, problem=exc)) from exc
    return faults


def _refused(request: web.Request, state: SandboxState) -> web.Response | None:
    """401 without the token, or with it once ``revoke_after`` starts went through."""
    revoked = state.revoke_after is not None and state.total_starts() >= state.revoke_after
    if revoked or request.headers.get("Authorization") != state.token:
        return web.Response(status=401, text="Unauthorized")
    return None


def _act(state: SandboxState, phone: str, operators: list[str]) -> web.Response:
    """Start the attendance, or report the one in progress (the vendor's documented answers)."""
    if phone in state.attendances:
        number, current = state.attendances[phone]
        names = {op["id"]: op["name"] for op in state.operators}
        listed = [{"id": op, "name": names.get(op, f"Operador {op}")} for op in current]
        state.answers["progress"] += 1
        answer = {"status": "progress", "message": "chat is already in service"}
        return web.json_response({**answer, "attendanceNumber": number, "operators": listed})
    number = FIRST_ATTENDANCE_NUMBER + state.total_starts()  # a finished one's is not reused
    state.attendances[phone] = (number, list(operators))
    state.starts[phone] += 1
    state.answers["started"] += 1
    return web.json_response(True)


def _finish(state: SandboxState, phone: str, operators: list[str]) -> web.Response:
    """End the chat's attendance (the vendor's answer); none open: ``chatFounded`` false."""
    found = state.attendances.pop(phone, None) is not None
    state.finished[phone] += found
    state.answers["finished" if found else "not_found"] += 1
    message = "Ticket closed successfully" if found else "Ticket not found"
    return web.json_response({"success": True, "message": message, "chatFounded": found})


def _start_body(body: dict) -> tuple[str, list[str], str | None] | None:
    operators = body.get("operators")
    named = isinstance(operators, list) and all(isinstance(op, str) and op for op in operators)
    if not (named and operators and isinstance(body.get("departmentId", ""), str)):
        return None
    return body.get("phone"), operators, body.get("departmentId")


def _finish_body(body: dict) -> tuple[str, list[str], None] | None:
    operator = body.get("operatorId")
    if not isinstance(operator, str) or not operator or type(body.get("autoTransfer")) is not bool:
        return None
    return body.get("phone"), [operator], None


async def _post(read, act, request: web.Request) -> web.StreamResponse:
    """A POST of the API, held in ``in_flight`` until answered: ``read`` takes its JSON body apart
    (phone, operators, department; None: malformed), ``act(state, phone, operators)`` acts on it."""
    state: SandboxState = request.app[STATE]
    state.in_flight += 1
    state.max_in_flight = max(state.max_in_flight, state.in_flight)
    try:
        if state.latency or state.jitter:
            await asyncio.sleep(state.latency + random.uniform(0, state.jitter))
        if refused := _refused(request, state):
            state.answers["401"] += 1
            return refused
        if request.content_type != "application/json":
            state.answers["415"] += 1
            return web.Response(status=415, text="Unsupported Media Type")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        parts = read(body) if isinstance(body, dict) else None
        if parts is None or not isinstance(parts[0], str) or not parts[0].isdigit():
            state.answers["400"] += 1
            return web.json_response({"error": "a field is missing or malformed"}, status=400)
        phone, operators, department = parts
        state.requests[phone] += 1
        if state.keep_log:
            state.log.append(dict(body))  # the body exactly as received
        if state._over_rate():
            state.answers[str(state.limit_status)] += 1
            date = email.utils.formatdate(time.time() + 1, usegmt=True)
            after = {"seconds": "1", "date": date}.get(state.retry_after)  # "none": no header
            headers = {"Retry-After": after} if after else {}
            refusal = {"error": "too many requests"}
            return web.json_response(refusal, status=state.limit_status, headers=headers)
        ids = {op["id"] for op in state.operators}
        unknown = [op for op in operators if op not in ids]
        if department is not None and department not in {d["id"] for d in state.departments}:
            unknown.append(department)
        if unknown:  # the API's answer to an ID it does not have is undocumented: this is ours
            state.answers["400"] += 1
            return web.json_response({"error": f"not found: {unknown[0]}"}, status=400)
        if not state.is_connected():
            state.answers["503"] += 1  # no Retry-After: the client sees answers failing in a row
            return web.json_response({"error": NOT_CONNECTED}, status=503)
        fault = state.faults.get(phone)
        if fault is None or (fault.times is not None and fault.times <= 0):
            return act(state, phone, operators)
        if fault.times is not None:
            fault.times -= 1
        state.answers[f"fault:{fault.kind}"] += 1
        if fault.kind in ("act-drop", "act-fail", "slow"):
            acted = act(state, phone, operators)
        if fault.kind in ("drop", "act-drop"):
            request.transport.abort()
            return web.Response(status=500)
        if fault.kind == "slow":
            await asyncio.sleep(state.slow_seconds)
            return acted
        status, kind, text = FAULT_ANSWERS[fault.kind]
        return web.Response(status=status, text=text, content_type=kind)
    finally:
        state.in_flight -= 1


async def directory_list(kind: str, request: web.Request) -> web.Response:
    """The ``departments`` or the ``operators`` (which need the ticket)."""
    state: SandboxState = request.app[STATE]
    state.directory_requests[kind] += 1
    if refused := _refused(request, state):
        return refused
    if kind == "operators" and request.headers.get("Ticket") != state.ticket:
        return web.json_response({"error": "invalid ticket"}, status=500)  # as the vendor does
    return web.json_response(getattr(state, kind))


async def whatsapp_status(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    state.status_requests += 1
    return _refused(request, state) or web.json_response(state.whatsapp_status())


async def phone_exists(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    phone = request.match_info["phone"]
    state.phone_exists_requests[phone] += 1
    if refused := _refused(request, state):
        return refused
    if not phone.isdigit():
        return web.json_response({"error": "phone must be digits only"}, status=400)
    exists = phone not in state.no_whatsapp and phone not in state.only_other_form
    return web.json_response([{"exists": exists}])


async def operators_online(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    state.online_requests += 1
    if refused := _refused(request, state):
        return refused
    account = request.query.get("id")
    if account != state.account_id:
        error = "account not found" if account else "id is required"
        return web.json_response({"error": error}, status=400)
    data = [
        {"id": op["id"], "lastChanged": state.online_changed_at, "name": op["name"],
         "state": "online" if op["id"] in state.online else "offline"}
        for op in state.operators
        if op.get("active")
    ]  # fmt: skip
    return web.json_response({"data": data})


async def sandbox_state(request: web.Request) -> web.Response:
    state: SandboxState = request.app[STATE]
    counters = ("starts", "finished", "requests", "answers", "phone_exists_requests")
    return web.json_response(
        {
            **{name: dict(getattr(state, name)) for name in counters},
            "in_flight": state.in_flight,  # requests it holds now, their answer not yet given
            "attendances": {
                p: {"number": n, "operators": o} for p, (n, o) in state.attendances.items()
            },
            "whatsapp": state.whatsapp_status(),
            "no_whatsapp": sorted(state.no_whatsapp),
            "only_other_form": dict(state.only_other_form),
            "online": sorted(state.online),
            "account_id": state.account_id,
            "status_requests": state.status_requests,
            "online_requests": state.online_requests,
        }
    )


def make_app(state: SandboxState | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = state or SandboxState()
    app.router.add_post(f"{API_PREFIX}/start-attendance", partial(_post, _start_body, _act))
    app.router.add_post(f"{API_PREFIX}/finish-attendance", partial(_post, _finish_body, _finish))
    app.router.add_get(f"{API_PREFIX}/departments", partial(directory_list, "departments"))
    app.router.add_get("/api/operator/get-all", partial(directory_list, "operators"))
    app.router.add_get("/api/whatsapp/status", whatsapp_status)
    app.router.add_get("/api/whatsapp/phone-exists/{phone}", phone_exists)
    app.router.add_get("/api/account/get-operators-online", operators_online)
    app.router.add_get("/_sandbox/state", sandbox_state)
    return app


class BackgroundServer:
    """An aiohttp app served on a free port of 127.0.0.1 from a background thread (the sandbox of
    a run, the tests' servers): ``with BackgroundServer(app) as server: server.origin``."""

    def __init__(self, app: web.Application):
        self.app = app

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        bound = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._main(bound),), name="batch-attend-server", daemon=True
        )
        self._thread.start()
        self.port = bound.result(10)  # or the error that kept it from listening
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self, bound: concurrent.futures.Future) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await _serve(self.app, "127.0.0.1", 0, bound.set_result, self._stop.wait)
        except BaseException as exc:
            if bound.done():
                raise
            bound.set_exception(exc)


class SandboxServer(BackgroundServer):
    """The sandbox in a background thread; tests set faults and read what was started in ``state``."""

    def __init__(self, state: SandboxState | None = None):
        self.state = state or SandboxState()
        super().__init__(make_app(self.state))

    @property
    def base_url(self) -> str:
        return self.origin + API_PREFIX


async def _serve(app, host: str, port: int, on_bound, until, shutdown_timeout=0.5) -> None:
    """Serve ``app`` until ``until()`` returns; ``on_bound`` gets the port taken (0: any free one)."""
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=1024).start()
        on_bound(runner.addresses[0][1])
        await until()
    finally:
        await runner.cleanup()


def serve(state: SandboxState, host: str, port: int, announce) -> None:
    """Serve the sandbox until Ctrl-C (``batch-attend sandbox``); ``announce`` gets the URL."""

    def bound(taken: int) -> None:
        announce(f"http://{host}:{taken}{API_PREFIX}")

    serve_until_stopped(make_app(state), host, port, bound, SandboxError)


def serve_until_stopped(
    app: web.Application, host: str, port: int, on_bound, failure, shutdown_timeout: float = 0.5
) -> None:
    """Serve ``app`` until Ctrl-C; a port that cannot be had raises ``failure``, saying why."""
    try:
        asyncio.run(_serve(app, host, port, on_bound, asyncio.Event().wait, shutdown_timeout))
    except OSError as exc:
        message = _("cannot listen on {host}:{port} ({reason})")
        raise failure(message.format(host=host, port=port, reason=exc.strerror or exc)) from exc
