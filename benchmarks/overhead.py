"""What batch-attend costs on top of a bare HTTP loop, and what its progress bar and stdout cost.

Against ``server.py --latency 0`` (answers at once, so the client is the bottleneck):

1. Overhead ratio: batch-attend's rows/s (``run_batch`` in this process: read, validate, look
   names up, send, the SQLite journal committed per request, results; N=20000, concurrency 32)
   divided by a bare aiohttp loop's rows/s (same N, same concurrency, same JSON bodies, uvloop)
   measured in the same run. It is reported with no target: it says how much of the client's
   time goes to what the tool does besides HTTP.
2. At a rate near what a real run would see (``rate=1000``, N=5000, concurrency 32): the
   tool writing its results to a file (the journal beside it), against ``output="-"`` (CSV into
   an in-memory stdout; the journal is then kept beside the input), and with the progress bar
   on (a stderr that claims to be a terminal, writing to /dev/null, quiet=False) against off.
   Every variant keeps a journal: there is no run without one.

Part 1 runs --pairs pairs (default 11), the tool and the bare loop taking turns going first;
part 2 runs each variant --repeat times (default 5). Every figure is a median. This machine's
speed moves by up to half over a few seconds, so one pair's ratio can land far from the others:
the overhead ratio is the median of the pairs' own ratios (each pair ran under about the same
conditions), printed with their quartiles, and beside it the ratio of the two medians.

    python benchmarks/overhead.py              # about 2.5 minutes
    python benchmarks/overhead.py --quick      # 5 pairs, 1 run of each variant: about 45 s
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Figure,
    InProcess,
    add_figures_option,
    add_repeat_option,
    bench_server,
    fmt,
    measure_bare,
    measure_tool,
    median,
    phone_start,
    print_figures,
    print_machine,
    print_table,
    quartiles,
    quiet_env,
    remove_outputs,
    repeats,
    request_bodies,
    save_figures,
    take_turns,
    tool_options,
    write_leads,
)

VARIANTS = {
    # name: (results to a file (else -o -), progress bar on)
    "results file, progress off": (True, False),
    "-o - (stdout), progress off": (False, False),
    "results file, progress on": (True, True),
}
REFERENCE = "results file, progress off"


def percent(value: float, reference: float) -> str:
    return f"{(value - reference) / reference:+.1%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="batch-attend's rows/s against a bare aiohttp loop (overhead ratio), and "
        "the cost of the progress bar and of results on stdout at about 1,000 rows/s."
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=None,
        help="tool / bare loop pairs for the overhead ratio (default 11; --quick: 5)",
    )
    add_repeat_option(parser, 5, "runs of each output / progress variant")
    parser.add_argument(
        "--rows", type=int, default=20_000, help="rows for the overhead ratio (default 20000)"
    )
    parser.add_argument(
        "--rate-rows",
        type=int,
        default=5_000,
        help="rows for the output / progress comparison (default 5000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=1000.0,
        help="rate=... for the output / progress comparison (default 1000)",
    )
    parser.add_argument(
        "-c", "--concurrency", type=int, default=32, help="requests in flight (default 32)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="5 pairs and 1 run of each variant (unless given)"
    )
    add_figures_option(parser)
    args = parser.parse_args(argv)
    if args.pairs is None:
        args.pairs = 5 if args.quick else 11
    args.repeat = repeats(args, 5)
    if (
        min(args.pairs, args.repeat, args.rows, args.rate_rows, args.concurrency) < 1
        or args.rate <= 0
    ):
        parser.error(
            "--pairs, --repeat, --rows, --rate-rows, --rate and --concurrency must be positive"
        )

    print_machine("batch-attend overhead (server latency 0)")
    c = args.concurrency
    run_id = 0
    tool: list[InProcess] = []
    bare: list[InProcess] = []
    variants: dict[str, list[InProcess]] = {name: [] for name in VARIANTS}

    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        open(os.devnull, "w") as devnull,
    ):

        def tool_run(rows: int, *, rate=None, to_file=True, progress=False) -> InProcess:
            nonlocal run_id
            run_id += 1
            leads = write_leads(Path(tmp, f"leads-{run_id}.csv"), rows, phone_start(run_id))
            output = Path(tmp, f"results-{run_id}.csv") if to_file else "-"
            options = tool_options(leads, output, base_url, c, rate=rate, quiet=not progress)
            env = quiet_env(stderr=devnull, stderr_isatty=True) if progress else quiet_env()
            try:
                return measure_tool(options, env, rows)
            finally:
                remove_outputs(output, leads)
                leads.unlink()

        def bare_run(rows: int) -> InProcess:
            nonlocal run_id
            run_id += 1
            return measure_bare(url, request_bodies(rows, phone_start(run_id)), c)

        with bench_server(0) as base_url:
            url = base_url + "/start-attendance"
            print(f"server: {base_url} (--latency 0)", flush=True)
            tool_run(200)  # untimed warm-ups: imports, first connections
            bare_run(200)
            for rep in range(args.pairs):
                t, b = take_turns(
                    rep,
                    functools.partial(tool_run, args.rows),
                    functools.partial(bare_run, args.rows),
                )
                tool.append(t)
                bare.append(b)
                print(
                    f"  pair {rep + 1}/{args.pairs} N={args.rows} c={c}: "
                    f"tool {t.rate:.1f} rows/s, bare {b.rate:.1f} rows/s, "
                    f"ratio {t.rate / b.rate:.3f}",
                    flush=True,
                )
            # Untimed warm-up of the rate-limited path with the progress bar (its imports).
            tool_run(500, rate=args.rate, progress=True)
            names = list(VARIANTS)
            for rep in range(args.repeat):
                # Each repetition starts with a different variant: no variant always goes first.
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    to_file, progress = VARIANTS[name]
                    r = tool_run(args.rate_rows, rate=args.rate, to_file=to_file, progress=progress)
                    variants[name].append(r)
                    print(
                        f"  run {rep + 1}/{args.repeat} rate {args.rate:g} N={args.rate_rows} "
                        f"{name}: {r.rate:.1f} rows/s, {r.cpu_ms_per_row:.3f} ms CPU/row",
                        flush=True,
                    )
    print()

    tool_rate = median([r.rate for r in tool])
    bare_rate = median([r.rate for r in bare])
    ratios = [t.rate / b.rate for t, b in zip(tool, bare, strict=True)]
    print(
        f"1. Overhead ratio: {args.pairs} pair(s), N={args.rows}, concurrency {c}, "
        "server latency 0 (rows/s and CPU: medians)."
    )
    print_table(
        ["client", "rows/s", "CPU ms/row"],
        [
            [
                "batch-attend (run_batch)",
                fmt(tool_rate),
                fmt(median([r.cpu_ms_per_row for r in tool]), 3),
            ],
            [
                "bare aiohttp loop (uvloop)",
                fmt(bare_rate),
                fmt(median([r.cpu_ms_per_row for r in bare]), 3),
            ],
        ],
    )
    low, _, high = quartiles(ratios)
    print(
        f"overhead ratio (median of the pairs' tool rows/s / bare rows/s): {median(ratios):.3f} "
        f"(quartiles {low:.3f}-{high:.3f}; lowest {min(ratios):.3f}, highest {max(ratios):.3f})"
    )
    print(f"ratio of the medians: {tool_rate / bare_rate:.3f}")
    print("(no target: a measurement of what the tool costs besides HTTP)")
    print()

    print(
        "2. Results on stdout and progress bar (a journal in every variant): "
        f"medians of {args.repeat} run(s), rate {args.rate:g}/s, "
        f"N={args.rate_rows}, concurrency {c}, server latency 0."
    )
    rates = {name: median([r.rate for r in runs]) for name, runs in variants.items()}
    cpus = {name: median([r.cpu_ms_per_row for r in runs]) for name, runs in variants.items()}
    print_table(
        ["variant", "rows/s", "CPU ms/row", "rows/s vs reference", "CPU vs reference"],
        [
            [
                name + (" (reference)" if name == REFERENCE else ""),
                fmt(rates[name]),
                fmt(cpus[name], 3),
                "" if name == REFERENCE else percent(rates[name], rates[REFERENCE]),
                "" if name == REFERENCE else percent(cpus[name], cpus[REFERENCE]),
            ]
            for name in VARIANTS
        ],
    )
    on, off = "-o - (stdout), progress off", REFERENCE
    print(
        f"-o - vs results file: rows/s {percent(rates[on], rates[off])}, "
        f"CPU/row {percent(cpus[on], cpus[off])}"
    )
    on, off = "results file, progress on", REFERENCE
    print(
        f"progress on vs off:   rows/s {percent(rates[on], rates[off])}, "
        f"CPU/row {percent(cpus[on], cpus[off])}"
    )
    print()
    figures = [
        Figure(
            "overhead ratio at latency 0 (tool rows/s / bare aiohttp rows/s)",
            f"{median(ratios):.3f}",
            "",
            None,
        )
    ]
    print(f"Figures ({args.pairs} pair(s)):")
    print_figures(figures)
    save_figures(args.figures_json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
