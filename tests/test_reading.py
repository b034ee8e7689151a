"""Reading CSV and XLSX into text rows; header aliases and column overrides."""

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batch_attend.reading.files import read_table
from batch_attend.reading.headers import ColumnError, fold, map_columns
from batch_attend.reading.limits import InputError
from batch_attend.reading.workbook import cell_text
from tests.conftest import table_rows, write_csv, write_xlsx


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("phone", "phone"),
        ("Telefone", "phone"),
        ("CELULAR", "phone"),
        ("WhatsApp", "phone"),
        ("Número", "phone"),
        ("numero", "phone"),
        (" Fone ", "phone"),
        ("operators", "operators"),
        ("Operadores", "operators"),
        ("operator", "operators"),
        ("Operador", "operators"),
        ("operator_id", "operators"),
        ("operator_ids", "operators"),
        ("Operator IDs", "operators"),
        ("department", "department"),
        ("Departamento", "department"),
        ("departmentId", "department"),
        ("department_id", "department"),
        ("Setor", "department"),
    ],
)
def test_header_aliases(tmp_path, header, role):
    others = {"phone": "Telefone", "operators": "Operadores", "department": "Departamento"}
    others[role] = header
    names = [others["phone"], others["operators"], others["department"], "Nome"]
    table = read_table(write_csv(tmp_path / "l.csv", [names, ["1", "2", "3", "4"]]))
    columns = map_columns(table)
    assert getattr(columns, role) == names.index(header)


def test_fold_ignores_case_accents_spaces_and_punctuation():
    assert fold(" Número do  WhatsApp ") == "numerodowhatsapp"
    assert fold("operator_id(s)") == "operatorids"


def test_overrides_pick_columns_by_name(tmp_path):
    rows = [["Contato principal", "Quem atende", "Área", "Telefone"], ["1", "2", "3", "4"]]
    table = read_table(write_csv(tmp_path / "l.csv", rows))
    columns = map_columns(
        table,
        phone_column="Contato principal",
        operators_column="quem atende",
        department_column="ÁREA",
    )
    assert (columns.phone, columns.operators, columns.department) == (0, 1, 2)


def test_override_naming_a_missing_column_lists_what_is_there(tmp_path):
    table = read_table(write_csv(tmp_path / "l.csv", [["Telefone", "Nome"], ["1", "2"]]))
    with pytest.raises(ColumnError, match=r"no column named 'Fone2'.*'Telefone', 'Nome'"):
        map_columns(table, phone_column="Fone2")


def test_no_phone_column_lists_columns_and_accepted_names(tmp_path):
    table = read_table(write_csv(tmp_path / "l.csv", [["Nome", "Cidade"], ["a", "b"]]))
    with pytest.raises(ColumnError) as info:
        map_columns(table)
    message = str(info.value)
    assert "l.csv" in message and "'Nome', 'Cidade'" in message and "telefone" in message


def test_two_phone_columns_are_refused_as_ambiguous(tmp_path):
    table = read_table(write_csv(tmp_path / "l.csv", [["Telefone", "Celular"], ["1", "2"]]))
    with pytest.raises(ColumnError, match="--phone-column"):
        map_columns(table)


def test_csv_cells_stay_text_and_row_numbers_skip_blank_lines(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("Telefone,Operadores,Nota\n044999999999,OP-1,007\n\n,,\n5544999999999,OP-2,\n")
    table = read_table(path)
    assert table.columns == ["Telefone", "Operadores", "Nota"]
    assert table_rows(table) == [["044999999999", "OP-1", "007"], ["5544999999999", "OP-2", ""]]
    assert list(table.row_numbers) == [2, 5]


def test_csv_semicolon_delimiter_is_sniffed(tmp_path):
    path = write_csv(
        tmp_path / "l.csv", [["Telefone", "Nome"], ["44 9999-9999", "Zé, o Jr"]], delimiter=";"
    )
    table = read_table(path)
    assert table_rows(table) == [["44 9999-9999", "Zé, o Jr"]]


def test_xlsx_number_cells_keep_every_digit(tmp_path):
    path = write_xlsx(
        tmp_path / "l.xlsx",
        [
            ["Telefone", "Operadores"],
            [5544999999999, "OP-1"],
            [554499999999.0, "OP-2"],
            ["0044", 7],
        ],
    )
    table = read_table(path)
    assert table.sheet == "Leads"
    assert table_rows(table) == [["5544999999999", "OP-1"], ["554499999999", "OP-2"], ["0044", "7"]]
    assert list(table.row_numbers) == [2, 3, 4]


def test_xlsx_title_rows_above_header_are_skipped(tmp_path):
    path = write_xlsx(
        tmp_path / "l.xlsx",
        [["Leads de novembro"], [], ["Nome", "Celular"], ["Ana", "(44) 99999-9999"]],
    )
    table = read_table(path)
    assert table.columns == ["Nome", "Celular"]
    assert list(table.row_numbers) == [4]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("x", "x"),
        (True, "TRUE"),
        (12, "12"),
        (12.0, "12"),
        (0.5, "0.5"),
        (float("nan"), ""),
    ],
)
def test_cell_text(value, text):
    assert cell_text(value) == text


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_unknown_extension(tmp_path):
    path = tmp_path / "leads.json"
    path.write_text("{}")
    with pytest.raises(InputError, match=r"unknown file type '\.json'"):
        read_table(path)


def test_header_only_is_refused(tmp_path):
    with pytest.raises(InputError, match="no data rows"):
        read_table(write_csv(tmp_path / "l.csv", [["Telefone", "Operadores"]]))


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_table(path)


def test_wrong_encoding_suggests_encoding_option(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes("Telefone;Observação\n4499999999;não\n".encode("cp1252"))
    with pytest.raises(
        InputError, match=r"cannot be read as utf-8 \(given by --encoding\).*--encoding"
    ):
        read_table(path, encoding="utf-8")
    assert table_rows(read_table(path)) == [["4499999999", "não"]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=6), min_size=1, max_size=10))
@example(["\x1c\u2028\u3000", "\u200b", "\u180e", "\x85"])
def test_blank_cells_are_blank_as_python_sees_them(cells):
    """A row of such cells is dropped exactly when Python calls the text blank (many cells a
    table: each row stands alone, and one read costs far more than a row)."""
    import pandas as pd

    from batch_attend.reading.table import table_from_grid

    rows = [["Telefone", "Nota"], ["44999999999", "x"], *([cell, cell] for cell in cells)]
    table = table_from_grid(Path("leads.csv"), None, pd.DataFrame(rows, dtype=str))
    kept = [n for n, cell in enumerate(cells, start=3) if cell and not cell.isspace()]
    assert list(table.row_numbers) == [2, *kept]
