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

Then the whole process at concurrency 32: the CPU time (user + system, ``os.wait4``) of the real
command line, ``python -m batch_attend leads.csv -o results.csv -c 32 -q --no-status-check``, on
3,200 and 12,800 rows, less that of ``--dry-run`` on the same file (reading, validating and
writing the results of the rows, but no request), per row; beside it the whole CPU time of a bare
aiohttp loop in a process of its own (``python -c ...``, interpreter start-up included), per
request. With the ledger and the results, this is everything a run costs per request.

Every figure is the median of --repeat runs (default 3), not the best; the tool and the bare loop
take turns going first. The figures the project commits to: the tool's % of ideal at each
concurrency (target at least 90%) and its whole-process client CPU per request at concurrency 32,
the higher of the two sizes (target at most 0.5 ms).

    python benchmarks/throughput.py            # about 5 minutes
    python benchmarks/throughput.py --quick    # 3 runs of 3 s each, 1 whole-process: 2 minutes
"""

from __future__ import annotations

import argparse
import functools
import json
import os
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
    run_measured,
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
WHOLE_ROWS = (3_200, 12_800)  # the whole-process measurement's sizes
BARE_PROCESS = (
    "import json, sys; sys.path.insert(0, sys.argv[3]); from _common import bare_send; "
    "bodies = json.load(open(sys.argv[2])); "
    "assert bare_send(sys.argv[1], bodies, int(sys.argv[4])) == len(bodies)"
)


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

            whole = measure_whole(Path(tmp), base_url, 1 if args.quick else args.repeat, run_id)
            run_id += 100

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
    print(
        f"Whole process, c={CPU_CONCURRENCY} (medians): the command line's CPU less its dry run's, "
        "per row; a bare aiohttp loop's whole process, per request."
    )
    print_table(
        ["rows", "tool CPU ms/req", "dry run CPU s", "bare CPU ms/req", "tool / bare"],
        [
            [f"{n:,}", fmt(median(t), 3), fmt(median(d), 2), fmt(median(b), 3),
             f"{median(t) / median(b):.2f}"]
            for n, (t, d, b) in whole.items()
        ],
    )  # fmt: skip
    cpu = max(median(t) for t, _d, _b in whole.values())
    figures.append(
        Figure(
            f"throughput, client CPU per request, c={CPU_CONCURRENCY}, whole process",
            f"{cpu:.3f} ms",
            f"<= {CPU_TARGET_MS} ms",
            cpu <= CPU_TARGET_MS,
        )
    )
    print(f"Targets (medians of {args.repeat} run(s)):")
    print_figures(figures)
    save_figures(args.figures_json, figures)
    return 0


def measure_whole(folder: Path, base_url: str, repeat: int, run_id: int) -> dict:
    """By rows: the command line's CPU ms per row less its dry run's, the dry run's CPU
    seconds, and a bare loop's whole-process CPU ms per request (lists of ``repeat``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGCHAT_")}
    env.update(PLUGCHAT_TOKEN="bench", PLUGCHAT_BASE_URL=base_url)
    whole: dict[int, tuple[list, list, list]] = {n: ([], [], []) for n in WHOLE_ROWS}
    command = [sys.executable, "-m", "batch_attend"]
    for rep in range(repeat):
        for n in WHOLE_ROWS:
            run_id += 1
            leads = write_leads(folder / f"whole-{run_id}.csv", n, phone_start(run_id))
            out = folder / f"whole-{run_id}.results.csv"
            c = str(CPU_CONCURRENCY)
            # The dry run first: no ledger yet, so it plans every row to send, as the run does.
            dry = run_measured([*command, leads, "-o", out, "-q", "--dry-run"], env=env, cwd=folder)
            tool = run_measured([*command, leads, "-o", out, "-c", c, "-q", "--no-status-check"],
                                env=env, cwd=folder)  # fmt: skip
            bodies = folder / f"whole-{run_id}.json"
            bodies.write_text(json.dumps(request_bodies(n, phone_start(run_id + 1000))))
            bare = run_measured(
                [sys.executable, "-c", BARE_PROCESS, base_url + "/start-attendance", bodies,
                 Path(__file__).resolve().parent, c],
                env=env, cwd=folder,
            )  # fmt: skip
            for m in (tool, dry, bare):
                if m.returncode:
                    raise RuntimeError(f"whole-process run failed: {m.stderr}")
            t, d, b = whole[n]
            t.append((tool.cpu - dry.cpu) / n * 1000)
            d.append(dry.cpu)
            b.append(bare.cpu / n * 1000)
            print(
                f"  whole process {rep + 1}/{repeat} N={n:<6} tool {t[-1]:.3f} ms CPU/req "
                f"(run {tool.cpu:.2f} s, dry run {dry.cpu:.2f} s, {n / tool.wall:.0f} rows/s) | "
                f"bare {b[-1]:.3f} ms CPU/req ({bare.cpu:.2f} s)",
                flush=True,
            )
            remove_outputs(out, leads)
            for path in (leads, bodies):
                path.unlink()
    return whole


if __name__ == "__main__":
    sys.exit(main())
