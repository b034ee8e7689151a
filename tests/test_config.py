"""batch-attend.toml and --config hold every option but the token; the command line wins."""

import pytest

from batch_attend.cli import cli
from tests.conftest import TOKEN, read_results_csv, write_csv

ROWS = [["Telefone", "Operadores"], ["44999990001", ""], ["44999990002", ""]]


def test_config_in_the_working_directory_and_command_line_winning(
    runner, sandbox, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "leads.csv", ROWS)
    (tmp_path / "batch-attend.toml").write_text(
        f'base-url = "{sandbox.base_url}"\n'
        'output = "from-config.csv"\n'
        'operator = ["OP-ANA"]\n'
        "concurrency = 2\n"
        f'token_file = "{tmp_path / "token.txt"}"\n'
    )
    (tmp_path / "token.txt").write_text(TOKEN + "\n")
    result = runner.invoke(cli, ["leads.csv"], env={"PLUGCHAT_TOKEN": None})
    assert result.exit_code == 0, result.stderr
    assert [r["operators"] for r in read_results_csv(tmp_path / "from-config.csv")] == [
        "OP-ANA"
    ] * 2
    result = runner.invoke(
        cli,
        ["leads.csv", "-o", "cli.csv", "--operator", "OP-BRUNO", "--fresh"],
        env={"PLUGCHAT_TOKEN": None},
    )
    assert result.exit_code == 0, result.stderr
    assert [e["operators"] for e in sandbox.state.log[2:]] == [["OP-BRUNO"]] * 2


def test_config_option_points_elsewhere(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    config = tmp_path / "nightly.toml"
    config.write_text(f'base_url = "{sandbox.base_url}"\ndry_run = true\noperator = ["OP-ANA"]\n')
    result = runner.invoke(
        cli, [str(leads), "--config", str(config), "-o", str(tmp_path / "r.csv")]
    )
    assert result.exit_code == 0, result.stderr
    assert {r["status"] for r in read_results_csv(tmp_path / "r.csv")} == {"skipped"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f'token = "{TOKEN}"\n', "the token may not be stored in a config file"),
        ("concurrncy = 4\n", "unknown option 'concurrncy'"),
        ("concurrency = [\n", "not valid TOML"),
        ('concurrency = "many"\n', "many"),
    ],
)
def test_bad_config_files_are_refused(runner, tmp_path, content, message):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    config = tmp_path / "c.toml"
    config.write_text(content)
    result = runner.invoke(cli, [str(leads), "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert TOKEN not in result.stderr


def test_environment_beats_config_for_the_base_url(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    config = tmp_path / "c.toml"
    config.write_text('base-url = "http://127.0.0.1:9/api/integrations"\noperator = ["OP-ANA"]\n')
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    result = runner.invoke(
        cli, [str(leads), "--config", str(config), "-o", str(tmp_path / "r.csv")], env=env
    )
    assert result.exit_code == 0, result.stderr


def test_help_says_the_command_line_wins(runner):
    assert "command line wins" in runner.invoke(cli, ["--help"]).stdout
