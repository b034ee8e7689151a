"""Messages in Portuguese for a pt_BR locale (or --lang), results files always in English."""

import sys

import pytest

from batch_attend import i18n
from batch_attend.cli import cli
from tests.conftest import REPO, TOKEN, read_results_csv, write_csv

ROWS = [["Telefone", "Operadores"], ["44999990001", "OP-ANA"], ["123", "OP-ANA"]]


def locale(lang: str) -> dict:
    """A user's environment with only LANG set (LC_ALL and LC_MESSAGES would win over it)."""
    return {"LC_ALL": None, "LC_MESSAGES": None, "LANGUAGE": None, "LANG": lang}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"LANG": "pt_BR.UTF-8"}, "pt_BR"),
        ({"LC_ALL": "pt_BR.utf8", "LANG": "en_US.UTF-8"}, "pt_BR"),
        ({"LC_ALL": "en_US.UTF-8", "LANG": "pt_BR.UTF-8"}, "en"),
        ({"LC_MESSAGES": "pt_PT", "LANG": "C"}, "pt_BR"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_language_from_the_locale(environ, expected):
    assert i18n.language_from(environ) == expected


def run(runner, sandbox, tmp_path, *args, lang="pt_BR.UTF-8"):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url, **locale(lang)}
    return runner.invoke(cli, [str(leads), "-o", str(tmp_path / "r.csv"), *args], env=env)


def test_summary_in_portuguese_results_in_english(runner, sandbox, tmp_path):
    result = run(runner, sandbox, tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("2 linhas: 1 iniciada, 1 inválida em ")
    assert "Resultados: " in result.stderr
    rows = read_results_csv(tmp_path / "r.csv")
    assert list(rows[0])[2:5] == ["row", "phone", "status"]
    assert [r["status"] for r in rows] == ["started", "invalid"]
    assert rows[1]["error"].startswith("invalid_phone: '123' has 3 digits")


def test_lang_option_wins_over_the_locale(runner, sandbox, tmp_path):
    result = run(runner, sandbox, tmp_path, "--lang", "en")
    assert result.stderr.splitlines()[-1].startswith("2 rows: 1 started, 1 invalid in ")
    result = run(runner, sandbox, tmp_path, "--lang", "pt_BR", "--fresh", lang="C")
    assert result.stderr.splitlines()[0].startswith("batch-attend: --fresh: o registro esquecido")
    assert result.stderr.splitlines()[-1].startswith("2 linhas: ")


def test_errors_in_portuguese(runner, sandbox, tmp_path):
    env = {"PLUGCHAT_TOKEN": TOKEN, **locale("pt_BR.UTF-8")}
    result = runner.invoke(cli, [str(tmp_path / "faltando.csv")], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith("batch-attend: erro: ")
    assert "faltando.csv" in result.stderr and "no such file" not in result.stderr


def test_help_in_portuguese(runner):
    text = runner.invoke(cli, ["check", "--help"], env=locale("pt_BR.UTF-8")).stdout
    assert text.startswith("Uso: ")
    assert "Opções" in text
    english = runner.invoke(cli, ["check", "--help"], env=locale("C")).stdout
    assert english.startswith("Usage: ") and english != text


def test_check_report_in_portuguese(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url, **locale("pt_BR.UTF-8")}
    result = runner.invoke(cli, ["check", str(leads)], env=env)
    assert result.exit_code == 1
    assert "Token: aceito" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == "Pronto: não"


def test_catalog_translates_every_message():
    sys.path.insert(0, str(REPO / "tools"))
    import catalog

    assert catalog.problems() == []


def test_installed_package_carries_the_catalogs():
    """pip install . (not only -e) must ship the compiled catalog, or Portuguese silently fails."""
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["batch_attend"]
    compiled = [
        str(p.relative_to(REPO / "batch_attend")) for p in (REPO / "batch_attend").rglob("*.mo")
    ]
    assert compiled
    assert all(any(fnmatch.fnmatch(mo, pattern) for pattern in patterns) for mo in compiled)


@pytest.mark.parametrize("lang", [["--lang", "pt_BR"], ["--lang=pt_BR"]])
def test_lang_may_come_before_the_command(runner, sandbox, tmp_path, lang):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url, **locale("C")}
    result = runner.invoke(cli, [*lang, "check", str(leads)], env=env)
    assert result.exit_code == 1, result.output
    assert result.stdout.rstrip().splitlines()[-1] == "Pronto: não"


def test_click_usage_errors_in_portuguese(runner, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    result = runner.invoke(cli, [str(leads), "extra", "--lang", "pt_BR"], env=locale("C"))
    assert result.exit_code == 2
    assert "Erro: Argumento extra inesperado (extra)" in result.stderr


@pytest.mark.parametrize(
    "args", [["--help", "--lang", "pt_BR"], ["--lang", "pt_BR", "--help"], ["-h", "--lang=pt_BR"]]
)
def test_the_main_help_in_portuguese_wherever_lang_is_given(runner, args):
    result = runner.invoke(cli, args, env=locale("C"), prog_name="batch-attend")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Uso: batch-attend [OPTIONS] INPUT")
    assert "Outros comandos:" in result.stdout


def test_the_summary_and_closing_message_write_numbers_as_the_reader_does():
    """A Brazilian reads 20,000 as twenty: counts, seconds and rates in the reader's locale."""
    from collections import Counter

    from batch_attend.outcomes import ErrorCode, RunSummary, Stop
    from batch_attend.results import format_summary
    from batch_attend.run import closing_message

    summary = RunSummary(
        counts=Counter(started=10843, invalid=1000, skipped=8157),
        error_counts=Counter({ErrorCode.INTERRUPTED: 8157}),
        elapsed=29.44,
        decided_rows=10843,
        output="r.csv",
        stop=Stop.SIGINT,
    )
    english = format_summary(summary)
    assert english.startswith("20,000 rows: 10,843 started, 1,000 invalid, 8,157 skipped in 29.4 s")
    assert "(368.3 rows/s)" in english
    with i18n.speaking("pt_BR"):
        said = format_summary(summary)
        closing = closing_message(summary, None)
    assert said.startswith(
        "20.000 linhas: 10.843 iniciadas, 1.000 inválidas, 8.157 não enviadas em 29,4 s"
    )
    assert "(368,3 linhas/s)" in said
    assert "8.157 linhas não terminadas" in closing
