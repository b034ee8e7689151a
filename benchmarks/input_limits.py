"""The input limits against the largest real inputs: what they inflate to, and the memory of a run.

Generates, in a temporary folder (deleted at the end unless --keep):

* a full worksheet: an XLSX of 1,048,576 rows (the header and 1,048,575 leads), as
  ``_common.write_leads`` writes it (inline strings: the largest XML for its cells);
* a CSV of 1,048,576 leads, as ``end_to_end.py --rows 1048576`` reads it;
* a CSV at the limits: 1,048,575 leads of 16 columns (as many cells as ``MAX_CELLS`` lets that
  many lines have), about 110 MiB (under ``MAX_TEXT_BYTES``);
* a workbook of 2 MiB whose one 1 MiB text fills 32,000 cells (31 GiB once parsed): refused;
* a CSV of 1,048,576 invalid rows (phone ``1``), with no target: what validation takes;

prints each file's size, and for the XLSX what its parts inflate to against
``MAX_INFLATED_BYTES``; then runs ``python -m batch_attend FILE --dry-run -q -o OUT/out.csv``
on each, as a subprocess, and reports wall seconds, the exit code, and two peaks of memory: the
process's own (``os.wait4`` ru_maxrss) and the sum over it and its children (the workbook is
parsed in a child), sampled every 10 ms with psutil. Every figure is the median of --repeat runs
(default 1). The target: the exit expected, and both peaks at most 1 GB (10^9 bytes).

    python benchmarks/input_limits.py              # about 2 minutes
    python benchmarks/input_limits.py --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO,
    add_repeat_option,
    fmt,
    lead_rows,
    median,
    print_machine,
    print_table,
    remove_outputs,
    repeats,
    write_leads,
)

sys.path.insert(0, str(REPO))
from batch_attend.reading import limits as reading

GB = 10**9
MIB = 1 << 20


def write_wide_csv(path: Path, rows: int, columns: int) -> Path:
    """``rows`` leads of ``columns`` columns: phone, operators, then five-letter codes."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Telefone", "Operadores", *(f"Campo{j}" for j in range(2, columns))])
        for i, lead in enumerate(lead_rows(rows)):
            codes = (f"c{(i + j) % 9999:04d}" for j in range(2, columns))
            writer.writerow([lead.normalized, lead.operators, *codes])
    return path


def write_shared_text_xlsx(path: Path) -> Path:
    """A workbook whose 1 MiB text, stored once, fills about 32,000 cells: 31 GiB once every
    cell holds its own copy, as calamine gives them. Refused by the parser's cap."""
    main = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    row = '<row><c t="s"><v>1</v></c></row>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{kind}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{kind}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{kind}.sharedStrings+xml"/>'
            "</Types>",
        )
        z.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" '
            f'Type="{rels}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        z.writestr(
            "xl/workbook.xml",
            f'<workbook {main} xmlns:r="{rels}"><sheets>'
            '<sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{package}">'
            f'<Relationship Id="rId1" Type="{rels}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{rels}/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>",
        )
        text = "9" * MIB
        z.writestr("xl/sharedStrings.xml", f"<sst {main}><si><t>Telefone</t></si><si><t>{text}</t></si></sst>")  # fmt: skip
        rows = row * (MIB // len(row))
        z.writestr("xl/worksheets/sheet1.xml", f"<worksheet {main}><sheetData>{rows}</sheetData></worksheet>")  # fmt: skip
    return path


def write_invalid_csv(path: Path, rows: int) -> Path:
    """``rows`` rows whose phone is ``1``: every one invalid."""
    path.write_bytes(b"Telefone\n" + b"1\n" * rows)
    return path


def run_sampled(cmd: list[str], cwd: Path, timeout: float) -> tuple[float, int, float, float]:
    """Run ``cmd``: wall seconds, exit code, its own peak RSS and the peak of the sum over it and
    its children (MiB)."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    peak_tree = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            with contextlib.suppress(psutil.Error):  # a process may end while it is looked at
                total = 0
                for p in [parent, *parent.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                peak_tree = max(peak_tree, total)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return wall, proc.returncode, usage.ru_maxrss / 1024, peak_tree / MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Peak memory of `batch-attend FILE --dry-run` on the largest inputs the "
        "limits accept, and what the largest workbook inflates to."
    )
    add_repeat_option(parser, 1)
    parser.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before a run is killed (default 600)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated files (their folder is printed)"
    )
    args = parser.parse_args(argv)
    args.repeat = repeats(args, 1)

    print_machine("batch-attend input limits: the largest inputs accepted")
    limits = [
        ("MAX_ROWS", f"{reading.MAX_ROWS:,} data rows"),
        ("MAX_CELLS", f"{reading.MAX_CELLS:,} cells"),
        ("MAX_TEXT_BYTES", f"{reading.MAX_TEXT_BYTES / MIB:,.1f} MiB"),
        ("MAX_INFLATED_BYTES", f"{reading.MAX_INFLATED_BYTES / MIB:,.1f} MiB"),
        ("WORKBOOK_MEMORY", f"{reading.WORKBOOK_MEMORY / MIB:,.1f} MiB"),
    ]
    print_table(["limit", "value"], limits)
    tmp = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    rows_out = []
    failed = False
    try:
        rows_per_sheet = 1_048_576
        cells_rows = reading.MAX_CELLS // 16 - 1  # the header is a line too
        shared = MIB // len('<row><c t="s"><v>1</v></c></row>')
        # (file, data rows, the exit expected; None: no target)
        files = [
            (write_leads(tmp / "full-sheet.xlsx", rows_per_sheet - 1), rows_per_sheet - 1, 0),
            (write_leads(tmp / "leads.csv", rows_per_sheet), rows_per_sheet, 0),
            (write_wide_csv(tmp / "at-the-limits.csv", cells_rows, 16), cells_rows, 0),
            (write_shared_text_xlsx(tmp / "shared-text.xlsx"), shared, 2),
            (write_invalid_csv(tmp / "invalid.csv", rows_per_sheet), rows_per_sheet, None),
        ]
        sizes = []
        for path, rows, _target in files:
            size = path.stat().st_size
            inflated = "-"
            if path.suffix == ".xlsx":
                with zipfile.ZipFile(path) as archive:
                    total = sum(m.file_size for m in archive.infolist())
                inflated = f"{total / MIB:,.1f} MiB ({total / reading.MAX_INFLATED_BYTES:.0%})"
            text = f"{size / MIB:,.1f} MiB"
            if path.suffix == ".csv":
                text += f" ({size / reading.MAX_TEXT_BYTES:.0%})"
            sizes.append([path.name, f"{rows:,}", text, inflated])
        print_table(
            ["file", "data rows", "size (of the limit)", "inflates to (of the limit)"], sizes
        )

        out = tmp / "out.csv"
        for path, rows, expected in files:
            runs = []
            for rep in range(args.repeat):
                cmd = [sys.executable, "-m", "batch_attend", str(path), "--dry-run", "-q"]
                runs.append(run_sampled([*cmd, "-o", str(out)], tmp, args.timeout))
                remove_outputs(out, path)
                wall, code, own, tree = runs[-1]
                print(
                    f"  run {rep + 1}/{args.repeat} {path.name:<18} {wall:6.2f} s exit {code} "
                    f"peak {own:7.1f} MiB, with children {tree:7.1f} MiB",
                    flush=True,
                )
            own = median([r[2] for r in runs])
            tree = median([r[3] for r in runs])
            codes = sorted({r[1] for r in runs})
            met = codes == [expected] and max(own, tree) * MIB <= GB
            failed |= expected is not None and not met
            rows_out.append(
                [
                    path.name,
                    f"{rows:,}",
                    fmt(median([r[0] for r in runs]), 2),
                    ",".join(map(str, codes)),
                    f"{own:,.1f} MiB = {own * MIB / 1e6:,.0f} MB",
                    f"{tree:,.1f} MiB = {tree * MIB / 1e6:,.0f} MB",
                    "(none)" if expected is None else "yes" if met else "NO",
                ]
            )
    finally:
        if args.keep:
            print(f"kept the generated files in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(
        f"Medians of {args.repeat} run(s) of --dry-run; target: the exit expected (2 for "
        "shared-text.xlsx, refused; 0 for the others), both peaks at most 1 GB; invalid.csv has "
        "none: it shows what validating a sheet of invalid rows takes."
    )
    print_table(
        ["file", "data rows", "wall s", "exit", "peak RSS", "peak RSS with children", "met"],
        rows_out,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
