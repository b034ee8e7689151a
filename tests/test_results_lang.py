"""``--results-lang pt_BR``: the error sentences and the Summary sheet in Portuguese, column
names, statuses and codes in English; ``check`` gives its reasons in the messages' language.
Sentences are kept in English and said again from their templates (``sentences.say``)."""

import string

import openpyxl
import pytest

from batch_attend import i18n, sentences
from batch_attend.cli import cli
from batch_attend.journal import Journal
from batch_attend.outcomes import RESULT_COLUMNS
from tests.conftest import TOKEN, read_results_csv, write_csv, write_xlsx

ROWS = [
    ["Nome", "Telefone", "Operadores"],
    ["Ana", "5544999999999", "OP-ANA"],
    ["Bia", "123", "OP-ANA"],
    ["Caio", "99999-8888", "OP-ANA"],
    ["Duda", "5544999999999", "OP-BRUNO"],
    ["Edu", "5544988887777", ""],
]


def invoke(runner, sandbox, args, **env):
    environ = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url, "LANG": "C", **env}
    return runner.invoke(cli, args, env=environ, catch_exceptions=False)


def _fields(template):
    return [f for _lit, f, _spec, _conv in string.Formatter().parse(template) if f is not None]


SAMPLE = {"status": "418", "char": "x", "when": "2026-12-01T10:00:00-03:00"}
SAMPLE.update(dict.fromkeys(("count", "least", "most", "limit", "row", "size", "seconds"), "12"))


def _values(template):
    """Values a sentence may hold: digits where digits go, a sentence of ours where a sentence
    goes, elsewhere text with the separators sentences use ("; ", ": ", " at ")."""
    values = {f: SAMPLE.get(f, f"<{f} 4 a; b: c at d>") for f in _fields(template)}
    for field in set(values) & sentences.SENTENCE_FIELDS:
        values[field] = sentences.STARTED_BEFORE
    return values


@pytest.mark.parametrize("template", sentences.TEMPLATES)
def test_every_sentence_is_said_again_in_portuguese_with_its_values(template):
    """The values are read back out of the English sentence into the translated template, and
    out of the Portuguese one back into the English (a results file handed back)."""
    values = _values(template)
    english = template.format(**values)
    with i18n.speaking("pt_BR"):
        said = sentences.say(english)
        inner = {
            f: sentences.say(v) if f in sentences.SENTENCE_FIELDS else v for f, v in values.items()
        }
        assert said == i18n._(template).format(**inner)
    assert said != english
    assert sentences.say(english) == english  # in English, as it came
    assert sentences.unsay(said) == english
    assert sentences.unsay(english) == english


@pytest.mark.parametrize("template", sentences.TEMPLATES)
def test_templates_have_plain_fields_that_can_be_read_back(template):
    parsed = list(string.Formatter().parse(template))
    assert all(not spec and not conv for _lit, f, spec, conv in parsed if f is not None)
    assert len(_fields(template)) == len(set(_fields(template)))
    assert all(lit for lit, _f, _s, _c in parsed[1:])  # two fields side by side can't be told apart


@pytest.mark.parametrize(
    "foreign",
    [
        "the network is on fire",
        "the network is down at night; try later",
        "; ".join(["called"] * 700),
        " at ".join(["started by an earlier run"] * 700),
    ],
)
def test_a_sentence_no_template_made_is_shown_as_it_came(foreign):
    with i18n.speaking("pt_BR"):
        assert sentences.say(foreign) == foreign
    assert sentences.unsay(foreign) == foreign


def test_a_persons_data_is_read_back_whole_and_never_translated():
    with i18n.speaking("pt_BR"):
        phone = sentences.NO_WHATSAPP.format(phone="the phone cell is empty")
        assert sentences.say(phone) == (
            "a PlugChat diz que the phone cell is empty não tem WhatsApp; não enviado"
        )
        cell = sentences.NOT_PART_OF_A_PHONE.format(cell="x' has 'y", char="-")
        assert sentences.say(cell) == (
            "'x' has 'y' tem '-', que não faz parte de um número de telefone"
        )
        odd = "the API answered HTTP 418: the operation ended with an error"
        assert sentences.say(odd) == "a API respondeu HTTP 418: the operation ended with an error"
        failed = sentences.REQUEST_FAILED.format(reason="OSError: gone; at offset 5")
        assert sentences.say(failed) == "a requisição falhou (OSError: gone; at offset 5)"


def test_results_in_portuguese_keep_the_contract_in_english(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    out = tmp_path / "r.csv"
    result = invoke(runner, sandbox, [str(leads), "-o", str(out), "--results-lang", "pt_BR"])
    assert result.exit_code == 1, result.output
    rows = read_results_csv(out)
    assert list(rows[0])[3:] == list(RESULT_COLUMNS)
    assert [r["status"] for r in rows] == ["started", "invalid", "invalid", "skipped", "invalid"]
    errors = [r["error"] for r in rows]
    assert errors[1] == (
        "invalid_phone: '123' tem 3 dígitos; um telefone precisa de 10 a 15 (código do país, "
        "DDD, número)"
    )
    assert errors[2] == (
        "invalid_phone: '99999-8888' tem 9 dígitos; um telefone precisa de 10 a 15 (código do "
        "país, DDD, número); coloque o DDD na frente, ou use uma coluna de DDD"
    )
    assert errors[3] == "duplicate_row: mesmo telefone da linha 2"
    assert errors[4].startswith("missing_operators: a célula de operadores está vazia")
    assert "Ana" in rows[0]["Nome"]
    # The summary on stderr is in the messages' language (English here), not the results'.
    assert result.stderr.splitlines()[-1].startswith("5 rows: ")


def test_results_are_english_by_default_even_with_portuguese_messages(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    out = tmp_path / "r.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out), "--lang", "pt_BR"]).exit_code == 1
    assert read_results_csv(out)[3]["error"] == "duplicate_row: same phone as row 2"


def test_a_resumed_run_says_the_earlier_runs_sentences_in_portuguese(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    out = tmp_path / "r.csv"
    assert invoke(runner, sandbox, [str(leads), "-o", str(out)]).exit_code == 1
    journal = Journal.open_readonly(tmp_path / "r.csv.journal")
    assert journal is not None  # the ledger holds English sentences
    again = invoke(runner, sandbox, [str(leads), "-o", str(out), "--results-lang", "pt_BR"])
    assert again.exit_code == 1
    assert sandbox.state.total_starts() == 1  # nothing sent twice
    rows = read_results_csv(out)
    assert rows[0]["status"] == "started"
    assert rows[3]["error"] == "duplicate_row: mesmo telefone da linha 2"


def test_summary_sheet_in_portuguese(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    out = tmp_path / "r.xlsx"
    args = [str(leads), "-o", str(out), "--results-lang", "pt_BR"]
    assert invoke(runner, sandbox, args).exit_code == 1
    book = openpyxl.load_workbook(out)
    assert book.sheetnames[1] == "Resumo"
    summary = book["Resumo"]
    left = {r[0]: r[1] for r in summary.iter_rows(values_only=True) if r[0]}
    right = {r[3]: r[4] for r in summary.iter_rows(values_only=True) if r[3]}
    assert left["status"] == "linhas" and left["started"] == 1 and left["total"] == 5
    assert left["erro"] == "linhas" and left["invalid_phone"] == 2
    assert left["iniciados, por operador"] == "linhas" and left["OP-ANA"] == 1
    assert {"início", "entrada", "saída", "duração"} <= set(right)
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    error = header.index("error") + 1
    assert sheet.cell(3, error).value.startswith("invalid_phone: '123' tem 3 dígitos")


def test_check_gives_its_reasons_in_the_messages_language(runner, sandbox, tmp_path):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    result = invoke(runner, sandbox, ["check", str(leads), "--lang", "pt_BR"])
    assert result.exit_code == 1
    assert "linha 3: invalid_phone: '123' tem 3 dígitos;" in result.stdout
    assert "linha 6: missing_operators: a célula de operadores está vazia" in result.stdout
    english = invoke(runner, sandbox, ["check", str(leads)])
    assert "row 3: invalid_phone: '123' has 3 digits;" in english.stdout


def test_portuguese_results_handed_back_keep_the_ledger_and_later_results_english(
    runner, sandbox, tmp_path
):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    pt = tmp_path / "pt.csv"
    args = [str(leads), "-o", str(pt), "--results-lang", "pt_BR", "--output-delimiter", ","]
    assert invoke(runner, sandbox, args).exit_code == 1
    back = tmp_path / "back.csv"
    assert invoke(runner, sandbox, [str(pt), "-o", str(back), "--fresh"]).exit_code == 1
    rows = read_results_csv(back)
    assert rows[3]["error"] == "duplicate_row: same phone as row 2"
    assert rows[1]["error"].startswith("invalid_phone: '123' has 3 digits")
    assert sandbox.state.total_starts() == 1  # the started row was carried over, not sent


def test_csv_results_from_a_workbook_follow_the_results_language(runner, sandbox, tmp_path):
    leads = write_xlsx(tmp_path / "leads.xlsx", ROWS)
    out = tmp_path / "r.csv"
    args = [str(leads), "-o", str(out), "--results-lang", "pt_BR"]
    assert invoke(runner, sandbox, args).exit_code == 1
    assert out.read_text(encoding="utf-8-sig").splitlines()[0].startswith("Nome;Telefone;")
