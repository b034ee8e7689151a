"""Shared fixtures: a sandbox per test on 127.0.0.1, and helpers that write input files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import xlsxwriter
from click.testing import CliRunner

from batch_attend.sandbox import SandboxServer, SandboxState

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
TOKEN = "tok-SECRET-7f3a9c21"


@pytest.fixture
def sandbox():
    """A fresh PlugChat stand-in that accepts ``TOKEN``; its ``state`` records everything."""
    with SandboxServer(SandboxState(token=TOKEN)) as server:
        yield server


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write_csv(
    path: Path, rows: list[list[str]], encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    with open(path, "w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Leads") -> Path:
    book = xlsxwriter.Workbook(path)
    ws = book.add_worksheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, int | float):
                ws.write_number(r, c, value)
            elif value is not None:
                ws.write_string(r, c, value)
    book.close()
    return path


def read_results_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))
