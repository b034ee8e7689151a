"""batch-attend runs where ops teams work: nothing POSIX-only without a portable path.

Each test runs the tool in a fresh interpreter where the POSIX-only modules cannot be imported
(fcntl, termios, pwd, resource, uvloop, …) and the event loop has no signal handlers, as on
Windows: every module imports, a sandbox batch runs, and Ctrl-C still stops a run cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from tests.conftest import (
    REPO,
    SAMPLES,
    TOKEN,
    clean_env,
    read_results_csv,
    standalone_sandbox,
    write_csv,
)
from tests.test_interrupt import wait_for_requests

WITHOUT_POSIX = textwrap.dedent(
    """
    import asyncio, asyncio.unix_events, importlib.abc, sys

    POSIX_ONLY = {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog", "uvloop"}

    class Unavailable(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in POSIX_ONLY:
                raise ImportError(f"{name} is not available on this platform")

    for name in [m for m in sys.modules if m.split(".")[0] in POSIX_ONLY]:
        del sys.modules[name]
    sys.meta_path.insert(0, Unavailable())

    def no_signal_handlers(self, *args, **kwargs):
        raise NotImplementedError  # what asyncio's loops on Windows do

    asyncio.AbstractEventLoop.add_signal_handler = no_signal_handlers
    asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = no_signal_handlers

    # Windows' own module in its place: the ledger is locked through it, far past SQLite's bytes.
    import types
    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_NBLCK, msvcrt.locked = 2, []
    msvcrt.locking = lambda fd, mode, size: msvcrt.locked.append(__import__("os").lseek(fd, 0, 1))
    sys.modules["msvcrt"] = msvcrt
    """
)


def run_without_posix(code: str, *args: str, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", WITHOUT_POSIX + textwrap.dedent(code), *args],
        cwd=kwargs.pop("cwd", REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_every_module_imports_and_a_sandbox_batch_runs_without_posix_modules(tmp_path):
    proc = run_without_posix(
        f"""
        import importlib, io, pkgutil
        import batch_attend
        for module in pkgutil.iter_modules(batch_attend.__path__):
            importlib.import_module("batch_attend." + module.name)
        from batch_attend.env import Env
        from batch_attend.run import run_batch
        from batch_attend.settings import RunOptions
        options = RunOptions.build(input={str(SAMPLES / "leads.xlsx")!r}, output="r.csv", sandbox=True)
        report = run_batch(options, Env(stdout=io.StringIO(), stderr=io.StringIO(), environ={{}}))
        print(dict(report.summary.counts))
        print(sorted(m for m in sys.modules if m.split(".")[0] in POSIX_ONLY))
        print(msvcrt.locked)
        """,
        cwd=tmp_path,
    )
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    counts, posix_modules, locked = stdout.splitlines()
    assert locked == f"[{1 << 40}]"  # the ledger's lock, far past the bytes SQLite locks
    assert counts == "{'started': 9, 'invalid': 2, 'skipped': 1}"
    assert posix_modules == "[]"
    assert len(read_results_csv(tmp_path / "r.csv")) == 12


def test_ctrl_c_stops_a_run_cleanly_without_loop_signal_handlers(tmp_path):
    leads = write_csv(
        tmp_path / "leads.csv",
        [["Telefone", "Operadores"]] + [[f"55449{i:08d}", "OP-ANA"] for i in range(60)],
    )
    out = tmp_path / "r.csv"
    with standalone_sandbox("--token", TOKEN, "--latency", "0.2") as base_url:
        proc = run_without_posix(
            "from batch_attend.cli import main; sys.argv[0] = 'batch-attend'; main()",
            str(leads), "-o", str(out), "-c", "2",
            env=clean_env(PLUGCHAT_TOKEN=TOKEN, PLUGCHAT_BASE_URL=base_url),
        )  # fmt: skip
        wait_for_requests(base_url, 4)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10
    assert "Run the same command again to resume" in stderr
    rows = read_results_csv(out)
    assert len(rows) == 60 and {r["status"] for r in rows} == {"started", "skipped"}
