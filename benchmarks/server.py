"""A minimal, fast stand-in of PlugChat's start-attendance endpoint, for benchmarks only.

A raw ASGI app served by uvicorn (uvloop + httptools, no access log) on 127.0.0.1, on a free port.
``POST /api/integrations/start-attendance`` reads and discards the body, waits ``--latency``
seconds and answers ``true`` (application/json). Any Authorization is accepted; nothing is kept.

Unlike the project's aiohttp sandbox (``batch_attend/sandbox.py``), which checks tokens and
remembers every start, this server spends so little CPU per request that it is not part of the
bottleneck at concurrency 64 (``throughput.py`` measures its capacity in the same run).
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
LISTS = {
    API_PREFIX + "/departments": json.dumps(DEPARTMENTS).encode(),
    "/api/operator/get-all": json.dumps(OPERATORS).encode(),
}

_TRUE_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"4")]
_EMPTY_HEADERS = [(b"content-length", b"0")]


def make_app(latency: float):
    """The ASGI app: ``true`` after ``latency`` seconds for the start endpoint, the fixed lists
    for their GETs, 404/405 for anything else."""

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        more_body = True
        while more_body:  # read and discard the request body
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more_body = message.get("more_body", False)
        path, method = scope["path"], scope["method"]
        if path in LISTS and method == "GET":
            body = LISTS[path]
            status = 200
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
        elif path != START_PATH:
            status, headers, body = 404, _EMPTY_HEADERS, b""
        elif method != "POST":
            status, headers, body = 405, _EMPTY_HEADERS, b""
        else:
            if latency:
                await asyncio.sleep(latency)
            status, headers, body = 200, _TRUE_HEADERS, b"true"
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


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

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections made before uvicorn starts wait in the backlog
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(args.latency),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level="warning",
        backlog=2048,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    print(f"listening on http://127.0.0.1:{port}{API_PREFIX}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
