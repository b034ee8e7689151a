"""N rows end to end through the real command line, against ``server.py --latency 0``.

Generates ``leads.csv`` of N realistic rows (default 100,000) in a temporary folder, then runs

    PLUGCHAT_TOKEN=bench PLUGCHAT_BASE_URL=<server> python -m batch_attend leads.csv -o out.csv -c 64 -q

as a subprocess, and reports wall time, rows/s, peak RSS (``os.wait4`` ru_maxrss) and the exit
code, and checks that the results file holds N data rows, all ``started``. Each repetition
starts from a clean folder (the results, the journal and its side files deleted, new phones).
Medians of --repeat runs (default 1). The figure the project commits to: peak RSS at 1,048,576
rows (Excel's row limit), at most 1 GB (10^9 bytes).

    python benchmarks/end_to_end.py                    # 100,000 rows
    python benchmarks/end_to_end.py --rows 1048576     # the committed figure: about 3.5 minutes
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Figure,
    Measured,
    add_figures_option,
    bench_server,
    fmt,
    median,
    phone_start,
    print_figures,
    print_machine,
    print_table,
    remove_outputs,
    run_measured,
    save_figures,
    write_leads,
)

CONCURRENCY = 64
TARGET_ROWS = 1_048_576  # the peak RSS target is for this many rows
RSS_TARGET_MB = 1000  # at most, in MB (10^6 bytes)


def check_results(path: Path, rows: int) -> str:
    """'ok', or what is wrong with the results file."""
    if not path.exists():
        return "no results file"
    total = started = 0
    other: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        for record in csv.DictReader(f):
            total += 1
            status = record.get("status")
            if status == "started":
                started += 1
            else:
                other[str(status)] = other.get(str(status), 0) + 1
    if total == rows and started == rows:
        return "ok"
    return f"{total} rows, {started} started, others {other}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run N rows through `python -m batch_attend` (concurrency 64) against a "
        "zero-latency server on 127.0.0.1; wall time, rows/s, peak RSS, results checked."
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows (default 100000)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs; the median is shown (default 1)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds before a run is killed (default 120 + rows / 500)",
    )
    add_figures_option(parser)
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    timeout = args.timeout or 120 + args.rows / 500

    print_machine(f"batch-attend end to end: {args.rows:,} rows, -c {CONCURRENCY}")
    runs: list[tuple[Measured, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        folder = Path(tmp)
        leads = folder / "leads.csv"
        output = folder / "out.csv"
        with bench_server(0) as base_url:
            print(f"server: {base_url} (--latency 0)", flush=True)
            env = dict(os.environ)
            env.pop("PLUGCHAT_TICKET", None)
            env.update(PLUGCHAT_TOKEN="bench", PLUGCHAT_BASE_URL=base_url)
            cmd = [
                sys.executable,
                "-m",
                "batch_attend",
                leads.name,
                "-o",
                output.name,
                "-c",
                str(CONCURRENCY),
                "-q",
            ]
            for rep in range(args.repeat):
                started = time.perf_counter()
                write_leads(leads, args.rows, phone_start(rep + 1))
                print(
                    f"  generated {leads.name} ({args.rows:,} rows) "
                    f"in {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
                m = run_measured(cmd, env=env, cwd=folder, timeout=timeout)
                verdict = check_results(output, args.rows)
                runs.append((m, verdict))
                print(
                    f"  run {rep + 1}/{args.repeat}: {m.wall:.2f} s, "
                    f"{args.rows / m.wall:.1f} rows/s, {m.peak_rss_mb:.1f} MiB, "
                    f"exit {m.returncode}, results {verdict}",
                    flush=True,
                )
                if m.returncode != 0:
                    print(m.stderr.rstrip(), flush=True)
                remove_outputs(output, leads)
                leads.unlink()
    print()

    wall = median([m.wall for m, _ in runs])
    rss = median([m.peak_rss_mb for m, _ in runs])
    codes = ",".join(str(c) for c in sorted({m.returncode for m, _ in runs}))
    verdicts = "; ".join(sorted({v for _, v in runs}))
    rss_mb = rss * 1.048576  # MiB → MB
    target = RSS_TARGET_MB if args.rows == TARGET_ROWS else None
    print(
        f"Medians of {args.repeat} run(s): python -m batch_attend leads.csv -o out.csv "
        f"-c {CONCURRENCY} -q, server latency 0."
    )
    print_table(
        ["rows", "wall s", "rows/s", "peak RSS MiB", "RSS target", "exit", "results"],
        [
            [
                f"{args.rows:,}",
                fmt(wall, 2),
                fmt(args.rows / wall),
                fmt(rss),
                f"≤ {target:g} MB ({'met' if rss_mb <= target else 'NOT met'})"
                if target
                else f"(the target is for {TARGET_ROWS:,} rows)",
                codes,
                verdicts,
            ]
        ],
    )
    ok = all(m.returncode == 0 and v == "ok" for m, v in runs)
    figures = [
        Figure(
            f"peak RSS end to end, {args.rows:,} rows (CSV, -c {CONCURRENCY})",
            f"{rss_mb:,.0f} MB" + ("" if ok else f" (FAILED: exit {codes}, {verdicts})"),
            f"<= {RSS_TARGET_MB / 1000:g} GB" if target else "",
            (rss_mb <= target and ok) if target else None,
        )
    ]
    print(f"Figures (medians of {args.repeat} run(s)):")
    print_figures(figures)
    save_figures(args.figures_json, figures)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
