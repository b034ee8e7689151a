"""Reading big spreadsheets: batch-attend's dry run against pandas alone, as separate processes.

Generates a 100,000-row XLSX and a 1,000,000-row CSV of realistic leads in a temporary folder
(deleted at the end unless --keep), then for each file runs, as subprocesses:

* the tool: ``python -m batch_attend FILE --dry-run -q -o OUT/out.csv`` (read, validate, write
  the results: everything but sending);
* the bare baseline: ``pandas.read_excel(FILE, engine="calamine", dtype=str)`` or
  ``pandas.read_csv(FILE, dtype=str)`` in a fresh interpreter (reading only);

and reports wall seconds and peak RSS (``os.wait4`` ru_maxrss) of each, and the ratio tool/bare
(targets: at most 2 for the XLSX, at most 4 for the CSV). The XLSX case is also run with
``-o out.xlsx`` (results written as a workbook), as an extra line with no target. Every figure is
the median of --repeat runs (default 3); the commands take turns in a different order each
repetition, and the tool's results and any journal are deleted after every run.

    python benchmarks/reading.py                  # about 1.5 minutes
    python benchmarks/reading.py --quick          # the same sizes, 1 run each: about 30 s
    python benchmarks/reading.py --repeat 1 --csv-rows 100000 --xlsx-rows 20000   # smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    Figure,
    Measured,
    add_figures_option,
    add_repeat_option,
    fmt,
    median,
    print_figures,
    print_machine,
    print_table,
    remove_outputs,
    repeats,
    run_measured,
    save_figures,
    write_leads,
)

BARE = {
    ".xlsx": "import sys, pandas; pandas.read_excel(sys.argv[1], engine='calamine', dtype=str)",
    ".csv": "import sys, pandas; pandas.read_csv(sys.argv[1], dtype=str)",
}
TARGETS = {".xlsx": 2.0, ".csv": 4.0}  # tool wall time / bare wall time, at most


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PLUGCHAT_TOKEN", "PLUGCHAT_BASE_URL", "PLUGCHAT_TICKET"):
        env.pop(name, None)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Wall time and peak RSS of `batch-attend FILE --dry-run` against pandas "
        "reading the same file, for a big XLSX and a big CSV."
    )
    add_repeat_option(parser, 3)
    parser.add_argument(
        "--xlsx-rows", type=int, default=100_000, help="rows of the XLSX (default 100000)"
    )
    parser.add_argument(
        "--csv-rows", type=int, default=1_000_000, help="rows of the CSV (default 1000000)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before a run is killed (default 600)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated files (their folder is printed)"
    )
    parser.add_argument("--quick", action="store_true", help="1 run of each (unless --repeat)")
    add_figures_option(parser)
    args = parser.parse_args(argv)
    args.repeat = repeats(args, 3)
    if min(args.repeat, args.xlsx_rows, args.csv_rows) < 1 or args.timeout <= 0:
        parser.error("--repeat, --xlsx-rows, --csv-rows and --timeout must be positive")

    print_machine("batch-attend reading (dry run) against pandas")
    py = sys.executable
    env = clean_env()
    tmp = Path(tempfile.mkdtemp(prefix="bench-reading-"))
    results: dict[str, list[Measured]] = {}
    lines: list[tuple[str, str, int, str]] = []  # (key, file label, rows, command label)
    try:
        files = []
        for suffix, rows in ((".xlsx", args.xlsx_rows), (".csv", args.csv_rows)):
            started = time.perf_counter()
            path = write_leads(tmp / f"leads-{rows}{suffix}", rows)
            size = path.stat().st_size / 1024 / 1024
            print(
                f"generated {path.name}: {rows:,} rows, {size:.1f} MiB "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            files.append((suffix, rows, path))

        runs = []
        for suffix, rows, path in files:
            label = f"{path.name}"
            out_csv = tmp / "out.csv"
            runs.append(
                (
                    f"tool{suffix}",
                    label,
                    rows,
                    "batch-attend --dry-run -o out.csv",
                    [py, "-m", "batch_attend", str(path), "--dry-run", "-q", "-o", str(out_csv)],
                    out_csv,
                )
            )
            runs.append(
                (
                    f"bare{suffix}",
                    label,
                    rows,
                    BARE[suffix].split("; ", 1)[1].replace("sys.argv[1]", "FILE"),
                    [py, "-c", BARE[suffix], str(path)],
                    None,
                )
            )
            if suffix == ".xlsx":
                out_xlsx = tmp / "out.xlsx"
                runs.append(
                    (
                        "tool.xlsx->xlsx",
                        label,
                        rows,
                        "batch-attend --dry-run -o out.xlsx",
                        [
                            py,
                            "-m",
                            "batch_attend",
                            str(path),
                            "--dry-run",
                            "-q",
                            "-o",
                            str(out_xlsx),
                        ],
                        out_xlsx,
                    )
                )
        for key, label, rows, what, _, _ in runs:
            results[key] = []
            lines.append((key, label, rows, what))

        inputs = [path for _, _, path in files]
        for rep in range(args.repeat):
            # Each repetition starts with a different command: none always runs first.
            shift = rep % len(runs)
            for key, _, _, what, cmd, output in runs[shift:] + runs[:shift]:
                m = run_measured(cmd, env=env, cwd=tmp, timeout=args.timeout)
                results[key].append(m)
                remove_outputs(output, *inputs)
                print(
                    f"  run {rep + 1}/{args.repeat} {key:<16} {m.wall:7.2f} s "
                    f"{m.peak_rss_mb:7.1f} MiB exit {m.returncode}",
                    flush=True,
                )
                if m.returncode != 0:
                    print(f"    {what} failed:\n{m.stderr.rstrip()}", flush=True)
    finally:
        if args.keep:
            print(f"kept the generated files in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()

    wall = {key: median([m.wall for m in ms]) for key, ms in results.items()}
    rss = {key: median([m.peak_rss_mb for m in ms]) for key, ms in results.items()}
    codes = {key: sorted({m.returncode for m in ms}) for key, ms in results.items()}
    print(f"Medians of {args.repeat} run(s); peak RSS in MiB (ru_maxrss of the process).")
    print_table(
        ["file", "rows", "command", "wall s", "peak RSS MiB", "exit"],
        [
            [
                label,
                f"{rows:,}",
                what,
                fmt(wall[key], 2),
                fmt(rss[key]),
                ",".join(map(str, codes[key])),
            ]
            for key, label, rows, what in lines
        ],
    )
    ratio_rows = []
    for suffix, rows, path in files:
        tool, bare = f"tool{suffix}", f"bare{suffix}"
        ratio = wall[tool] / wall[bare]
        ratio_rows.append(
            [
                path.name,
                f"{rows:,}",
                f"{ratio:.2f}",
                f"≤ {TARGETS[suffix]:.1f}",
                "yes" if ratio <= TARGETS[suffix] else "NO",
                f"{rss[tool] / rss[bare]:.2f}",
            ]
        )
    extra = wall["tool.xlsx->xlsx"] / wall["bare.xlsx"]
    ratio_rows.append(
        [
            f"{files[0][2].name} (-o out.xlsx)",
            f"{files[0][1]:,}",
            f"{extra:.2f}",
            "",
            "",
            f"{rss['tool.xlsx->xlsx'] / rss['bare.xlsx']:.2f}",
        ]
    )
    print_table(
        ["file", "rows", "wall tool/bare", "target", "met", "peak RSS tool/bare"], ratio_rows
    )
    figures = []
    for suffix, rows, _ in files:
        ratio = wall[f"tool{suffix}"] / wall[f"bare{suffix}"]
        bare = "read_excel(calamine)" if suffix == ".xlsx" else "read_csv"
        figures.append(
            Figure(
                f"reading, dry run / pandas {bare}, {rows:,}-row {suffix[1:].upper()}",
                f"{ratio:.2f}",
                f"<= {TARGETS[suffix]:g}",
                ratio <= TARGETS[suffix],
            )
        )
    failed = sorted(key for key, ms in results.items() if any(m.returncode != 0 for m in ms))
    if failed:
        print(f"FAILED runs: {', '.join(failed)}")
    print(f"Targets (medians of {args.repeat} run(s)):")
    print_figures(figures)
    save_figures(args.figures_json, figures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
