"""The benchmark server (benchmarks/server.py): the figures in the README are only as good as it.

It must answer like the endpoint (``true`` for a POST, the fixed lists, 404/405), never before its
latency, keep connections alive as aiohttp expects, and stop at once on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.conftest import REPO

SERVER = REPO / "benchmarks" / "server.py"
LATENCY = 0.05


@pytest.fixture
def bench_url():
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--latency", str(LATENCY)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on http://127.0.0.1:"), proc.stderr.read().decode()
        yield line.removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        try:
            code = proc.wait(5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    assert code == 0, "the server must stop cleanly on SIGTERM"


def test_starts_answer_true_after_the_latency_over_kept_alive_connections(bench_url):
    async def scenario():
        created = []
        trace = aiohttp.TraceConfig()

        async def on_created(session, context, params):
            created.append(params)

        trace.on_connection_create_end.append(on_created)
        connector = aiohttp.TCPConnector(limit=4)
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:

            async def start(i: int):
                began = time.perf_counter()
                async with session.post(
                    bench_url + "/start-attendance",
                    json={"phone": f"55449912345{i:02d}", "operators": ["OP-ANA"]},
                    headers={"Authorization": "any"},
                ) as resp:
                    body = await resp.read()
                    return resp.status, resp.content_type, body, time.perf_counter() - began

            answers = await asyncio.gather(*(start(i) for i in range(12)))
            return answers, len(created)

    answers, connections = asyncio.run(scenario())
    for status, content_type, body, seconds in answers:
        assert (status, content_type, body) == (200, "application/json", b"true")
        assert seconds >= LATENCY * 0.99  # never early (timers may round a hair down)
    # 12 requests over at most 4 connections: each connection was kept alive and reused.
    assert 1 <= connections <= 4


def test_lists_not_found_and_wrong_method(bench_url):
    root = bench_url.removesuffix("/api/integrations")  # the operators list lives outside it

    async def scenario():
        async with aiohttp.ClientSession() as session:
            results = {}
            for name, method, url in [
                ("departments", "GET", bench_url + "/departments"),
                ("operators", "GET", root + "/api/operator/get-all"),
                ("unknown", "POST", bench_url + "/nowhere"),
                ("get start", "GET", bench_url + "/start-attendance"),
            ]:
                async with session.request(method, url) as resp:
                    results[name] = (resp.status, await resp.read())
            return results

    results = asyncio.run(scenario())
    status, body = results["departments"]
    assert status == 200 and {d["id"] for d in json.loads(body)} == {"DEP-VENDAS", "DEP-SUPORTE"}
    status, body = results["operators"]
    assert status == 200 and "OP-ANA" in {o["id"] for o in json.loads(body)}
    assert results["unknown"][0] == 404
    assert results["get start"][0] == 405


def test_connection_close_is_honoured(bench_url):
    async def scenario():
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = []
            for _ in range(3):
                async with session.post(bench_url + "/start-attendance", data=b"{}") as resp:
                    statuses.append((resp.status, await resp.read()))
            return statuses

    assert asyncio.run(scenario()) == [(200, b"true")] * 3
