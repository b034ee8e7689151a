"""A loopback server whose answers a test scripts: any status, headers, body, or misbehaviour."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from batch_attend.sandbox import BackgroundServer
from batch_attend.whatsapp import STATUS_PATH

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CONNECTED = '{"connected": true, "session": true, "smartphoneConnected": true, "error": ""}'


class ScriptedServer(BackgroundServer):
    """``server.handler`` answers every request to any path; ``server.requests`` records them.

    The WhatsApp status a run asks first is answered apart (connected, unless a test sets
    ``server.status``), and counted in ``server.status_requests``, not in ``requests``."""

    def __init__(self) -> None:
        self.handler: Handler = reply(200, "true")
        self.status: Handler = reply(200, CONNECTED, "application/json")
        self.requests: list[dict] = []
        self.status_requests = 0
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        super().__init__(app)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path == STATUS_PATH:
            self.status_requests += 1
            return await self.status(request)
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        return await self.handler(request)


def reply(
    status: int, body: str | bytes = b"", content_type: str | None = None, headers=None
) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        response = web.Response(status=status, body=data, headers=headers)
        if content_type:
            response.content_type = content_type
        return response

    return handler


def abort_before_answer() -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        request.transport.abort()
        return web.Response(status=500)

    return handler


def truncated_body() -> Handler:
    """Promise 100 bytes, send 4, hang up: the client sees a broken payload."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"tru")
        request.transport.abort()
        return response

    return handler


def sleep_then(seconds: float, inner: Handler) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await inner(request)

    return handler
