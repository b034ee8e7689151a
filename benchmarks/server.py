"""A minimal, fast stand-in of PlugChat's start-attendance endpoint, for benchmarks only.

An asyncio protocol on uvloop, with httptools parsing the requests, on 127.0.0.1 (a free port).
``POST /api/integrations/start-attendance`` discards the body and answers ``true``
(application/json) ``--latency`` seconds after the request arrived: one timer and one write per
request, no task, no coroutine, no framework. Any Authorization is accepted; nothing is kept.

The server stands for a remote API, whose own work costs the client nothing; here it shares the
client's two cores, so every microsecond it spends per request is latency (and CPU) charged to
the client under test. It therefore does as little as it can: about 0.06 ms of CPU per request at
concurrency 64, against 0.1 ms for the same app on uvicorn and several times that for the
project's aiohttp sandbox (``batch_attend/sandbox.py``), which checks tokens and remembers every
start. ``throughput.py`` measures its capacity in the same run.
``GET /api/integrations/departments`` and ``GET /api/operator/get-all`` answer fixed lists at once,
for runs that look department and operator names up before sending.

    python benchmarks/server.py --latency 0.05

prints ``listening on http://127.0.0.1:PORT/api/integrations`` once the socket listens, then
serves until SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys

API_PREFIX = "/api/integrations"
START_PATH = API_PREFIX + "/start-attendance"

#: The account's lists, served (without latency) for runs that look names up before sending.
DEPARTMENTS = [
    {"active": True, "id": "DEP-VENDAS", "name": "Vendas"},
    {"active": True, "id": "DEP-SUPORTE", "name": "Suporte"},
]
OPERATORS = [
    {"id": "OP-ANA", "name": "Ana Souza", "login": "ana.souza", "active": True},
    {"id": "OP-BRUNO", "name": "Bruno Lima", "login": "bruno.lima", "active": True},
    {"id": "OP-CARLA", "name": "Carla Nogueira", "login": "carla", "active": True},
]
CONNECTED = {"connected": True, "session": True, "smartphoneConnected": True, "error": ""}
LISTS = {
    API_PREFIX + "/departments": json.dumps(DEPARTMENTS).encode(),
    "/api/operator/get-all": json.dumps(OPERATORS).encode(),
    "/api/whatsapp/status": json.dumps(CONNECTED).encode(),
}


def _response(status: int, reason: str, body: bytes = b"", json_body: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n"
    if json_body:
        head += "content-type: application/json\r\n"
    return head.encode() + b"\r\n" + body


TRUE = _response(200, "OK", b"true", json_body=True)
NOT_FOUND = _response(404, "Not Found")
NOT_ALLOWED = _response(405, "Method Not Allowed")
BAD_REQUEST = _response(400, "Bad Request")
LIST_RESPONSES = {path: _response(200, "OK", body, json_body=True) for path, body in LISTS.items()}


class StartAttendanceProtocol(asyncio.Protocol):
    """One client connection: parse each request with httptools, answer from a timer.

    No task, coroutine or ASGI message per request: a parse, one ``call_later`` and one write.
    aiohttp sends a request only after the previous answer (no pipelining) and every start
    waits the same latency, so answers leave in the order the requests came.
    """

    def __init__(self, latency: float) -> None:
        import httptools

        self.latency = latency
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.parser_error = httptools.HttpParserError
        self.transport: asyncio.Transport | None = None
        self.url = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except self.parser_error:
            self._answer(BAD_REQUEST, keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path = self.url.partition(b"?")[0].decode("latin-1")
        method = self.parser.get_method()
        keep_alive = self.parser.should_keep_alive()
        if path in LIST_RESPONSES and method == b"GET":
            self._answer(LIST_RESPONSES[path], keep_alive)
        elif path != START_PATH:
            self._answer(NOT_FOUND, keep_alive)
        elif method != b"POST":
            self._answer(NOT_ALLOWED, keep_alive)
        elif self.latency:
            self.loop.call_later(self.latency, self._answer, TRUE, keep_alive)
        else:
            self._answer(TRUE, keep_alive)

    def _answer(self, response: bytes, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # the client went away while this answer waited
        transport.write(response)
        if not keep_alive:
            transport.close()


async def serve(latency: float, sock: socket.socket) -> None:
    """Serve on ``sock`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StartAttendanceProtocol(latency), sock=sock, backlog=2048
    )
    stopped = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stopped.done() or stopped.set_result(None))
    async with server:
        await stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve a minimal start-attendance endpoint on 127.0.0.1 (a free port) "
        "for benchmarks: every POST is answered `true` after --latency seconds."
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.05,
        help="seconds to wait before answering each request (0: answer at once); default 0.05",
    )
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must be 0 or more")

    import uvloop

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections made before the loop starts wait in the backlog
    port = sock.getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}{API_PREFIX}", flush=True)
    try:
        uvloop.run(serve(args.latency, sock))
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
