"""N rows end to end through the real command line, against ``server.py --latency 0``.

Generates ``leads.csv`` of N realistic rows (default 100,000) in a temporary folder, then runs

    PLUGCHAT_TOKEN=bench PLUGCHAT_BASE_URL=<server> python -m batch_attend leads.csv -o out.csv -c 64 -q

as a subprocess, and reports wall time, rows/s, peak RSS (``os.wait4`` ru_maxrss) and the exit
code, and checks that the results file holds N data rows, all ``started``. Each repetition
starts from a clean folder (no journal to resume from). Medians of --repeat runs (default 1).

    python benchmarks/end_to_end.py                    # 100,000 rows
    python benchmarks/end_to_end.py --rows 1048576     # Excel's row limit: RSS ≤ 1 GB
    python benchmarks/end_to_end.py --rows 10000       # RSS ≤ 200 MB
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
    Measured,
    bench_server,
    fmt,
    median,
    phone_start,
    print_machine,
    print_table,
    remove_outputs,
    run_measured,
    write_leads,
)

CONCURRENCY = 64
RSS_TARGETS_MB = ((10_000, 200), (1_048_576, 1000))  # (rows at most, peak RSS MB at most)


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


def rss_target(rows: int) -> float | None:
    for limit, target in RSS_TARGETS_MB:
        if rows <= limit:
            return target
    return None


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
                remove_outputs(output)
                leads.unlink()
    print()

    wall = median([m.wall for m, _ in runs])
    rss = median([m.peak_rss_mb for m, _ in runs])
    codes = ",".join(str(c) for c in sorted({m.returncode for m, _ in runs}))
    verdicts = "; ".join(sorted({v for _, v in runs}))
    target = rss_target(args.rows)
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
                f"≤ {target:g} MB ({'met' if rss * 1.048576 <= target else 'NOT met'})"
                if target
                else "",
                codes,
                verdicts,
            ]
        ],
    )
    return 0 if all(m.returncode == 0 and v == "ok" for m, v in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
