"""httpx against aiohttp as the client of a 50 ms API: why batch-attend sends with aiohttp.

For each concurrency c in 8, 32 and 64, in the same run and against the same
``server.py --latency 0.05`` on 127.0.0.1, two bare loops post the same JSON bodies
(JSON-encoded per request, as the tool does), c workers sharing one connection pool, under uvloop:

* aiohttp: ``_common.bare_send`` (``aiohttp.ClientSession`` over ``TCPConnector(limit=c)``), the
  baseline the other scripts use;
* httpx: the same loop on ``httpx.AsyncClient`` (HTTP/1.1, ``Limits(max_connections=c)``).

Each is reported as rows/s, as a fraction of the ideal c / 0.05 s, and as client CPU milliseconds
per request (process CPU time / rows). N = c / 0.05 × --seconds rows (default 8 s); every figure
is the median of --repeat runs (default 3), the two clients taking turns going first.

httpx is not a dependency of batch-attend, nor of its bench extra: install it beside them first
(``pip install httpx``); without it the script says so and exits with status 2.

    python benchmarks/http_clients.py            # about 6 minutes (httpx at c=64 is slow)
    python benchmarks/http_clients.py --quick    # 1 run of about 3 s each: about 1 minute
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    InProcess,
    add_repeat_option,
    bench_server,
    fmt,
    measure_bare,
    measure_loop,
    median,
    phone_start,
    print_machine,
    print_table,
    repeats,
    request_bodies,
    take_turns,
)

LATENCY = 0.05
CONCURRENCIES = (8, 32, 64)


def httpx_send(url: str, bodies: Sequence[dict], concurrency: int, token: str = "bench") -> int:
    """The shape of ``_common.bare_send`` on ``httpx.AsyncClient``: ``concurrency`` workers over
    one pool, under uvloop. Returns how many requests got ``true``."""
    import httpx
    import uvloop

    async def main() -> int:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": token, "Content-Type": "application/json"}
        ok = 0
        async with httpx.AsyncClient(
            limits=limits, headers=headers, timeout=30.0, trust_env=False
        ) as client:
            pending = iter(bodies)

            async def worker() -> None:
                nonlocal ok
                for body in pending:
                    data = json.dumps(body, ensure_ascii=False).encode()
                    resp = await client.post(url, content=data)
                    if resp.status_code == 200 and resp.content == b"true":
                        ok += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok

    return uvloop.run(main())


def measure_httpx(url: str, bodies: Sequence[dict], concurrency: int) -> InProcess:
    """:func:`measure_loop` of :func:`httpx_send`."""
    return measure_loop(httpx_send, url, bodies, concurrency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rows per second and client CPU per request of a bare httpx.AsyncClient loop "
        "and a bare aiohttp loop at concurrency 8, 32, 64 against a 50 ms server on 127.0.0.1."
    )
    add_repeat_option(parser, 3)
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="target length of each measurement: N = c / latency × seconds rows "
        "(default 8; --quick: 3)",
    )
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s per measurement")
    args = parser.parse_args(argv)
    args.repeat = repeats(args, 3)
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else 8.0
    if args.repeat < 1 or args.seconds <= 0:
        parser.error("--repeat and --seconds must be positive")
    try:
        import httpx  # noqa: F401
    except ImportError:
        print(
            "http_clients.py needs httpx, which is not installed in this environment "
            f"({sys.executable}).\nInstall it beside the bench extra, then run this again:\n"
            f"    {sys.executable} -m pip install httpx",
            file=sys.stderr,
        )
        return 2

    print_machine("httpx against aiohttp, bare loops (server latency 50 ms)", ("httpx", "httpcore"))
    run_id = 0
    aio: dict[int, list[InProcess]] = {c: [] for c in CONCURRENCIES}
    hx: dict[int, list[InProcess]] = {c: [] for c in CONCURRENCIES}
    with bench_server(LATENCY) as base_url:
        url = base_url + "/start-attendance"
        print(f"server: {base_url} (--latency {LATENCY})", flush=True)
        # One untimed warm-up of each (imports, first connections).
        for measure in (measure_httpx, measure_bare):
            run_id += 1
            measure(url, request_bodies(100, phone_start(run_id)), 8)
        for rep in range(args.repeat):
            for c in CONCURRENCIES:
                rows = max(c, int(c / LATENCY * args.seconds))
                run_id += 1
                httpx_bodies = request_bodies(rows, phone_start(run_id))
                run_id += 1
                aiohttp_bodies = request_bodies(rows, phone_start(run_id))
                h, a = take_turns(
                    rep,
                    functools.partial(measure_httpx, url, httpx_bodies, c),
                    functools.partial(measure_bare, url, aiohttp_bodies, c),
                )
                hx[c].append(h)
                aio[c].append(a)
                print(
                    f"  run {rep + 1}/{args.repeat} c={c:<2} N={rows:<6} "
                    f"httpx {h.rate:7.1f} rows/s {h.cpu_ms_per_row:.3f} ms CPU/req | "
                    f"aiohttp {a.rate:7.1f} rows/s {a.cpu_ms_per_row:.3f} ms CPU/req",
                    flush=True,
                )
    print()

    table = []
    for c in CONCURRENCIES:
        ideal = c / LATENCY
        for name, runs in (("httpx", hx[c]), ("aiohttp", aio[c])):
            rate = median([r.rate for r in runs])
            table.append(
                [
                    c,
                    name,
                    fmt(rate),
                    f"{rate / ideal:.1%}",
                    fmt(median([r.cpu_ms_per_row for r in runs]), 3),
                ]
            )
    print(
        f"Medians of {args.repeat} run(s); ideal = concurrency / {LATENCY} s; "
        f"N = concurrency / {LATENCY} s × {args.seconds:g} s rows (that long at the ideal rate), "
        "after one untimed warm-up of each."
    )
    print_table(["concurrency", "client", "rows/s", "% of ideal", "CPU ms/req"], table)
    cpu_ratios = []
    for c in CONCURRENCIES:
        httpx_cpu = median([r.cpu_ms_per_row for r in hx[c]])
        aiohttp_cpu = median([r.cpu_ms_per_row for r in aio[c]])
        cpu_ratios.append([c, f"{httpx_cpu / aiohttp_cpu:.2f}x"])
    print_table(["concurrency", "httpx CPU / aiohttp CPU per request"], cpu_ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
