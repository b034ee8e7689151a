"""--help and --version answer at once: they import none of the heavy libraries."""

import subprocess
import sys

import pytest

HEAVY = (
    "pandas",
    "polars",
    "numpy",
    "aiohttp",
    "httpx",
    "xlsxwriter",
    "python_calamine",
    "sqlite3",
)


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["check", "--help"], ["sandbox", "--help"]]
)
def test_help_and_version_import_nothing_heavy(args):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "batch_attend", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if "|" in line
    }
    assert "batch_attend" in imported  # the measurement itself works
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
