"""The spreadsheets people really hand in: encodings, delimiters, title rows, instruction tabs,
numbers for phones, disguised files; and results that open safely. Every fixture is built here."""

from __future__ import annotations

import codecs
import csv
import io

import openpyxl
import pandas as pd
import pytest
import xlsxwriter
import xlwt
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_attend.cli import cli
from batch_attend.reading.files import read_table
from batch_attend.reading.headers import map_columns
from batch_attend.reading.limits import InputError
from tests.conftest import TOKEN, phone_of, read_results_csv, said, table_rows, write_xlsx

PT_ROWS = [
    ["Nome", "Número do WhatsApp", "Operadores", "Observação", "Cidade"],
    ["João Araújo", "(11) 98765-4321", "OP-ANA", "Não ligar antes das 9h", "São Paulo"],
    ["Inês Conceição", "44 3025-1234", "OP-BRUNO", "Cliente, já comprou", "Maringá"],
]


def write_text(path, text: str, encoding: str, bom: bytes = b""):
    path.write_bytes(bom + text.encode(encoding))
    return path


def as_csv(rows, delimiter=",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


# --- CSV: encodings and delimiters ----------------------------------------------------------


def test_windows_1252_semicolon_file_with_portuguese_headers(tmp_path):
    path = write_text(tmp_path / "leads.csv", as_csv(PT_ROWS, ";"), "cp1252")
    table = read_table(path)
    assert table.columns == PT_ROWS[0]
    assert table_rows(table) == PT_ROWS[1:]
    assert map_columns(table).phone == 1


def test_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    rows = [["Telefone", "Operadores"], ["44999999999", "OP-1"]]
    path = write_text(tmp_path / "leads.csv", as_csv(rows), "utf-8", codecs.BOM_UTF8)
    table = read_table(path)
    assert table.columns == ["Telefone", "Operadores"]
    assert map_columns(table).phone == 0


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_tab_separated(tmp_path, encoding):
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    path = write_text(tmp_path / "leads.txt", as_csv(PT_ROWS, "\t"), encoding, bom)
    table = read_table(path)
    assert table_rows(table) == PT_ROWS[1:]


def test_latin1_detected_and_encoding_option_overrides(tmp_path):
    path = write_text(tmp_path / "leads.csv", as_csv(PT_ROWS), "latin-1")
    assert table_rows(read_table(path)) == PT_ROWS[1:]
    assert table_rows(read_table(path, encoding="latin-1")) == PT_ROWS[1:]
    garbled = table_rows(read_table(path, encoding="mac_roman"))
    assert garbled != PT_ROWS[1:]  # the override really is used


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed_even_when_values_hold_commas(tmp_path, delimiter):
    rows = [
        ["Nome", "Endereço", "Telefone", "Operadores"],
        ["Ana, a filha", "Rua A, 10, ap. 2", "44999999999", "OP-1, OP-2"],
        ["Bia", "Av. B, 20", "44988887777", "OP-1"],
    ]
    path = write_text(tmp_path / "leads.csv", as_csv(rows, delimiter), "utf-8")
    table = read_table(path)
    assert table.columns == rows[0] and table_rows(table) == rows[1:]


def test_quoted_line_breaks_beside_pipes_do_not_fool_the_sniffer(tmp_path):
    # Found by the round-trip property: split on '|', the quoted '\r' made more, but less
    # consistent, records than the real ',' delimiter.
    text = 'Telefone,A,B\r\n44999999999,|,"\r|0"\r\n44999999999,|,"\r|0"\r\n'
    table = read_table(write_text(tmp_path / "leads.csv", text, "utf-8"))
    assert table.columns == ["Telefone", "A", "B"]
    assert table_rows(table) == [["44999999999", "|", "\r|0"]] * 2


def test_delimiter_option_overrides_the_sniffer(tmp_path):
    path = write_text(
        tmp_path / "leads.csv", "Telefone|Nome;Sobrenome\n44999999999|Ana;Souza\n", "utf-8"
    )
    assert read_table(path, delimiter=";").columns == ["Telefone|Nome", "Sobrenome"]
    assert read_table(path, delimiter="|").columns == ["Telefone", "Nome;Sobrenome"]


def test_quoted_fields_with_new_lines_and_delimiters_keep_row_numbers(tmp_path):
    text = (
        "Telefone,Observação,Operadores\r\n"
        '44999999999,"linha um\r\nlinha dois, com vírgula",OP-1\r\n'
        '44988887777,"aspas ""duplas""",OP-2\r\n'
    )
    table = read_table(write_text(tmp_path / "leads.csv", text, "utf-8"))
    assert table_rows(table) == [
        ["44999999999", "linha um\r\nlinha dois, com vírgula", "OP-1"],
        ["44988887777", 'aspas "duplas"', "OP-2"],
    ]
    assert list(table.row_numbers) == [2, 3]  # spreadsheet rows, not text lines


def test_trailing_empty_columns_and_blank_lines_are_ignored(tmp_path):
    text = "Telefone;Operadores;;;\n\n44999999999;OP-1;;;\n;;;;\n\n44988887777;OP-2;;;\n"
    table = read_table(write_text(tmp_path / "leads.csv", text, "utf-8"))
    assert table.columns == ["Telefone", "Operadores"]
    assert table_rows(table) == [["44999999999", "OP-1"], ["44988887777", "OP-2"]]
    assert list(table.row_numbers) == [3, 6]


def test_csv_title_line_above_the_header(tmp_path):
    text = "Leads da feira - novembro\n\nNome,Celular,Operadores\nAna,44999999999,OP-1\n"
    table = read_table(write_text(tmp_path / "leads.csv", text, "utf-8"))
    assert table.columns == ["Nome", "Celular", "Operadores"]
    assert list(table.row_numbers) == [4]


def test_unclosed_quote_is_explained(tmp_path):
    path = write_text(tmp_path / "leads.csv", 'Telefone,Nome\n44999999999,"Ana\n', "utf-8")
    with pytest.raises(InputError, match=r"leads\.csv: not a well-formed CSV"):
        read_table(path)


# --- workbooks ----------------------------------------------------------------------------


def instructions_then_leads(path):
    book = xlsxwriter.Workbook(path)
    bold = book.add_format({"bold": True})
    notes = book.add_worksheet("Instruções")
    notes.write(0, 0, "Preencha a aba Leads. Telefone com DDD.")
    notes.write(1, 0, "Não altere os nomes das colunas.")
    leads = book.add_worksheet("Leads")
    leads.merge_range(0, 0, 0, 3, "Leads de novembro — campanha Black Friday", bold)
    leads.write_row(2, 0, ["Nome", "Telefone", "Operadores", "Setor"], bold)
    leads.write_row(3, 0, ["Ana", "(44) 99999-9999", "OP-ANA", "DEP-VENDAS"])
    leads.write_string(4, 0, "Bia")
    leads.write_number(4, 1, 5544988887777)  # a phone typed as a number
    leads.write_row(4, 2, ["OP-BRUNO", ""])
    leads.write_row(5, 0, ["Caio", "44 97777-6666", "OP-ANA", ""])
    leads.set_row(5, None, None, {"hidden": True})  # hidden or filtered rows are still data
    leads.autofilter(2, 0, 5, 3)
    book.close()
    return path


def test_instructions_sheet_and_title_rows_are_passed_over(tmp_path):
    table = read_table(instructions_then_leads(tmp_path / "leads.xlsx"))
    assert table.sheet == "Leads"
    assert table.columns == ["Nome", "Telefone", "Operadores", "Setor"]
    assert [r[1] for r in table_rows(table)] == [
        "(44) 99999-9999",
        "5544988887777",
        "44 97777-6666",
    ]
    assert list(table.row_numbers) == [4, 5, 6]


@pytest.mark.parametrize("sheet", ["Leads", "leads", "2"])
def test_sheet_option_by_name_or_number(tmp_path, sheet):
    assert read_table(instructions_then_leads(tmp_path / "l.xlsx"), sheet=sheet).sheet == "Leads"


def test_unknown_sheet_lists_the_sheets(tmp_path):
    with pytest.raises(InputError, match=r"no sheet 'Vendas'\. Sheets: 'Instruções', 'Leads'"):
        read_table(instructions_then_leads(tmp_path / "l.xlsx"), sheet="Vendas")


def test_no_sheet_with_a_phone_column_lists_what_each_holds(tmp_path):
    book = xlsxwriter.Workbook(tmp_path / "l.xlsx")
    book.add_worksheet("Capa").write(0, 0, "Relatório")
    data = book.add_worksheet("Dados")
    data.write_row(0, 0, ["Nome", "Fone do escritório"])
    data.write_row(1, 0, ["Ana", "44999999999"])
    book.close()
    with pytest.raises(InputError) as info:
        read_table(tmp_path / "l.xlsx")
    assert "'Capa' ('Relatório'); 'Dados' ('Nome', 'Fone do escritório')" in str(info.value)
    assert "--phone-column" in str(info.value)
    table = read_table(tmp_path / "l.xlsx", phone_column="fone do escritorio")
    assert table.sheet == "Dados"


def test_numeric_phone_cells_keep_their_digits_and_fractions_are_refused(tmp_path):
    path = write_xlsx(
        tmp_path / "l.xlsx",
        [
            ["Telefone", "Operadores"],
            [5544999999999, "OP"],
            [554499999999.0, "OP"],
            [5544999999.5, "OP"],
        ],
    )
    phones = [r[0] for r in table_rows(read_table(path))]
    assert phones[:2] == ["5544999999999", "554499999999"]
    assert phone_of(phones[0]) == ("5544999999999", "")
    assert "format the phone column as Text" in phone_of(phones[2])[1]


def test_scientific_notation_from_a_csv_export_is_invalid_with_a_hint(runner, sandbox, tmp_path):
    path = write_text(
        tmp_path / "l.csv",
        "Telefone,Operadores\n5.54E+11,OP-ANA\n5.544999999999e+12,OP-ANA\n",
        "utf-8",
    )
    out = tmp_path / "r.csv"
    result = runner.invoke(
        cli,
        [str(path), "-o", str(out)],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    assert result.exit_code == 1
    rows = read_results_csv(out)
    assert rows[0]["status"] == "invalid" and "format the phone column as Text" in rows[0]["error"]
    assert (rows[1]["status"], rows[1]["phone"]) == ("started", "5544999999999")


def test_xls_workbook(tmp_path):
    book = xlwt.Workbook()
    sheet = book.add_sheet("Leads")
    for c, value in enumerate(["Nome", "Telefone", "Operadores"]):
        sheet.write(0, c, value)
    sheet.write(1, 0, "José")
    sheet.write(1, 1, 5544999999999.0)
    sheet.write(1, 2, "OP-1")
    book.save(str(tmp_path / "leads.xls"))
    table = read_table(tmp_path / "leads.xls")
    assert table_rows(table) == [["José", "5544999999999", "OP-1"]]


def test_ods_spreadsheet(tmp_path):
    frame = pd.DataFrame([["Nome", "Celular", "Operadores"], ["Inês", "(44) 99999-9999", "OP-1"]])
    frame.to_excel(tmp_path / "leads.ods", engine="odf", header=False, index=False)
    table = read_table(tmp_path / "leads.ods")
    assert table.columns == ["Nome", "Celular", "Operadores"]
    assert table_rows(table) == [["Inês", "(44) 99999-9999", "OP-1"]]


def test_xlsm_workbook(tmp_path):
    path = write_xlsx(
        tmp_path / "leads.xlsx", [["Telefone", "Operadores"], ["44999999999", "OP-1"]]
    )
    macro = path.rename(tmp_path / "leads.xlsm")
    assert table_rows(read_table(macro)) == [["44999999999", "OP-1"]]


# --- clear refusals through the command: exit 2, nothing sent -------------------------------


def encrypted_workbook(path):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = write_xlsx(path.with_name("plain.xlsx"), [["Telefone"], ["44999999999"]])
    with open(plain, "rb") as source, open(path, "wb") as target:
        OOXMLFile(source).encrypt("senha", target)
    return path


REFUSALS = [
    ("missing.csv", None, "missing.csv: no such file"),
    ("empty.csv", lambda p: p.write_bytes(b""), "empty.csv: the file is empty"),
    ("blank.csv", lambda p: p.write_text("\n\n  \n"), "blank.csv: the file is empty"),
    ("header.csv", lambda p: p.write_text("Telefone,Operadores\n"), "no data rows"),
    ("nophone.csv", lambda p: p.write_text("Nome,Cidade\nAna,Maringá\n"), "no phone column found. Columns seen: 'Nome', 'Cidade'"),
    ("leads.xlsx", lambda p: p.write_text("Telefone,Operadores\n44999999999,OP\n"),
     "the name says .xlsx but the content is a text (CSV) file. Rename it to .csv"),
    ("leads.csv", lambda p: write_xlsx(p, [["Telefone"], ["44999999999"]]),
     "the name says .csv but the content is an Excel workbook (.xlsx). Rename it to .xlsx"),
    ("leads.xls", lambda p: p.write_text("<html><body><table><tr><td>Telefone</td></tr></table></body></html>"),
     "the content is an HTML page"),
    ("leads.xlsx", encrypted_workbook, "password-protected"),
    ("leads.xlsx", lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 200), "the content is a ZIP archive"),
    ("leads.json", lambda p: p.write_text("{}"), "unknown file type '.json'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "message"), REFUSALS)
def test_unusable_inputs_are_refused_clearly(runner, sandbox, tmp_path, name, make, message):
    path = tmp_path / name
    if make is not None:
        make(path)
    result = runner.invoke(
        cli,
        [str(path), "-o", str(tmp_path / "out.csv")],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert str(path) in result.stderr
    assert sandbox.state.answers == {}
    assert not (tmp_path / "out.csv").exists()


def test_damaged_workbook_is_refused(tmp_path):
    good = write_xlsx(tmp_path / "leads.xlsx", [["Telefone"], ["44999999999"]])
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # cut in half, as a failed download would
    with pytest.raises(InputError, match=r"leads\.xlsx: "):
        read_table(good)


# --- safe output ----------------------------------------------------------------------------

FORMULAS = ['=HYPERLINK("http://x","clique")', "+SUM(1,2)", "-2+3", "@cmd", "\t=1", "=1+1"]


def test_formula_like_cells_come_back_inert(runner, sandbox, tmp_path):
    rows = [["Telefone", "Operadores", "Nota"]]
    rows += [[f"4499999{i:04d}", "OP-ANA", value] for i, value in enumerate(FORMULAS)]
    rows += [["+55 44 98888-7777", "OP-ANA", "-12"]]
    source = write_xlsx(tmp_path / "leads.xlsx", rows)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    assert runner.invoke(cli, [str(source), "-o", str(tmp_path / "r.csv")], env=env).exit_code == 0
    assert runner.invoke(cli, [str(source), "-o", str(tmp_path / "r.xlsx")], env=env).exit_code == 0

    notes = [r["Nota"] for r in read_results_csv(tmp_path / "r.csv")]
    assert notes[:-1] == ["'" + v for v in FORMULAS]
    last = read_results_csv(tmp_path / "r.csv")[-1]
    assert (last["Telefone"], last["Nota"]) == ("+55 44 98888-7777", "-12")  # numbers as typed

    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx")["Results"]
    nota = [c.value for c in sheet[1]].index("Nota")
    cells = [row[nota] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in cells[:-1]] == FORMULAS
    assert all(c.data_type == "s" for c in cells)  # text, never formulas


def test_xlsx_results_are_pleasant_to_open(runner, sandbox, tmp_path):
    rows = [["Telefone", "Operadores"], ["44999999999", "OP-ANA"], ["123", "OP-ANA"], ["44988887777", ""],
            ["44977776666", "OP-ANA"], ["44 99999-9999", "OP-ANA"]]  # fmt: skip
    sandbox.state.attendances["5544977776666"] = (4242, ["OP-X"])
    source = write_xlsx(tmp_path / "leads.xlsx", rows)
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    result = runner.invoke(cli, [str(source), "-o", str(tmp_path / "r.xlsx")], env=env)
    assert result.exit_code == 1
    book = openpyxl.load_workbook(tmp_path / "r.xlsx")
    sheet = book["Results"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:L6"
    assert all(c.font.bold for c in sheet[1])
    assert sheet.column_dimensions["A"].width > 8
    header = [c.value for c in sheet[1]]
    status_col = header.index("status")
    colours = {
        row[status_col].value: row[status_col].fill.fgColor.rgb[-6:]
        for row in sheet.iter_rows(min_row=2)
    }
    assert colours == {
        "started": "C6EFCE", "invalid": "FFEB9C", "already_in_service": "BDD7EE", "skipped": "D9D9D9",
    }  # fmt: skip
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["started"] == 1 and summary["invalid"] == 2 and summary["total"] == 5
    assert summary["invalid_phone"] == 1 and summary["missing_operators"] == 1
    assert summary["duplicate_row"] == 1


def test_csv_results_have_a_bom_unless_asked_not_to(runner, sandbox, tmp_path):
    source = write_xlsx(
        tmp_path / "leads.xlsx", [["Telefone", "Operadores"], ["44999999999", "OP-1"]]
    )
    env = {"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url}
    runner.invoke(cli, [str(source), "-o", str(tmp_path / "a.csv")], env=env)
    runner.invoke(cli, [str(source), "-o", str(tmp_path / "b.csv"), "--no-bom", "--fresh"], env=env)
    assert (tmp_path / "a.csv").read_bytes().startswith(codecs.BOM_UTF8 + b"Telefone")
    assert (tmp_path / "b.csv").read_bytes().startswith(b"Telefone")


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
        | st.from_regex(r"[+(]?\d[\d .()\-]{6,20}", fullmatch=True),
        min_size=1,
        max_size=10,
    )
)
def test_phone_normalization_never_raises_anything_else(raws):
    """Up to ten cells a column, as a sheet gives them (a call costs far more than a cell)."""
    import pandas as pd

    from batch_attend.leads import normalize_phones

    got = normalize_phones(pd.Series(raws, dtype=str), "55")
    assert len(got) == len(raws)
    for phone, error in zip(got["phone"], got["error"], strict=True):
        assert bool(phone) != bool(said(error))
        assert not phone or (phone.isascii() and phone.isdigit() and 10 <= len(phone) <= 15)


cell_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=30,
)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=10))
def test_csv_results_round_trip_arbitrary_text_cells(tmp_path_factory, cells):
    """Whatever the cells, a results file reads back as a results file (its own columns set
    apart) with the cells given: made inert in the file, and given back as they were."""
    import pandas as pd

    from batch_attend.results import inert

    folder = tmp_path_factory.mktemp("roundtrip")
    rows = [["Telefone", "A", "B"]] + [["44999999999", a, b] for a, b in cells]
    source = folder / "leads.csv"
    with open(source, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    try:
        expected = table_rows(read_table(source))
    except InputError:
        return  # cells that make no table (a blank sheet): nothing to round-trip
    out = folder / "r.csv"
    result = CliRunner().invoke(cli, [str(source), "-o", str(out), "--dry-run", "-q"])
    assert result.exit_code in (0, 1), result.stderr
    table = read_table(out)
    assert table.results is not None and table.columns == ["Telefone", "A", "B"]
    assert table_rows(table) == expected
    written = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    assert [r[:3] for r in written[1:]] == [
        inert(pd.Series(r, dtype=str)).tolist() for r in expected
    ]


def test_a_blank_first_line_keeps_row_numbers(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"\nTelefone,Operadores\n44999999999,OP-1\n\n44988887777,OP-2\n")
    table = read_table(path)
    assert list(table.row_numbers) == [3, 5]


def test_counting_fields_of_quoted_multi_line_records():
    from batch_attend.reading.csvfile import field_counts

    text = 'Telefone,Nota,Extra\n1,"two\nlines, and a comma",x\n"",,\n2,"""quoted""",\n'
    assert field_counts(text, ",") == {3: 3}  # the all-empty record does not count
