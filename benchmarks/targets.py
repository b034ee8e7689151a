"""Every figure the project commits to, measured in one go, in one table.

Runs the quick versions of the five benchmark scripts one after the other, each as a subprocess
(its own interpreter, its own server, its output shown as it comes), and then prints one table:
figure, measured, target, met.

* ``throughput.py --quick``: % of ideal at 50 ms with concurrency 8, 32 and 64 (target at least
  90%), client CPU per request at concurrency 32 (target at most 0.5 ms); 3 runs of 3 s each;
* ``reading.py --quick``: the dry run of a 100,000-row XLSX over pandas + calamine reading it
  (target at most 2) and of a 1,000,000-row CSV over ``pandas.read_csv`` (target at most 4);
  1 run of each;
* ``end_to_end.py --rows 1048576``: peak RSS of the real command line (target at most 1 GB);
* ``overhead.py --quick``: the overhead ratio at zero latency (no target); 5 pairs;
* ``rate_limit.py --quick``: a run with no ``--rate`` against a server allowing N requests a
  second (429 above, with and without Retry-After), N = 20 and 200: settled throughput at least
  90% of N with exit 0, at most 5% of the requests answered 429; 1 run of about 9 s per case.

About 7 minutes on a 2-core machine; every script is killed (with its server) after
--timeout seconds. Exit status 0 when every target is met and every script succeeded, else 1.

    python benchmarks/targets.py
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import HERE, Figure, load_figures, print_figures, print_machine

E2E_ROWS = 1_048_576


def steps(e2e_rows: int) -> list[tuple[str, list[str]]]:
    return [
        ("throughput.py", ["--quick"]),
        ("reading.py", ["--quick"]),
        ("end_to_end.py", ["--rows", str(e2e_rows)]),
        ("overhead.py", ["--quick"]),
        ("rate_limit.py", ["--quick"]),
    ]


def run_step(script: str, args: list[str], figures_json: Path, timeout: float) -> tuple[int, str]:
    """Run one script (its output to ours); its exit code and how long it took. The script and
    its server run in a process group of their own, killed whole after ``timeout`` seconds."""
    cmd = [sys.executable, str(HERE / script), *args, "--figures-json", str(figures_json)]
    print(f"\n### {' '.join([Path(cmd[0]).name, *cmd[1:]])}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = -9
        print(f"### {script}: killed after {timeout:g} s", flush=True)
    finally:
        if proc.poll() is None:  # Ctrl-C while waiting: stop the script and its server
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return code, f"{time.perf_counter() - started:.0f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the quick versions of throughput.py, reading.py, end_to_end.py, "
        "overhead.py and rate_limit.py and print every committed figure beside its target."
    )
    parser.add_argument(
        "--e2e-rows",
        type=int,
        default=E2E_ROWS,
        help=f"rows for end_to_end.py (default {E2E_ROWS:,}, the row count of the target)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before a script is killed (default 900)",
    )
    args = parser.parse_args(argv)
    if args.e2e_rows < 1 or args.timeout <= 0:
        parser.error("--e2e-rows and --timeout must be positive")

    print_machine("batch-attend: the committed figures, quick versions")
    figures: list[Figure] = []
    ran: list[tuple[str, int, str]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as tmp:
        for script, script_args in steps(args.e2e_rows):
            path = Path(tmp, script + ".json")
            code, took = run_step(script, script_args, path, args.timeout)
            ran.append((script, code, took))
            if path.exists():
                figures += load_figures(path)
            else:
                figures.append(Figure(f"{script}: no figures", f"exit {code}", "", False))
    print()
    print(
        f"== all committed figures ({time.strftime('%Y-%m-%d %H:%M')}, "
        f"{time.perf_counter() - started:.0f} s) =="
    )
    print("scripts: " + ", ".join(f"{s} exit {c} ({t})" for s, c, t in ran))
    print_figures(figures)
    missed = [f.name for f in figures if f.met is False]
    if missed:
        print(f"missed: {len(missed)} of {sum(f.met is not None for f in figures)} targets")
    ok = not missed and all(code == 0 for _, code, _ in ran)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
