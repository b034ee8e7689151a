"""Shared fixtures: a sandbox per test on 127.0.0.1, and helpers that write input files."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import xlsxwriter
from click.testing import CliRunner

from batch_attend.sandbox import SandboxServer, SandboxState

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
TOKEN = "tok-SECRET-7f3a9c21"
PYTHON = [sys.executable, "-m", "batch_attend"]


@pytest.fixture(autouse=True)
def english_messages(monkeypatch):
    """Tests assert English messages unless they ask otherwise, whatever the machine's locale."""
    from batch_attend import i18n

    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.setenv(name, "C")
    i18n.set_language("en", {})
    yield
    i18n.set_language("en", {})


@pytest.fixture
def sao_paulo(monkeypatch):
    """This process in Brasília time (UTC-3), as the machines of the page's users are."""
    import time

    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


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


def phone_of(raw: str, country_code: str = "55") -> tuple[str, str]:
    """What the phone rule makes of one cell: the digits to send, and why not (rendered)."""
    import pandas as pd

    from batch_attend import sentences
    from batch_attend.leads import normalize_phones

    got = normalize_phones(pd.Series([raw], dtype=str), country_code).iloc[0]
    return got["phone"], sentences.render(got["error"])


def said(message: str) -> str:
    """A kept message, rendered as a person reads it."""
    from batch_attend import sentences

    return sentences.render(message)


def table_rows(table) -> list[list[str]]:
    """The data rows of a table :func:`batch_attend.reading.read_table` read, as lists of text."""
    return table.frame.values.tolist()


def read_results_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def clean_env(**extra) -> dict:
    """The environment for a subprocess run, without any PLUGCHAT_ variable of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGCHAT_")}
    env.update(extra)
    return env


@contextlib.contextmanager
def standalone_sandbox(*args: str):
    """``batch-attend sandbox --port 0`` in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [*PYTHON, "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/api/integrations)", line)
        assert match, line + proc.stderr.read()
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
