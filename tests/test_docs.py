"""The README is part of the product: what it promises is checked against the code."""

import re

import click
import pytest

from batch_attend.cli import cli
from batch_attend.outcomes import ErrorCode, ExitStatus, RowStatus
from batch_attend.results import RESULT_COLUMNS
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section '{title}'"
    return match.group(1)


def test_exit_code_table_matches_the_enum():
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section("Exit codes"), re.M)
    assert sorted(int(code) for code, _ in rows) == sorted(int(s) for s in ExitStatus)


def test_results_contract_table_matches_the_writer():
    columns = re.findall(r"^\| `(\w+)` \|", section("Results"), re.M)
    assert tuple(columns) == RESULT_COLUMNS
    for status in RowStatus:
        assert f"`{status}`" in section("Results")


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_is_documented(code):
    assert f"`{code}`" in README


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_and_option_is_documented(name):
    command = cli.commands[name]
    assert command.help, f"{name} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}" in README or f" {opt}" in README, f"{opt} is not in the README"
    assert f"batch-attend {name}" in README or name == "run"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"^python3 -m venv \.venv && (.+)$", section("Set-up"), re.M)
    assert len(commands) == 2, "the README must hold exactly the two set-up commands"
    ci = (REPO / ".ci" / "run").read_text()
    for step in commands[1].split(" && "):
        assert step in ci, f"'{step}' from the README is not run by .ci/run"
