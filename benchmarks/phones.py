"""Phone rules over a column: how long 1,000,000 realistic phone strings take to validate.

The strings are the leads generator's (``_common.lead_rows``: masks, ``+55``, a trunk 0, number
cells), every 20th replaced by a rarer form (carrier codes, ``0xx``, a DDD that does not exist,
a foreign number, a cell with a fraction). Each figure comes from a fresh interpreter:

* ``normalize_phones``: the whole column in one call (one core);
* ``validate``: the phone column of a one-column sheet, as a run validates it (a piece per core);
* ``skip_duplicates`` on that plan, and ``carry_over`` with every lead done (a rerun).

With ``--against REV`` the package as it was at git revision REV (``git archive`` into a
temporary folder) is timed too, in the same run, the two taking turns going first. Every
figure is the median of --repeat runs.

    python benchmarks/phones.py --against HEAD~3     # about 2 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, add_repeat_option, fmt, median, print_machine, print_table, repeats

RARE = (
    "0 15 (41) 9{a}-{b}",
    "(0xx11) 9{a}-{b}",
    "0 21 11 9{a}-{b}",
    "(04374) 9{a}-{b}",
    "+55 (011) 9{a}-{b}",
    "(20) 3{c}-{b}",
    "+351 91{a}{c}",
    "55{a}{b}.5",
)

#: Run in a fresh interpreter, with the package to time first on its path.
CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
import pandas as pd
from _common import lead_rows
from phones import RARE
import batch_attend
from batch_attend.leads import LeadDefaults, normalize_phones, validate
from batch_attend.planning import carry_over, skip_duplicates
from batch_attend.reading.headers import ColumnMap
from batch_attend.reading.table import Table

rows = int(sys.argv[3])
phones = [str(r.phone) for r in lead_rows(rows)]
for i in range(0, rows, 20):
    digits = "".join(c for c in phones[i] if c.isdigit())[-8:]
    phones[i] = RARE[(i // 20) % len(RARE)].format(a=digits[:4], b=digits[4:], c=digits[5:])
cells = pd.Series(phones, dtype=str)
table = Table(None, None, ["Telefone"], pd.DataFrame({0: cells}), range(2, rows + 2))
started = time.perf_counter()
out = normalize_phones(cells)
rule = time.perf_counter() - started
started = time.perf_counter()
plan = validate(table, ColumnMap(0, None, None), LeadDefaults(operators=("OP-1",)))
whole = time.perf_counter() - started
invalid = int((plan["status"] == "invalid").sum())
started = time.perf_counter()
skip_duplicates(plan)
duplicates = time.perf_counter() - started
done = dict.fromkeys(plan["phone"][plan["phone"] != ""], "started")
started = time.perf_counter()
carry_over(plan, done)
rerun = time.perf_counter() - started
print(json.dumps({"rule": rule, "validate": whole, "invalid": invalid, "duplicates": duplicates,
                  "rerun": rerun, "package": batch_attend.__file__}))
"""


def measure(package_root: Path, rows: int) -> dict:
    """One fresh interpreter's figures for the package under ``package_root``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, here, str(package_root), str(rows)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the timing run failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if not figures["package"].startswith(str(package_root)):
        raise RuntimeError(f"timed {figures['package']}, not the package under {package_root}")
    return figures


def extract(rev: str, folder: Path) -> Path:
    """The package as it was at ``rev``, in ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "batch_attend"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_repeat_option(parser, 5)
    parser.add_argument("--rows", type=int, default=1_000_000, help="phones (default 1000000)")
    parser.add_argument("--against", metavar="REV", help="also time the package at git REV")
    parser.add_argument("--quick", action="store_true", help="1 run of each (unless --repeat)")
    args = parser.parse_args(argv)
    args.repeat = repeats(args, 5)
    print_machine(f"phone rules over {args.rows:,} phones")
    with tempfile.TemporaryDirectory(prefix="bench-phones-") as tmp:
        versions = {"this tree": REPO}
        if args.against:
            versions[f"at {args.against}"] = extract(args.against, Path(tmp))
        runs: dict[str, list[dict]] = {name: [] for name in versions}
        names = list(versions)
        for rep in range(args.repeat):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                figures = measure(versions[name], args.rows)
                runs[name].append(figures)
                print(
                    f"  run {rep + 1}/{args.repeat} {name:<16} normalize_phones "
                    f"{figures['rule']:5.2f} s  validate {figures['validate']:5.2f} s  "
                    f"skip_duplicates {figures['duplicates']:5.2f} s  "
                    f"carry_over {figures['rerun']:5.2f} s",
                    flush=True,
                )
    print()
    print(f"Medians of {args.repeat} run(s), wall seconds for {args.rows:,} phones.")
    keys = ("rule", "validate", "duplicates", "rerun")
    table = []
    for name, figures in runs.items():
        seconds = [fmt(median([f[key] for f in figures]), 2) for key in keys]
        table.append([name, *seconds, f"{figures[0]['invalid']:,}"])
    headers = ["package", "normalize_phones s", "validate s", "skip_duplicates s"]
    print_table([*headers, "carry_over s", "invalid rows"], table)
    if args.against:
        now, before = (median([f["validate"] for f in runs[n]]) for n in names)
        print(f"validate, this tree / {names[1]}: {now / before:.2f} (target: at most 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
