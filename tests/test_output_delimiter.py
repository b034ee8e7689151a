"""The delimiter of CSV results: the CSV input's, else ``;`` for Portuguese (Excel in Brazil),
else ``,``; ``--output-delimiter`` wins. Results so written read back as results."""

import csv

import pytest

from batch_attend import i18n
from batch_attend.cli import cli
from batch_attend.outcomes import RESULT_COLUMNS
from tests.conftest import TOKEN, write_csv, write_xlsx

GOOD = [
    ["Nome", "Telefone", "Operadores"],
    ["Ana; Maria", "(44) 99999-9999", "OP-ANA"],
    ["Bia", "554499999998", "OP-BRUNO"],
]


def invoke(runner, sandbox, args, **env):
    environ = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url, **env}
    return runner.invoke(cli, args, env=environ, catch_exceptions=False)


def lines_of(path):
    return path.read_bytes().decode("utf-8-sig").splitlines()


def rows_of(path, delimiter):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def test_the_choice_in_one_place():
    from batch_attend.results import csv_delimiter

    assert csv_delimiter("|", ";") == "|"
    assert csv_delimiter(None, "\t") == "\t"
    assert csv_delimiter(None, None) == ","
    i18n.set_language("pt_BR", {})
    assert csv_delimiter(None, None) == ";"
    assert csv_delimiter(None, ",") == ","


@pytest.mark.parametrize(
    ("delimiter", "given"), [(";", []), ("\t", []), ("|", ["--delimiter", "pipe"])]
)
def test_csv_input_gives_results_with_its_delimiter(runner, sandbox, tmp_path, delimiter, given):
    leads = write_csv(tmp_path / "leads.csv", GOOD, delimiter=delimiter)
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out), *given]).exit_code == 0
    header, first, _second = lines_of(out)
    assert header == delimiter.join(["Nome", "Telefone", "Operadores", *RESULT_COLUMNS])
    # Text cells quoted as ever (a delimiter inside one too), numbers bare.
    cells = ['"Ana; Maria"', '"(44) 99999-9999"', '"OP-ANA"', "2", '"5544999999999"']
    cells += ['"started"', '""', '"OP-ANA"', "200", '""', "1", '"']
    assert first.startswith(delimiter.join(cells))


@pytest.mark.parametrize(
    ("language", "delimiter"),
    [(["--lang", "pt_BR"], ";"), ([], ","), (["--lang", "en"], ",")],
)
def test_workbook_input_gives_semicolons_in_portuguese(
    runner, sandbox, tmp_path, language, delimiter
):
    leads = write_xlsx(tmp_path / "leads.xlsx", GOOD)
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out), *language]).exit_code == 0
    assert lines_of(out)[0].startswith(f"Nome{delimiter}Telefone{delimiter}")
    assert rows_of(out, delimiter)[0]["Nome"] == "Ana; Maria"


def test_the_locale_sets_the_language_too(runner, sandbox, tmp_path):
    leads = write_xlsx(tmp_path / "leads.xlsx", GOOD)
    out = tmp_path / "results.csv"
    assert (
        invoke(runner, sandbox, [str(leads), "-o", str(out)], LC_ALL="pt_BR.UTF-8").exit_code == 0
    )
    assert lines_of(out)[0].startswith("Nome;Telefone;")


@pytest.mark.parametrize("name", ["tab", "comma", "pipe", "semicolon", ":"])
def test_output_delimiter_wins(runner, sandbox, tmp_path, name):
    leads = write_csv(tmp_path / "leads.csv", GOOD, delimiter=";")
    out = tmp_path / "results.csv"
    args = [str(leads), "-o", str(out), "--output-delimiter", name]
    assert invoke(runner, sandbox, args).exit_code == 0
    delimiter = {"tab": "\t", "comma": ",", "pipe": "|", "semicolon": ";"}.get(name, name)
    assert lines_of(out)[0].startswith(f"Nome{delimiter}Telefone{delimiter}")


def test_output_delimiter_is_one_character(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", GOOD)
    args = [str(leads), "-o", str(tmp_path / "r.csv"), "--output-delimiter", "::"]
    result = invoke(runner, sandbox, args)
    assert result.exit_code == 2 and "not a single character" in result.stderr


def test_stdout_follows_the_same_rule(runner, sandbox, tmp_path):
    leads = write_xlsx(tmp_path / "leads.xlsx", GOOD)
    result = invoke(runner, sandbox, [str(leads), "-o", "-", "--lang", "pt_BR"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Nome;Telefone;Operadores;row;phone;status;")
    result = invoke(runner, sandbox, [str(leads), "-o", "-", "--output-delimiter", "tab"])
    assert result.stdout.startswith("Nome\tTelefone\tOperadores\trow\tphone\tstatus\t")


def test_semicolon_results_handed_back_are_recognised_and_carried_over(runner, sandbox, tmp_path):
    leads = write_xlsx(tmp_path / "leads.xlsx", [*GOOD, ["Caio", "123", "OP-ANA"]])
    out = tmp_path / "results.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out), "--lang", "pt_BR"]).exit_code == 1
    assert lines_of(out)[0].startswith("Nome;Telefone;")
    rows = rows_of(out, ";")
    rows[2]["Telefone"] = "(44) 98888-7777"  # the invalid row, fixed
    with open(out, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=";")
        writer.writeheader()
        writer.writerows(rows)
    result = invoke(runner, sandbox, [str(out), "-o", str(out), "--fresh"])
    assert result.exit_code == 0, result.stderr
    again = rows_of(out, ";")  # the input's delimiter again
    assert list(again[0]) == list(rows[0])  # no "status (input)": recognised as results
    assert [(r["Nome"], r["status"]) for r in again] == [
        ("Ana; Maria", "started"),
        ("Bia", "started"),
        ("Caio", "started"),
    ]
    assert set(sandbox.state.requests) == {"554499999998", "5544988887777", "5544999999999"}
    assert sum(sandbox.state.requests.values()) == 3  # the done rows were not sent again
