"""Helpers shared by the benchmark scripts: the machine, the server, subprocesses, leads, tables.

Every load stays on 127.0.0.1, every subprocess is bounded in time and stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import os
import platform
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import NamedTuple, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SERVER_SCRIPT = HERE / "server.py"
T = TypeVar("T")

PACKAGES = (
    "batch-attend",
    "aiohttp",
    "pandas",
    "python-calamine",
    "uvloop",
    "httptools",
)


# --- the machine ---------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    fields = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "hardware", "cpu model", "cpu"):
        if key in fields:
            return fields[key]
    return platform.processor() or platform.machine() or "unknown"


def ram_total_gb() -> float | None:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024  # kB → GiB
    return None


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info(extra_packages: Sequence[str] = ()) -> list[tuple[str, str]]:
    """What the figures were measured on, as (label, value) pairs; ``extra_packages`` are
    versions to show beside :data:`PACKAGES` (``httpx`` for ``http_clients.py``)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    ram = ram_total_gb()
    try:
        load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "unknown"
    info = [
        ("CPU", cpu_model()),
        ("nproc", f"{usable} usable of {os.cpu_count()}"),
        ("RAM", f"{ram:.1f} GiB" if ram is not None else "unknown"),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    info += [(name, package_version(name)) for name in (*PACKAGES, *extra_packages)]
    info.append(("load average", f"{load} (1, 5, 15 min, at start)"))
    return info


def print_machine(title: str, extra_packages: Sequence[str] = ()) -> None:
    """The machine block every script prints first."""
    print(f"== {title} ==")
    print(f"   {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    info = machine_info(extra_packages)
    width = max(len(label) for label, _ in info)
    for label, value in info:
        print(f"   {label:<{width}}  {value}")
    print(flush=True)


# --- numbers and tables --------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median (not the best) of repeated measurements."""
    if not values:
        raise ValueError("median of nothing")
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median, third quartile (the median alone for a single value)."""
    if len(values) < 2:
        middle = median(values)
        return middle, middle, middle
    return tuple(statistics.quantiles(values, n=4, method="inclusive"))


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """An aligned text table: text columns to the left, numbers to the right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def numeric(text: str) -> bool:
        number, _, unit = text.partition(" ")
        if unit not in ("", "ms", "s", "MB", "MiB", "GB"):
            return False
        stripped = number.replace(",", "").replace(".", "").replace("%", "").replace("x", "")
        return stripped.lstrip("+-").isdigit()

    def line(row: Sequence[str]) -> str:
        parts = []
        for text, width in zip(row, widths, strict=True):
            parts.append(text.rjust(width) if numeric(text) else text.ljust(width))
        return " | ".join(parts).rstrip()

    print(line(cells[0]))
    print("-+-".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
    print(flush=True)


# --- the benchmark server ------------------------------------------------------------------


@contextlib.contextmanager
def bench_server(latency: float, startup_timeout: float = 20.0) -> Iterator[str]:
    """Start ``server.py --latency LATENCY``; yield its base URL; always stop it afterwards."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--latency", str(latency)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            line = _read_line(proc, startup_timeout)
            prefix = b"listening on "
            if not line.startswith(prefix):
                err.seek(0)
                raise RuntimeError(
                    f"benchmark server did not start (exit {proc.poll()}): "
                    f"{line!r} {err.read().decode(errors='replace')[-2000:]}"
                )
            yield line[len(prefix) :].strip().decode()
        finally:
            stop_process(proc)
            if proc.stdout is not None:
                proc.stdout.close()


def _read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    """The first line the process prints, or b"" when none comes within ``timeout``."""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return b""
    return proc.stdout.readline()


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaps the process."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(grace)


# --- measured subprocesses -----------------------------------------------------------------


class Measured(NamedTuple):
    wall: float  # seconds
    peak_rss_mb: float  # ru_maxrss of the child, MiB
    returncode: int
    stderr: str  # the last lines, to explain a failure
    cpu: float = 0.0  # user + system seconds of the child


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 600.0,
) -> Measured:
    """Run ``cmd``; its wall time, peak RSS (``os.wait4`` ru_maxrss), exit code and CPU time.

    Killed after ``timeout`` seconds (the exit code is then -9). stdout is discarded.
    """
    lock = threading.Lock()
    reaped = False

    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            cwd=cwd,
        )

        def kill() -> None:
            with lock:
                if not reaped:
                    os.kill(proc.pid, 9)

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
        finally:
            with lock:
                reaped = True
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    # Linux reports ru_maxrss in KiB.
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(wall, usage.ru_maxrss / 1024, proc.returncode, tail, cpu)


# --- leads ---------------------------------------------------------------------------------

HEADER = ("Nome", "Telefone", "Operadores", "Departamento", "Cidade")
FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Eduarda", "Fábio", "Gabriela", "João", "Márcia")
LAST_NAMES = ("Souza", "Lima", "Nogueira", "Araújo", "Oliveira", "Conceição", "Ribeiro")
OPERATORS = ("OP-ANA", "OP-BRUNO; OP-CARLA", "OP-CARLA", "OP-ANA, OP-BRUNO", "OP-BRUNO")
DEPARTMENTS = ("DEP-VENDAS", "DEP-SUPORTE", "")
CITIES = ("Maringá", "Londrina", "São Paulo", "Curitiba", "Goiânia", "Cascavel", "Niterói")
AREA_CODES = (11, 21, 41, 43, 44, 45, 47, 48, 51, 61, 62, 71, 81, 85)
NUMBERS_PER_AREA = 10**7
MAX_PHONE_NUMBER = len(AREA_CODES) * NUMBERS_PER_AREA
#: Ranges far apart, one per run: ``phone_start(k)`` is where run k's phones begin.
RANGE_STEP = 2_000_000


def phone_start(run: int) -> int:
    """The first phone number of run ``run``; ranges of up to 2,000,000 rows never overlap."""
    return (run * RANGE_STEP) % (MAX_PHONE_NUMBER - RANGE_STEP)


class LeadRow(NamedTuple):
    name: str
    phone: str | int  # as typed in the spreadsheet; an int is a number cell in XLSX
    operators: str
    department: str
    city: str
    normalized: str  # the digits batch-attend will send

    def body(self) -> dict:
        """The JSON body batch-attend sends for this row."""
        ops = [op.strip() for op in self.operators.replace(";", ",").split(",") if op.strip()]
        body: dict = {"phone": self.normalized, "operators": list(dict.fromkeys(ops))}
        if self.department:
            body["departmentId"] = self.department
        return body


def lead_rows(rows: int, start: int = 0) -> Iterator[LeadRow]:
    """``rows`` realistic leads; every phone is valid and unique (built from ``start + i``).

    Phone formats mix what ops spreadsheets hold: ``(44) 99xxx-xxxx``, ``5544991234567``,
    ``+55 44 99xxx-xxxx``, ``44 99xxx xxxx``, ``554431234567`` and ``044 3xxx-xxxx``;
    normalized they are 13-digit mobiles or 12-digit landlines.
    """
    if start < 0 or start + rows > MAX_PHONE_NUMBER:
        raise ValueError(f"phone numbers {start}..{start + rows} out of range")
    for i in range(rows):
        number = start + i
        area = AREA_CODES[number // NUMBERS_PER_AREA]
        sub = f"{number % NUMBERS_PER_AREA:07d}"
        kind = i % 6
        if kind < 4:
            mobile = "99" + sub  # 9 digits
            normalized = f"55{area}{mobile}"
            phone: str | int = (
                f"({area}) {mobile[:5]}-{mobile[5:]}",
                int(normalized),
                f"+55 {area} {mobile[:5]}-{mobile[5:]}",
                f"{area} {mobile[:5]} {mobile[5:]}",
            )[kind]
        else:
            landline = "3" + sub  # 8 digits
            normalized = f"55{area}{landline}"
            phone = int(normalized) if kind == 4 else f"0{area} {landline[:4]}-{landline[4:]}"
        yield LeadRow(
            f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {LAST_NAMES[(i // 9) % len(LAST_NAMES)]}",
            phone,
            OPERATORS[i % len(OPERATORS)],
            DEPARTMENTS[i % len(DEPARTMENTS)],
            CITIES[(i // 3) % len(CITIES)],
            normalized,
        )


def write_leads(path: str | Path, rows: int, start: int = 0) -> Path:
    """A leads file of ``rows`` data rows: CSV (UTF-8) or XLSX (xlsxwriter, constant memory),
    by the extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(HEADER)
            writer.writerows(
                (r.name, str(r.phone), r.operators, r.department, r.city)
                for r in lead_rows(rows, start)
            )
    elif suffix == ".xlsx":
        import xlsxwriter

        workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        try:
            sheet = workbook.add_worksheet("Leads")
            sheet.write_row(0, 0, HEADER)
            for i, r in enumerate(lead_rows(rows, start), start=1):
                sheet.write_string(i, 0, r.name)
                if isinstance(r.phone, int):
                    sheet.write_number(i, 1, r.phone)  # a phone typed as a number, as in life
                else:
                    sheet.write_string(i, 1, r.phone)
                sheet.write_string(i, 2, r.operators)
                if r.department:
                    sheet.write_string(i, 3, r.department)
                sheet.write_string(i, 4, r.city)
        finally:
            workbook.close()
    else:
        raise ValueError(f"write_leads: .csv or .xlsx, not {path.name}")
    return path


def request_bodies(rows: int, start: int = 0) -> list[dict]:
    """The JSON bodies batch-attend would send for ``write_leads(path, rows, start)``."""
    return [r.body() for r in lead_rows(rows, start)]


# --- in-process runs -----------------------------------------------------------------------


def take_turns(rep: int, tool: Callable[[], T], bare: Callable[[], T]) -> tuple[T, T]:
    """``(tool(), bare())``, run tool first on even repetitions and bare first on odd ones, so
    that neither always runs on a cooler machine."""
    if rep % 2:
        b = bare()
        return tool(), b
    t = tool()
    return t, bare()


class InProcess(NamedTuple):
    rows: int
    wall: float  # seconds
    cpu: float  # process CPU seconds (all threads)

    @property
    def rate(self) -> float:
        return self.rows / self.wall

    @property
    def cpu_ms_per_row(self) -> float:
        return self.cpu * 1000 / self.rows


def bare_send(url: str, bodies: Sequence[dict], concurrency: int, token: str = "bench") -> int:
    """The baseline: a plain aiohttp loop under uvloop, ``concurrency`` workers over one pool,
    posting ``bodies`` (JSON-encoded per request, as the tool does). Returns how many got
    ``true``."""
    import json

    import aiohttp
    import uvloop

    async def main() -> int:
        connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
        headers = {"Authorization": token, "Content-Type": "application/json"}
        ok = 0
        async with aiohttp.ClientSession(
            connector=connector, headers=headers, skip_auto_headers=("User-Agent",)
        ) as session:
            pending = iter(bodies)

            async def worker() -> None:
                nonlocal ok
                for body in pending:
                    data = json.dumps(body, ensure_ascii=False).encode()
                    async with session.post(url, data=data) as resp:
                        answer = await resp.read()
                    if resp.status == 200 and answer == b"true":
                        ok += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return ok

    return uvloop.run(main())


def measure_loop(
    send: Callable[[str, Sequence[dict], int], int],
    url: str,
    bodies: Sequence[dict],
    concurrency: int,
) -> InProcess:
    """Wall and CPU time of a bare loop ``send(url, bodies, concurrency)`` (it returns how many
    requests got ``true``); raises when one did not."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    ok = send(url, bodies, concurrency)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if ok != len(bodies):
        raise RuntimeError(f"{send.__name__}: {ok} of {len(bodies)} requests answered true")
    return InProcess(len(bodies), wall, cpu)


def measure_bare(url: str, bodies: Sequence[dict], concurrency: int) -> InProcess:
    """:func:`measure_loop` of :func:`bare_send`, the aiohttp loop."""
    return measure_loop(bare_send, url, bodies, concurrency)


def tool_options(
    leads: str | Path, output: str | Path, base_url: str, concurrency: int, **more: object
):
    """``RunOptions.build`` for a benchmark run: ``leads`` to ``output`` (``"-"``: CSV on the
    Env's stdout), token ``bench``, quiet, a fresh journal; ``more`` adds or overrides flat
    options (``rate=1000``, ``quiet=False``)."""
    from batch_attend.settings import RunOptions

    values: dict[str, object] = dict(
        input=Path(leads),
        output=str(output),
        token="bench",
        base_url=base_url,
        concurrency=concurrency,
        quiet=True,
        fresh=True,
    )
    values.update(more)
    return RunOptions.build(**values)


def quiet_env(stdout=None, stderr=None, *, stderr_isatty: bool = False):
    """An ``Env`` with no environment variables, and in-memory streams unless given."""
    from batch_attend.env import Env

    return Env(
        stdout=stdout if stdout is not None else io.StringIO(),
        stderr=stderr if stderr is not None else io.StringIO(),
        environ={},
        stderr_isatty=stderr_isatty,
    )


def measure_tool(options, env, rows: int) -> InProcess:
    """Wall and CPU time of ``run_batch(options, env)`` in this process; raises unless every
    row was started, each with exactly one request."""
    from batch_attend.run import run_batch

    wall0, cpu0 = time.perf_counter(), time.process_time()
    report = run_batch(options, env=env)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    summary = report.summary
    started = summary.counts.get("started", 0)
    if started != rows or summary.decided_rows != rows or summary.requests != rows:
        raise RuntimeError(
            f"batch-attend: {started} of {rows} rows started, {summary.decided_rows} decided in "
            f"{summary.requests} requests ({dict(summary.counts)}, exit {report.exit_status})"
        )
    return InProcess(rows, wall, cpu)


#: What batch-attend keeps beside a results file, or beside the input when results go to stdout:
#: the SQLite journal, its WAL and shared-memory files, and its lock.
JOURNAL_SUFFIXES = (".journal", ".journal-wal", ".journal-shm", ".journal.lock")


def remove_outputs(output: str | Path | None, *inputs: str | Path) -> None:
    """Delete a results file (``None`` or ``"-"``: there is none) and the journal files beside
    it, and the journal files beside each of ``inputs`` (``-o -`` keeps ``INPUT.journal``);
    the inputs themselves are left alone."""
    paths: list[Path] = []
    if output is not None and str(output) != "-":
        paths.append(Path(output))
        paths += [Path(str(output) + suffix) for suffix in JOURNAL_SUFFIXES]
    for path in inputs:
        paths += [Path(str(path) + suffix) for suffix in JOURNAL_SUFFIXES]
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


# --- the figures the project commits to ----------------------------------------------------


class Figure(NamedTuple):
    """One committed figure as a script measured it, for ``targets.py``'s table."""

    name: str
    measured: str
    target: str  # "" when the figure has no target
    met: bool | None  # None when the figure has no target


def add_repeat_option(parser, default: int, what: str = "runs per figure") -> None:
    """``--repeat N``, ``default`` unless ``--quick`` (then 1): see :func:`repeats`."""
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"{what}; the median is shown (default {default}; --quick: 1)",
    )


def repeats(args, default: int) -> int:
    """The runs ``--repeat`` and ``--quick`` ask for."""
    return args.repeat if args.repeat is not None else 1 if args.quick else default


def add_figures_option(parser) -> None:
    """``--figures-json PATH``: where ``targets.py`` collects a script's committed figures."""
    parser.add_argument("--figures-json", type=Path, default=None, help=argparse.SUPPRESS)


def save_figures(path: Path | None, figures: Sequence[Figure]) -> None:
    """Write ``figures`` as JSON to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    import json

    Path(path).write_text(json.dumps([f._asdict() for f in figures], ensure_ascii=False, indent=1))


def load_figures(path: Path) -> list[Figure]:
    import json

    return [Figure(**item) for item in json.loads(Path(path).read_text())]


def print_figures(figures: Sequence[Figure]) -> None:
    """The committed figures of this run: figure, measured, target, met."""
    print_table(
        ["figure", "measured", "target", "met"],
        [
            [f.name, f.measured, f.target or "(none)", {True: "yes", False: "NO", None: "-"}[f.met]]
            for f in figures
        ],
    )
