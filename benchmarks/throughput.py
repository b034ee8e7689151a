"""Throughput at concurrency 8, 32 and 64 against a server that answers after 50 ms.

For each concurrency c, in the same run and against the same ``server.py --latency 0.05``:

* the tool: ``batch_attend.runner.run_batch`` in this process on a generated CSV of N rows, with
  ``RunOptions.build(input=..., output=..., concurrency=c, quiet=True, fresh=True)`` (wall time
  around the whole call: reading, validating, the name lookups, sending, the SQLite journal
  committed per request, the results file);
* a bare baseline: a plain aiohttp loop under uvloop, c workers over one ``TCPConnector(limit=c)``,
  posting the same JSON bodies.

Both are reported as rows/s, as a fraction of the ideal c / 0.05 s, and as client CPU
milliseconds per request (process CPU time / rows). Finally the server's own capacity (the bare
loop at concurrency 64 against ``server.py --latency 0``) is printed beside the highest rate the
test needs (64 / 0.05 s = 1280 rows/s), to show the server is not the bottleneck.

Every figure is the median of --repeat runs (default 3), not the best; the tool and the bare loop
take turns going first. The figures the project commits to: the tool's % of ideal at each
concurrency (target at least 90%) and its client CPU per request at concurrency 32 (target at most
0.5 ms).

    python benchmarks/throughput.py            # about 3 minutes
    python benchmarks/throughput.py --quick    # 3 runs of 3 s each: about 1 minute
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Figure,
    InProcess,
    add_figures_option,
    bench_server,
    fmt,
    measure_bare,
    measure_tool,
    median,
    phone_start,
    print_figures,
    print_machine,
    print_table,
    quiet_env,
    remove_outputs,
    request_bodies,
    save_figures,
    take_turns,
    tool_options,
    write_leads,
)

LATENCY = 0.05
CONCURRENCIES = (8, 32, 64)
IDEAL_TARGET = 0.90  # the tool's rows/s over c / latency, at least
CPU_TARGET_MS = 0.5  # the tool's client CPU per request at CPU_CONCURRENCY, at most
CPU_CONCURRENCY = 32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rows per second and client CPU per request of batch-attend and of a bare "
        "aiohttp loop at concurrency 8, 32, 64 against a 50 ms server on 127.0.0.1."
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per figure; the median is shown (default 3)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=8.0,
        help="target length of each measurement: N = c / latency × seconds rows (default 8)",
    )
    parser.add_argument(
        "--capacity-rows",
        type=int,
        default=20_000,
        help="rows for the server-capacity check at --latency 0 (default 20000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorter: 3 s per measurement, capacity 5000 rows (repeat stays 3 unless given)",
    )
    add_figures_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.capacity_rows = 3.0, 5000
    if args.repeat < 1 or args.seconds <= 0 or args.capacity_rows < 1:
        parser.error("--repeat, --seconds and --capacity-rows must be positive")

    print_machine("batch-attend throughput (server latency 50 ms)")
    run_id = 0
    tool: dict[int, list[InProcess]] = {c: [] for c in CONCURRENCIES}
    bare: dict[int, list[InProcess]] = {c: [] for c in CONCURRENCIES}
    capacity: list[InProcess] = []

    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        with bench_server(LATENCY) as base_url:
            url = base_url + "/start-attendance"
            print(f"server: {base_url} (--latency {LATENCY})", flush=True)
            # One untimed warm-up of each (imports, first connections), so that the first
            # measured run is not the only one paying for them.
            run_id += 1
            warm = write_leads(Path(tmp, "warm-up.csv"), 100, phone_start(run_id))
            warm_output = Path(tmp, "warm-up.results.csv")
            measure_tool(tool_options(warm, warm_output, base_url, 8), quiet_env(), 100)
            remove_outputs(warm_output, warm)
            warm.unlink()
            run_id += 1
            measure_bare(url, request_bodies(100, phone_start(run_id)), 8)
            for rep in range(args.repeat):
                for c in CONCURRENCIES:
                    rows = max(c, int(c / LATENCY * args.seconds))
                    run_id += 1
                    leads = write_leads(Path(tmp, f"leads-{run_id}.csv"), rows, phone_start(run_id))
                    output = Path(tmp, f"results-{run_id}.csv")
                    options = tool_options(leads, output, base_url, c)
                    env = quiet_env()
                    run_id += 1
                    bodies = request_bodies(rows, phone_start(run_id))
                    t, b = take_turns(
                        rep,
                        functools.partial(measure_tool, options, env, rows),
                        functools.partial(measure_bare, url, bodies, c),
                    )
                    tool[c].append(t)
                    bare[c].append(b)
                    remove_outputs(output, leads)
                    leads.unlink()
                    print(
                        f"  run {rep + 1}/{args.repeat} c={c:<2} N={rows:<6} "
                        f"tool {t.rate:7.1f} rows/s {t.cpu_ms_per_row:.3f} ms CPU/req | "
                        f"bare {b.rate:7.1f} rows/s {b.cpu_ms_per_row:.3f} ms CPU/req",
                        flush=True,
                    )

        with bench_server(0) as base_url:
            url = base_url + "/start-attendance"
            for rep in range(args.repeat):
                run_id += 1
                cap = measure_bare(url, request_bodies(args.capacity_rows, phone_start(run_id)), 64)
                capacity.append(cap)
                print(
                    f"  capacity run {rep + 1}/{args.repeat}: {cap.rate:.1f} rows/s "
                    f"(bare loop, c=64, --latency 0, N={args.capacity_rows})",
                    flush=True,
                )
    print()

    table = []
    figures = []
    for c in CONCURRENCIES:
        ideal = c / LATENCY
        tool_rate = median([r.rate for r in tool[c]])
        bare_rate = median([r.rate for r in bare[c]])
        figures.append(
            Figure(
                f"throughput, % of ideal at 50 ms, c={c}",
                f"{tool_rate / ideal:.1%}",
                f">= {IDEAL_TARGET:.0%}",
                tool_rate / ideal >= IDEAL_TARGET,
            )
        )
        table.append(
            [
                c,
                fmt(tool_rate),
                f"{tool_rate / ideal:.1%}",
                fmt(median([r.cpu_ms_per_row for r in tool[c]]), 3),
                fmt(bare_rate),
                f"{bare_rate / ideal:.1%}",
                fmt(median([r.cpu_ms_per_row for r in bare[c]]), 3),
            ]
        )
    print(
        f"Medians of {args.repeat} run(s); ideal = concurrency / {LATENCY} s; "
        f"about {args.seconds:g} s per measurement, after one untimed warm-up of each."
    )
    print_table(
        [
            "concurrency",
            "tool rows/s",
            "% of ideal",
            "tool CPU ms/req",
            "bare rows/s",
            "% of ideal",
            "bare CPU ms/req",
        ],
        table,
    )
    needed = max(CONCURRENCIES) / LATENCY
    cap_rate = median([r.rate for r in capacity])
    print_table(
        ["server capacity (bare loop, c=64, --latency 0)", "highest rate needed", "headroom"],
        [[f"{fmt(cap_rate)} rows/s", f"{fmt(needed)} rows/s", f"{cap_rate / needed:.2f}x"]],
    )
    cpu = median([r.cpu_ms_per_row for r in tool[CPU_CONCURRENCY]])
    figures.append(
        Figure(
            f"throughput, client CPU per request, c={CPU_CONCURRENCY}",
            f"{cpu:.3f} ms",
            f"<= {CPU_TARGET_MS} ms",
            cpu <= CPU_TARGET_MS,
        )
    )
    print(f"Targets (medians of {args.repeat} run(s)):")
    print_figures(figures)
    save_figures(args.figures_json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
