"""Runs of the real command line, with no ``--rate``, behind the rate limiters found in front of
APIs: nginx's ``limit_req`` first, and a sliding window.

* **nginx** (``/usr/sbin/nginx``, started by the script in a folder of its own, a free port on
  127.0.0.1, stopped after each case; see ``tests/nginx.py``) with ``limit_req`` at N requests a
  second on every path, in front of ``server.py --latency 0.05``: a request closer than 1/N s to
  the last one let through is refused at once, with nginx's default 503 (no ``Retry-After``) or
  with ``limit_req_status 429``, and in the ``burst`` variants ``burst=B nodelay`` lets B more
  through at once. N = 50 (B = 10) at ``-c 32`` and at the default ``-c 8``; N = 200 (B = 20)
  at ``-c 32`` (8 in flight at 50 ms cannot reach 200/s).
* **a sliding window** (an aiohttp server in a thread of this process): a request is accepted
  when fewer than N were accepted in the last second, and answered ``true`` 50 ms later; else
  429 at once, with ``Retry-After: 1`` or without. N = 20 at ``-c 8``, N = 200 at ``-c 32``.

The client is the real command line:

    PLUGCHAT_TOKEN=bench-token python -m batch_attend leads.csv -o results.csv \\
        --base-url URL -c C --quiet --summary-json summary.json

on N × 15 rows (``--quick``: N × 6) of ``Telefone,Operadores`` (distinct mobiles, ``OP-ANA``),
killed after 4 × its expected length (+ 20 s). For each case it prints, from what the limiter
saw (nginx's access log, or the window server's own log):

* **settled**: the starts accepted from 2 s after the first request on, per second, as % of N
  (over the whole seconds from there to the last one);
* **whole run**: every start accepted, from the first request to the last answer, as % of N;
* **refused**: the start requests refused (429 or 503), of all start requests;
* **failed** rows and the exit code (0: every row started), from ``--summary-json``;
* per run, the starts accepted / refused in each second.

The figures the project commits to, for every case: settled at least 90% of N, at most 5% of the
requests refused, no row failed (exit 0). Medians of --repeat runs (default 3; --quick: 1).

    python benchmarks/rate_limit.py            # 3 runs of about 15 s per case: about 15 minutes
    python benchmarks/rate_limit.py --quick    # 1 run of about 6 s per case: about 3 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import (
    REPO,
    Figure,
    add_figures_option,
    add_repeat_option,
    bench_server,
    median,
    print_figures,
    print_machine,
    print_table,
    remove_outputs,
    repeats,
    save_figures,
    stop_process,
)

from tests.nginx import Nginx
from tests.nginx import available as nginx_available

LATENCY = 0.05
SETTLE = 2.0  # seconds from the first request before the settled figure counts
ROWS_PER_N = 15  # rows = 15 × N: about 15 s at N/s
QUICK_ROWS_PER_N = 6
TIMEOUT_FACTOR = 4.0  # a run is killed after 4 × rows / N seconds (+ START_SLACK)
START_SLACK = 20.0
SETTLED_TARGET = 0.90  # settled throughput over N, at least
REJECTED_TARGET = 0.05  # share of requests refused, at most
CHECK_SHARE = 0.90  # the server check paces a bare loop at 90% of N
TOKEN = "bench-token"
OPERATOR = "OP-ANA"


@dataclass(frozen=True)
class Case:
    """A limiter at ``rate`` a second and the client's concurrency."""

    limiter: str  # "nginx" or "window"
    rate: int
    concurrency: int
    status: int = 503  # nginx: what a refusal answers
    burst: int = 0  # nginx: burst=B nodelay
    retry_after: str | None = None  # window: the Retry-After of a 429

    @property
    def name(self) -> str:
        if self.limiter == "nginx":
            burst = f", burst={self.burst} nodelay" if self.burst else ""
            return f"nginx {self.rate}r/s {self.status}{burst}"
        header = f"Retry-After: {self.retry_after}" if self.retry_after else "no Retry-After"
        return f"window {self.rate}/s 429, {header}"


CASES = [
    *(
        Case("nginx", rate, c, status, burst)
        for rate, c, bursts in ((50, 32, 10), (50, 8, 10), (200, 32, 20))
        for burst in (0, bursts)
        for status in (503, 429)
    ),
    *(
        Case("window", rate, c, 429, retry_after=ra)
        for rate, c in ((20, 8), (200, 32))
        for ra in ("1", None)
    ),
]


# --- the server ----------------------------------------------------------------------------


@dataclass
class ServerLog:
    """What the limiter saw, in seconds (of one clock)."""

    accepted: list[float] = field(default_factory=list)  # requests let through
    answered: list[float] = field(default_factory=list)  # 200s sent (accepted + 50 ms)
    rejected: list[float] = field(default_factory=list)  # refusals sent
    unauthorized: int = 0  # start requests without an Authorization header
    other: int = 0  # anything but POST start-attendance (lookups, 404s)

    @property
    def requests(self) -> list[float]:
        """The arrival time of every start request that had a token."""
        return sorted(self.accepted + self.rejected)


class RateLimitedServer:
    """An aiohttp server in a thread of its own: ``with RateLimitedServer(20, "1") as server:``
    gives ``server.base_url`` and ``server.log``; stopped when the block ends."""

    def __init__(self, limit: int, retry_after: str | None, latency: float = LATENCY) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.latency = latency
        self.log = ServerLog()
        self.base_url = ""
        self._window: deque[float] = deque()  # accepted in the last second
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="rate-limited-server", daemon=True)

    def __enter__(self) -> RateLimitedServer:
        self._thread.start()
        if not self._ready.wait(20.0) or self._error is not None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"rate-limited server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10.0)

    def _run(self) -> None:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            factory = None
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(self._serve())
        except BaseException as exc:  # reported by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/start-attendance", self._start)
        app.router.add_get("/departments", self._departments)
        app.router.add_get("/api/operator/get-all", self._operators)
        app.router.add_get("/api/whatsapp/status", self._status)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.base_url = f"http://{host}:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _start(self, request):
        from aiohttp import web

        await request.read()
        if not request.headers.get("Authorization"):
            self.log.unauthorized += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        now = time.monotonic()  # no await from here to the window's append: times stay in order
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= self.limit:
            self.log.rejected.append(now)
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else None
            return web.json_response({"error": "too many requests"}, status=429, headers=headers)
        window.append(now)
        self.log.accepted.append(now)
        await asyncio.sleep(self.latency - (time.monotonic() - now))
        self.log.answered.append(time.monotonic())
        return web.Response(body=b"true", content_type="application/json")

    async def _status(self, request):
        from aiohttp import web

        self.log.other += 1
        return web.json_response(
            {"connected": True, "session": True, "smartphoneConnected": True, "error": ""}
        )

    async def _departments(self, request):
        from aiohttp import web

        self.log.other += 1
        return web.json_response([{"active": True, "id": "DEP-VENDAS", "name": "Vendas"}])

    async def _operators(self, request):
        from aiohttp import web

        self.log.other += 1
        return web.json_response([{"id": OPERATOR, "name": "Ana Souza", "active": True}])


# --- what the server saw -------------------------------------------------------------------


class Figures(NamedTuple):
    settled: float  # 200s per second after SETTLE, over N
    whole: float  # 200s per second over the whole run, over N
    rejected: int  # 429s
    requests: int  # start requests (200s and 429s)
    settled_rejected: int  # 429s after SETTLE
    settled_requests: int

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.requests if self.requests else 0.0


def figures_of(log: ServerLog, limit: int) -> Figures:
    arrivals = log.requests
    answered = sorted(log.answered)
    if not arrivals or not answered:
        return Figures(0.0, 0.0, len(log.rejected), len(arrivals), 0, 0)
    first, last = arrivals[0], answered[-1]
    whole = len(answered) / max(last - first, 1e-9) / limit
    start = first + SETTLE
    seconds = math.floor(last - start)  # whole seconds, so bursts a second apart count right
    if seconds >= 1:
        end = start + seconds
        settled_ok = bisect.bisect_left(answered, end) - bisect.bisect_left(answered, start)
        settled = settled_ok / seconds / limit
    else:
        end, settled = last, 0.0  # the run ended before the settle period did
    rejected = sorted(log.rejected)
    settled_rejected = bisect.bisect_left(rejected, end) - bisect.bisect_left(rejected, start)
    settled_requests = bisect.bisect_left(arrivals, end) - bisect.bisect_left(arrivals, start)
    return Figures(settled, whole, len(rejected), len(arrivals), settled_rejected, settled_requests)


def per_second(log: ServerLog) -> list[tuple[int, int]]:
    """(200s sent, 429s sent) in each second from the first request."""
    arrivals = log.requests
    if not arrivals:
        return []
    first = arrivals[0]
    last = max([*log.answered, *log.rejected])
    bins = [[0, 0] for _ in range(int(last - first) + 1)]
    for t in log.answered:
        bins[int(t - first)][0] += 1
    for t in log.rejected:
        bins[int(t - first)][1] += 1
    return [(ok, no) for ok, no in bins]


def print_per_second(bins: list[tuple[int, int]], per_line: int = 10) -> None:
    print("    per second from the first request (starts accepted / refused):")
    for i in range(0, len(bins), per_line):
        cells = "  ".join(f"{ok:>3}/{no:<4}" for ok, no in bins[i : i + per_line])
        print(f"    {i:>4} s: {cells}".rstrip())


# --- the client ----------------------------------------------------------------------------


def write_rate_leads(path: Path, rows: int, run: int) -> Path:
    """``Telefone,Operadores``: ``rows`` distinct mobiles (55 44 9xxxx-xxxx), ``OP-ANA`` each;
    every run its own range of phones."""
    base = run * 100_000
    if base + rows > 10**8:
        raise ValueError("too many rows for the phone range")
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("Telefone,Operadores\n")
        f.writelines(f"55449{base + i:08d},{OPERATOR}\n" for i in range(rows))
    return path


class ClientRun(NamedTuple):
    returncode: int  # -9 (or -15) when it was stopped at the time-out
    timed_out: bool
    wall: float
    summary: dict  # what --summary-json wrote ({} when nothing)
    stderr: str  # the last lines


def run_client(
    folder: Path, base_url: str, concurrency: int, rows: int, run: int, timeout: float
) -> ClientRun:
    """``python -m batch_attend`` on ``rows`` leads (phones of run ``run``) in ``folder``,
    stopped after ``timeout`` seconds; the leads, results, journal and summary deleted after."""
    leads = folder / "leads.csv"
    output = folder / "results.csv"
    summary_path = folder / "summary.json"
    write_rate_leads(leads, rows, run)
    env = dict(os.environ)
    for name in ("PLUGCHAT_TICKET", "PLUGCHAT_BASE_URL", "PLUGCHAT_TOKEN"):
        env.pop(name, None)
    env["PLUGCHAT_TOKEN"] = TOKEN  # not on the command line, as the help advises
    cmd = [
        sys.executable,
        "-m",
        "batch_attend",
        leads.name,
        "-o",
        output.name,
        "--base-url",
        base_url,
        "-c",
        str(concurrency),
        "--quiet",
        "--summary-json",
        summary_path.name,
    ]
    timed_out = False
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=folder,
            env=env,
        )
        try:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            stop_process(proc)
        wall = time.perf_counter() - started
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    try:
        summary = json.loads(summary_path.read_text("utf-8"))
    except (OSError, ValueError):
        summary = {}
    remove_outputs(output, leads)
    for path in (leads, summary_path):
        path.unlink(missing_ok=True)
    return ClientRun(proc.returncode, timed_out, wall, summary, tail)


def server_check(limit: int, concurrency: int, seconds: float) -> tuple[Figures, int]:
    """A bare aiohttp loop paced evenly at CHECK_SHARE × ``limit`` against a fresh server: what
    the server counts, and how many answers were not 200."""
    import aiohttp

    rate = CHECK_SHARE * limit
    total = max(1, int(rate * seconds))
    with RateLimitedServer(limit, "1") as server:
        url = server.base_url + "/start-attendance"

        async def main() -> int:
            connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
            bad = 0
            async with aiohttp.ClientSession(
                connector=connector, headers={"Authorization": TOKEN}
            ) as session:
                loop = asyncio.get_running_loop()
                t0 = loop.time()

                async def one(i: int) -> None:
                    nonlocal bad
                    await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
                    body = {"phone": f"55449{i:08d}", "operators": [OPERATOR]}
                    async with session.post(url, json=body) as resp:
                        await resp.read()
                        bad += resp.status != 200

                await asyncio.wait_for(
                    asyncio.gather(*(one(i) for i in range(total))), seconds * 4 + 10
                )
            return bad

        bad = asyncio.run(main())
        return figures_of(server.log, limit), bad


def client_code() -> str:
    """Where the client's ``batch_attend`` comes from (``PYTHONPATH`` wins over the editable
    install), and the repository's commit and uncommitted changes when it is this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGCHAT_")}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-rate-limit-") as tmp:
            found = subprocess.run(
                [sys.executable, "-c", "import batch_attend; print(batch_attend.__file__)"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp,
                env=env,
            )
        package = Path(found.stdout.strip()).parent
        if found.returncode or not found.stdout.strip():
            return f"batch_attend not importable: {found.stderr.strip()[-300:]}"
        if package.parent != REPO:
            return str(package)
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "batch_attend"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    dirty = f" + uncommitted changes to {len(changed)} file(s)" if changed else ""
    return f"{package} (commit {head or '?'}{dirty})"


def nginx_log(proxy) -> ServerLog:
    """What nginx's access log says of the starts (a 200 is logged as it is answered, 50 ms
    after it came; a refusal at once)."""
    log = ServerLog()
    for entry in proxy.log():
        if not entry.path.endswith("/start-attendance"):
            log.other += 1
        elif entry.status == 200:
            log.answered.append(entry.at)
            log.accepted.append(entry.at - LATENCY)
        else:
            log.rejected.append(entry.at)
    return log


def run_case(case: Case, folder: Path, rows: int, run: int, timeout: float):
    """The limiter of ``case`` started, the client run behind it, the limiter stopped: what
    the limiter saw, and the client's run."""
    if case.limiter == "window":
        with RateLimitedServer(case.rate, case.retry_after) as server:
            client = run_client(folder, server.base_url, case.concurrency, rows, run, timeout)
        return server.log, client
    with bench_server(LATENCY) as base_url:
        upstream = base_url.split("/")[2]
        with Nginx(upstream, case.rate, burst=case.burst, status=case.status) as proxy:
            url = proxy.origin + "/api/integrations"
            client = run_client(folder, url, case.concurrency, rows, run, timeout)
            return nginx_log(proxy), client


# --- the script ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A batch-attend run with no --rate behind nginx's limit_req (50 and 200 "
        "requests/s, 503 and 429, with and without burst) and behind a sliding window (20 and "
        "200/s, 429 with and without Retry-After): settled % of the rate allowed, share refused, "
        "failed rows."
    )
    add_repeat_option(parser, 3)
    parser.add_argument(
        "--rows-per-n",
        type=float,
        default=None,
        help=f"rows = this × N, about as many seconds per run (default {ROWS_PER_N}; "
        f"--quick: {QUICK_ROWS_PER_N})",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"1 run of {QUICK_ROWS_PER_N} × N rows per case"
    )
    parser.add_argument(
        "--only", default="", help="run only the cases whose name holds this (e.g. nginx)"
    )
    add_figures_option(parser)
    args = parser.parse_args(argv)
    args.repeat = repeats(args, 3)
    if args.rows_per_n is None:
        args.rows_per_n = QUICK_ROWS_PER_N if args.quick else ROWS_PER_N
    if args.repeat < 1 or args.rows_per_n <= SETTLE + 1:
        parser.error(f"--repeat must be positive and --rows-per-n above {SETTLE + 1:g}")
    cases = [c for c in CASES if args.only in c.name]
    if not nginx_available():
        print("nginx not found: its cases are left out (apt-get install nginx)")
        cases = [c for c in cases if c.limiter != "nginx"]

    print_machine("batch-attend behind rate limiters (no --rate, latency 50 ms)")
    print(f"client code: {client_code()}")
    for limit, concurrency in sorted(
        {(c.rate, c.concurrency) for c in cases if c.limiter == "window"}
    ):
        check, bad = server_check(limit, concurrency, 3.0 if args.quick else 6.0)
        print(
            f"window server check, N={limit}: a bare aiohttp loop paced evenly at "
            f"{CHECK_SHARE:.0%} of N got {check.whole:.1%} of N, {check.rejected} of "
            f"{check.requests} requests answered 429, {bad} not 200",
            flush=True,
        )
    print()

    results: dict[Case, list[tuple[Figures, ClientRun]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rate-limit-") as tmp:
        folder = Path(tmp)
        run_id = 0
        for rep in range(args.repeat):
            for case in cases:
                rows = int(args.rows_per_n * case.rate)
                expected = rows / case.rate
                run_id += 1
                log, run = run_case(
                    case, folder, rows, run_id, TIMEOUT_FACTOR * expected + START_SLACK
                )
                figs = figures_of(log, case.rate)
                results.setdefault(case, []).append((figs, run))
                s = run.summary
                print(
                    f"  run {rep + 1}/{args.repeat} {case.name}, c={case.concurrency}, "
                    f"rows={rows}: settled {figs.settled:.1%} of N, whole run "
                    f"{figs.whole:.1%}; refused {figs.rejected:,} of {figs.requests:,} "
                    f"({figs.rejected_share:.1%}); failed {failed(run)}; exit {run.returncode}"
                    f"{' (TIMED OUT, stopped)' if run.timed_out else ''}, {run.wall:.1f} s "
                    f"(expected {expected:.0f} s)",
                    flush=True,
                )
                print(
                    f"    client summary: counts {s.get('counts')}, errors {s.get('errors')}, "
                    f"requests {s.get('requests')}, retries {s.get('retries')}, "
                    f"rate_limited {s.get('rate_limited')}; {log.other} other requests",
                    flush=True,
                )
                print_per_second(per_second(log))
                if run.returncode not in (0, 1) or not s:
                    print("    stderr: " + run.stderr.strip().replace("\n", "\n    "))
    print()

    table, figures = [], []
    for case in cases:
        runs = results[case]
        settled = median([f.settled for f, _ in runs])
        share = median([f.rejected_share for f, _ in runs])
        failures = max(failed(r) for _, r in runs)
        codes = ",".join(str(c) for c in sorted({r.returncode for _, r in runs}))
        table.append(
            [
                case.name,
                case.concurrency,
                f"{int(args.rows_per_n * case.rate):,}",
                f"{settled:.1%}",
                f"{median([f.whole for f, _ in runs]):.1%}",
                f"{share:.1%}",
                failures,
                codes,
            ]
        )
        name = f"{case.name}, c={case.concurrency}"
        figures.append(
            Figure(
                f"rate limit, settled % of N, {name}",
                f"{settled:.1%}",
                f">= {SETTLED_TARGET:.0%}",
                settled >= SETTLED_TARGET,
            )
        )
        figures.append(
            Figure(
                f"rate limit, refused share, {name}",
                f"{share:.1%}",
                f"<= {REJECTED_TARGET:.0%}",
                share <= REJECTED_TARGET,
            )
        )
        figures.append(
            Figure(f"rate limit, failed rows, {name}", f"{failures}", "0", failures == 0)
        )
    print(
        f"Medians of {args.repeat} run(s); no --rate; answers after {LATENCY * 1000:g} ms; "
        f"settled = starts accepted from {SETTLE:g} s after the first request, over the whole "
        "seconds to the last; failed: the most in any run."
    )
    print_table(
        ["limiter", "c", "rows", "settled % of N", "whole run % of N", "refused", "failed",
         "exit"],
        table,
    )  # fmt: skip
    print(f"Targets (medians of {args.repeat} run(s)):")
    print_figures(figures)
    save_figures(args.figures_json, figures)
    return 0


def failed(run: ClientRun) -> int:
    """Rows ``failed`` in the run (all of them when it said nothing)."""
    return run.summary.get("counts", {}).get("failed", 0) if run.summary else -1


if __name__ == "__main__":
    sys.exit(main())
