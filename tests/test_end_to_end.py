"""The installed command in real subprocesses, talking to the sandbox over loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import openpyxl

from tests.conftest import PYTHON, SAMPLES, clean_env, read_results_csv, standalone_sandbox


def test_samples_on_the_builtin_sandbox(tmp_path):
    out = tmp_path / "results.xlsx"
    proc = subprocess.run(
        [*PYTHON, str(SAMPLES / "leads.xlsx"), "-o", str(out), "--sandbox"],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # two sample rows are invalid on purpose
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith("12 rows: 9 started, 2 invalid, 1 skipped in ")
    sheet = openpyxl.load_workbook(out)["Results"]
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    status = {r[header.index("row")]: r[header.index("status")] for r in rows[1:]}
    assert status == {
        2: "started", 3: "started", 4: "started", 5: "started", 6: "started", 7: "invalid",
        8: "invalid", 9: "skipped", 10: "started", 11: "started", 12: "started", 13: "started",
    }  # fmt: skip
    by_row = {r[header.index("row")]: r for r in rows[1:]}
    assert by_row[13][header.index("phone")] == "5511912345678"  # a number cell in the workbook
    assert by_row[3][header.index("phone")] == "554488887777"  # no ninth digit: sent as written


def test_standalone_sandbox_and_a_real_run(tmp_path):
    with standalone_sandbox("--token", "team-rehearsal") as base_url:
        out = tmp_path / "results.csv"
        env = clean_env(PLUGCHAT_TOKEN="team-rehearsal", PLUGCHAT_BASE_URL=base_url)
        first = subprocess.run(
            [*PYTHON, str(SAMPLES / "leads.csv"), "-o", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert first.returncode == 1, first.stderr
        assert [r["status"] for r in read_results_csv(out)].count("started") == 9
        second = subprocess.run(
            [*PYTHON, str(SAMPLES / "leads.csv"), "-o", str(out), "--fresh"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert second.returncode == 1
        rows = read_results_csv(out)
        assert [r["status"] for r in rows].count("already_in_service") == 9
        with urllib.request.urlopen(
            base_url.replace("/api/integrations", "/_sandbox/state")
        ) as resp:
            state = json.load(resp)
        assert set(state["starts"].values()) == {1} and len(state["starts"]) == 9


def test_wrong_token_against_standalone_sandbox_exits_3(tmp_path):
    with standalone_sandbox() as base_url:
        env = clean_env(PLUGCHAT_TOKEN="not-the-sandbox-token", PLUGCHAT_BASE_URL=base_url)
        proc = subprocess.run(
            [*PYTHON, str(SAMPLES / "leads.csv"), "-o", str(tmp_path / "r.csv")],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 3
    assert "refused the token" in proc.stderr
    assert "not-the-sandbox-token" not in proc.stderr + proc.stdout
    assert "not-the-sandbox-token" not in (tmp_path / "r.csv").read_text(encoding="utf-8-sig")


def test_console_script_and_module_agree():
    script = Path(sys.executable).parent / "batch-attend"  # installed beside this Python
    for command in ([str(script), "--version"], [*PYTHON, "--version"]):
        proc = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0
        assert proc.stdout.startswith("batch-attend, version ")
