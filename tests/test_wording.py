"""What people read: no hidden command in a hint, one help in both languages, options from the
config file as they would write them, names not sent as IDs."""

from __future__ import annotations

import csv

from batch_attend.cli import cli
from batch_attend.directory import looks_like_id
from tests.conftest import TOKEN, read_results_csv, write_csv


def test_usage_errors_never_name_the_hidden_run_command(runner, tmp_path):
    result = runner.invoke(cli, [str(tmp_path / "leads.csv"), "--bogus"], prog_name="batch-attend")
    assert result.exit_code == 2
    assert "Try 'batch-attend --help'" in result.stderr
    assert "batch-attend run" not in result.stderr + result.stdout


def test_help_is_the_same_in_both_languages_with_the_other_commands(runner):
    english = runner.invoke(cli, ["--lang", "en", "--help"], prog_name="batch-attend").stdout
    portuguese = runner.invoke(cli, ["--lang", "pt_BR", "--help"], prog_name="batch-attend").stdout
    assert "Other commands" in english and "Outros comandos" in portuguese

    def options(text: str) -> list[str]:
        return [line.split()[0] for line in text.splitlines() if line.startswith("  -")]

    assert options(english) == options(portuguese) and len(options(english)) > 30
    assert "batch-attend run" not in english + portuguese


def test_a_single_operator_in_the_config_file_is_one_operator(runner, sandbox, tmp_path):
    (tmp_path / "batch-attend.toml").write_text('operator = "OP-ANA"\n')
    leads = write_csv(tmp_path / "leads.csv", [["Telefone"], ["5544999990001"]])
    result = runner.invoke(
        cli,
        [
            str(leads),
            "-o",
            str(tmp_path / "r.csv"),
            "--config",
            str(tmp_path / "batch-attend.toml"),
        ],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    assert result.exit_code == 0, result.stderr
    assert read_results_csv(tmp_path / "r.csv")[0]["operators"] == "OP-ANA"


def test_without_a_ticket_names_and_logins_are_not_sent_as_ids(runner, sandbox, tmp_path):
    rows = [["Telefone", "Operadores"], ["5544999990001", "Ana"], ["5544999990002", "bruno.lima"]]
    rows.append(["5544999990003", "OP-ANA"])
    leads = write_csv(tmp_path / "leads.csv", rows)
    result = runner.invoke(
        cli,
        [str(leads), "-o", str(tmp_path / "r.csv")],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    assert result.exit_code == 1, result.stderr
    statuses = [r["status"] for r in read_results_csv(tmp_path / "r.csv")]
    assert statuses == ["invalid", "invalid", "started"]
    assert "--no-lookup" in read_results_csv(tmp_path / "r.csv")[0]["error"]
    assert set(sandbox.state.starts) == {"5544999990003"}


def test_what_looks_like_an_id():
    ids = ["OP-ANA", "52a8dce4-b49c-4936-ad8c-2c9e103b43", "op1", "DEP-9", "12345"]
    names = ["Ana", "bruno.lima", "Ana Souza", "ana@empresa.com.br", "carla", ""]
    assert all(looks_like_id(v) for v in ids)
    assert not any(looks_like_id(v) for v in names)


WORDS = ["João", "Conceição", "Ação", "São", "Araújo", "Ribeirão", "Lúcia", "Usuário", "Cajá"]


def test_a_short_windows_excel_csv_keeps_every_accent(runner, sandbox, tmp_path):
    """Five lines of cp1252: the accents are Portuguese letters, not a DOS or Mac code page's."""
    for word in WORDS:
        lines = ["Nome;Telefone;Operadores"]
        lines += [f"{word} {i};(44) 99999-000{i};OP-ANA" for i in range(1, 5)]
        source = tmp_path / "leads.csv"
        source.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
        out = tmp_path / f"r-{WORDS.index(word)}.csv"
        result = runner.invoke(
            cli,
            [str(source), "-o", str(out), "--dry-run"],
            env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
        )
        assert result.exit_code == 0, result.stderr
        with open(out, encoding="utf-8-sig", newline="") as fh:  # results keep the input's ;
            names = [r["Nome"] for r in csv.DictReader(fh, delimiter=";")]
        assert names == [f"{word} {i}" for i in range(1, 5)], word


def test_clicks_own_words_are_portuguese_too(runner, tmp_path):
    error = runner.invoke(cli, ["--lang", "pt_BR", str(tmp_path / "x.csv"), "--bogus"])
    assert "Erro: A opção '--bogus' não existe." in error.stderr
    assert "Você quis dizer '--verbose'?" in error.stderr
    helped = runner.invoke(cli, ["--lang", "pt_BR", "--help"]).stdout
    assert "[padrão:" in helped and "[default:" not in helped


def test_one_row_left_is_one_row_in_both_languages(runner, tmp_path):
    from tests.scripted import ScriptedServer, reply

    leads = write_csv(tmp_path / "leads.csv", [["Telefone", "Operadores"], ["5544999990001", "OP"]])
    with ScriptedServer() as server:
        server.handler = reply(401, "no")
        env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": server.origin + "/api/integrations"}
        english = runner.invoke(cli, [str(leads), "-o", str(tmp_path / "r.csv")], env=env)
        portuguese = runner.invoke(
            cli, ["--lang", "pt_BR", str(leads), "-o", str(tmp_path / "r.csv")], env=env
        )
    assert english.exit_code == 3 and "1 row is marked skipped" in english.stderr
    assert "1 linha fica como não enviada" in portuguese.stderr
