"""``--results-lang pt_BR``: the error sentences and the Summary sheet in Portuguese, column
names, statuses and codes in English; ``check`` gives its reasons in the messages' language.
Messages are kept as their keys and values and rendered where shown (``sentences.render``)."""

import json

import openpyxl
import pandas as pd
import pytest

from batch_attend import i18n, sentences
from batch_attend.cli import cli
from batch_attend.journal import Journal
from batch_attend.outcomes import PORTUGUESE_COLUMNS, RESULT_COLUMNS
from batch_attend.sandbox import Fault
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


SAMPLE = {"status": 418, "char": "x", "when": "2026-12-01T10:00:00-03:00", "row": 12}
SAMPLE.update(dict.fromkeys(sentences.NUMBER_FIELDS | {"least", "most"}, 1234))


def _values(template):
    """Values a sentence may hold: numbers where they go, a message of ours where a sentence
    goes, elsewhere text with the characters JSON must escape."""
    values = {f: SAMPLE.get(f, f'<{f} "4" a\\b; c: d\nat e>') for f in template.fields}
    for field in set(values) & sentences.SENTENCE_FIELDS:
        values[field] = sentences.STARTED_BEFORE
    return values


@pytest.mark.parametrize("template", sentences.TEMPLATES.values())
def test_every_message_is_kept_as_its_key_and_values_and_rendered_in_either_language(
    template, sao_paulo
):
    values = _values(template)
    kept = template.format(**values)
    assert kept.split(" ", 1)[0] == str(template)  # the key, then the values as JSON
    shown = {
        f: sentences.render(v) if f in sentences.SENTENCE_FIELDS else v for f, v in values.items()
    }
    numbers = {f: "1,234" for f in values.keys() & sentences.NUMBER_FIELDS}
    numbers.update({f: "12/1/26, 10:00\u202fAM" for f in values.keys() & sentences.MOMENT_FIELDS})
    assert sentences.render(kept) == template.text.format(**{**shown, **numbers})
    with i18n.speaking("pt_BR"):
        shown = {
            f: sentences.render(v) if f in sentences.SENTENCE_FIELDS else v
            for f, v in values.items()
        }
        numbers = {f: "1.234" for f in values.keys() & sentences.NUMBER_FIELDS}
        numbers.update({f: "01/12/2026 10:00" for f in values.keys() & sentences.MOMENT_FIELDS})
        said = sentences.render(kept)
        assert said == i18n._(template.text).format(**{**shown, **numbers})
    assert said != sentences.render(kept)  # translated


def test_a_column_of_messages_is_kept_alike_and_rendered_per_row():
    cells = pd.Series(['1"2', "3\\4", "5\n6", "7\t8"], dtype=str)
    kept = sentences.fill(
        sentences.WRONG_LENGTH, cell=cells, count=cells.str.len(), least=10, most=15
    )
    one = [sentences.WRONG_LENGTH.format(cell=c, count=len(c), least=10, most=15) for c in cells]
    assert [json.loads(k.split(" ", 1)[1]) for k in kept] == [
        json.loads(o.split(" ", 1)[1]) for o in one
    ]
    assert sentences.render_all(kept).tolist() == [sentences.render(o) for o in one]


@pytest.mark.parametrize(
    "foreign",
    [
        "the network is on fire",
        "the phone cell is empty",  # a sentence an earlier version kept: shown as it was
        "WRONG_LENGTH {not json",
        "NOT_A_TEMPLATE {}",
        "; ".join(["called"] * 700),
    ],
)
def test_text_that_is_no_kept_message_is_shown_as_it_came(foreign):
    with i18n.speaking("pt_BR"):
        assert sentences.render(foreign) == foreign


def test_a_persons_data_is_shown_as_it_came_never_translated():
    with i18n.speaking("pt_BR"):
        phone = sentences.NO_WHATSAPP.format(phone="the phone cell is empty")
        assert sentences.render(phone) == (
            "a PlugChat diz que the phone cell is empty não tem WhatsApp; não enviado"
        )
        failed = sentences.REQUEST_FAILED.format(reason="OSError: gone; at offset 5")
        assert sentences.render(failed) == "a requisição falhou (OSError: gone; at offset 5)"


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


def test_a_portuguese_workbook_speaks_portuguese_and_is_recognised_when_handed_back(
    runner, sandbox, tmp_path
):
    leads = write_csv(tmp_path / "leads.csv", ROWS)
    out = tmp_path / "r.xlsx"
    args = [str(leads), "-o", str(out), "--results-lang", "pt_BR"]
    assert invoke(runner, sandbox, args).exit_code == 1
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Resultados", "Resumo"]
    rows = list(book["Resultados"].iter_rows(values_only=True))
    assert list(rows[0]) == ["Nome", "Telefone", "Operadores", *PORTUGUESE_COLUMNS.values()]
    said = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["situação"] for r in said] == [
        "iniciada", "inválida", "inválida", "não enviada", "inválida"
    ]  # fmt: skip
    assert said[1]["motivo"].startswith("'123' tem 3 dígitos")  # the sentence, no code
    assert said[3]["motivo"] == "mesmo telefone da linha 2"
    summary = book["Resumo"]
    left = {r[0]: r[1] for r in summary.iter_rows(values_only=True) if r[0]}
    right = {r[3]: r[4] for r in summary.iter_rows(values_only=True) if r[3]}
    assert left["situação"] == "linhas" and left["iniciada"] == 1 and left["total"] == 5
    assert left["erro"] == "linhas" and left["Telefone inválido"] == 2
    assert left["Duplicada"] == 1 and "invalid_phone" not in left
    assert left["iniciados, por operador"] == "linhas" and left["OP-ANA"] == 1
    assert {"início", "entrada", "saída", "duração"} <= set(right)
    assert right["saída"] == "r.xlsx"
    # Handed back, it is a results file: the started lead is carried over, not sent again.
    again = tmp_path / "again.csv"
    result = invoke(runner, sandbox, [str(out), "-o", str(again), "--fresh"])
    assert result.exit_code == 1, result.stderr
    assert "1 done by an earlier run" in result.stderr
    assert sandbox.state.total_starts() == 1
    back = read_results_csv(again)
    assert list(back[0])[:3] == ["Nome", "Telefone", "Operadores"]  # the contract set apart
    assert [r["status"] for r in back] == ["started", "invalid", "invalid", "skipped", "invalid"]


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


def test_a_ledger_keeps_keys_and_values_and_an_earlier_versions_sentences_still_read(
    runner, sandbox, tmp_path
):
    import sqlite3

    leads = write_csv(tmp_path / "leads.csv", [*ROWS[:2], ["Eva", "5544977776666", "OP-ANA"]])
    out = tmp_path / "r.csv"
    sandbox.state.faults = {"5544977776666": Fault("fail")}
    assert invoke(runner, sandbox, [str(leads), "-o", str(out), "--retries", "0"]).exit_code == 1
    pt = [str(leads), "-o", str(out), "--dry-run", "--results-lang", "pt_BR"]
    assert invoke(runner, sandbox, pt).exit_code == 1
    rows = {r["Nome"]: r for r in read_results_csv(out)}
    assert rows["Eva"]["error"] == "server_error: a API respondeu HTTP 500 com um erro"
    with sqlite3.connect(f"{out}.journal") as db:
        (kept,) = db.execute("SELECT error_message FROM leads WHERE phone = '5544977776666'")
        assert kept == ('SERVER_ERROR {"status": 500}',)  # the key and its values
        # A ledger of an earlier version held the sentence itself, in English.
        db.execute(
            "UPDATE leads SET error_message = 'the API answered HTTP 500 with an error' "
            "WHERE phone = '5544977776666'"
        )
    assert invoke(runner, sandbox, pt).exit_code == 1
    rows = {r["Nome"]: r for r in read_results_csv(out)}
    assert rows["Ana"]["status"] == "started"
    assert rows["Eva"]["error"] == "server_error: the API answered HTTP 500 with an error"


@pytest.mark.parametrize("name", sorted(sentences.PAGE))
def test_the_pages_words_hold_the_same_values_and_no_command_line(name):
    """A sentence that tells a command-line user what to type has the page's own words, in
    either language, for the same values."""
    template = sentences.TEMPLATES[name]
    page = sentences.Template(name, sentences.PAGE[name])
    assert page.fields <= template.fields
    kept = template.format(**_values(template))
    for lang in ("en", "pt_BR"):
        with i18n.speaking(lang):
            said = sentences.render(kept, page=True)
            assert said != sentences.render(kept)
        for command_line in ("--", "batch-attend", "command", "comando", "PLUGCHAT_"):
            assert command_line not in said, (lang, said)
