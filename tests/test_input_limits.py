"""Inputs built to exhaust memory are refused with exit 2, before anything is sent: workbooks that
inflate past a limit, cells that multiply once parsed, CSV files past their limits; and control
characters no one types are refused wherever they are in the file. Every hostile file is built
here, small on disk and in memory, without ever holding what it would inflate to."""

from __future__ import annotations

import struct
import zlib

import pytest

from batch_attend.cli import cli
from batch_attend.reading import limits, workbook
from batch_attend.reading.files import read_table
from batch_attend.reading.limits import InputError
from tests.conftest import TOKEN, table_rows, write_csv, write_xlsx

MIB = 1 << 20


def deflated(*pieces) -> tuple[bytes, int, int]:
    """A raw deflate stream of ``pieces`` joined, with its CRC-32 and size. A piece is bytes, or
    ``(unit, n)``: ``unit`` repeated over n MiB, deflated once per MiB and the compressed MiB
    repeated, so a member of any size is made in a moment and never held."""
    stream, crc, size = [], 0, 0
    for piece in pieces:
        if isinstance(piece, bytes):
            data, times = piece, 1
        else:
            unit, times = piece
            data = (unit * (MIB // len(unit))).ljust(MIB)  # spaces between elements: still XML
        pack = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream.append((pack.compress(data) + pack.flush(zlib.Z_FULL_FLUSH)) * times)
        for _ in range(times):
            crc = zlib.crc32(data, crc)
        size += len(data) * times
    stream.append(b"\x03\x00")  # an empty last block ends the stream
    return b"".join(stream), crc, size


def write_zip(path, parts: dict, declare: dict | None = None):
    """A zip archive of ``parts`` (name: bytes, or a tuple of :func:`deflated` pieces), each
    member declaring its true size unless ``declare`` gives it another."""
    body, directory = bytearray(), bytearray()
    for name, content in parts.items():
        stream, crc, size = deflated(*(content if isinstance(content, tuple) else (content,)))
        size = (declare or {}).get(name, size)
        fields = (8, 0, 0x21, crc, len(stream), size, len(name))  # deflated, on 1980-01-01
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, *fields, 0)
        body += name.encode() + stream
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, *fields, 0, 0, 0, 0, 0, offset)  # fmt: skip
        directory += name.encode()
    count = len(parts)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


MAIN = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
RELS = b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'
OFFICE = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships"
HEADER_ROW = b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
LEAD_ROW = b'<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
STRINGS = b"<si><t>Telefone</t></si><si><t>Operadores</t></si>"
LEAD_STRINGS = b"<si><t>5544999999999</t></si><si><t>OP-1</t></si>"


def write_xlsx_parts(path, strings=(STRINGS + LEAD_STRINGS,), rows=(HEADER_ROW, LEAD_ROW), declare=None):  # fmt: skip
    """A minimal workbook: one sheet 'Leads' of ``rows``, shared strings ``strings`` (each a
    tuple of :func:`deflated` pieces)."""
    xml = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    parts = {
        "[Content_Types].xml": xml
        + b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        b'<Default Extension="xml" ContentType="application/xml"/>'
        b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        b"</Types>",
        "_rels/.rels": xml + b"<Relationships " + RELS + b'><Relationship Id="rId1" Type="'
        + OFFICE + b'/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": xml + b"<workbook " + MAIN + b' xmlns:r="' + OFFICE + b'">'
        b'<sheets><sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": xml + b"<Relationships " + RELS + b">"
        b'<Relationship Id="rId1" Type="' + OFFICE + b'/worksheet" Target="worksheets/sheet1.xml"/>'
        b'<Relationship Id="rId2" Type="' + OFFICE + b'/sharedStrings" Target="sharedStrings.xml"/>'
        b"</Relationships>",
        "xl/sharedStrings.xml": (xml + b"<sst " + MAIN + b">", *strings, b"</sst>"),
        "xl/worksheets/sheet1.xml": (
            xml + b"<worksheet " + MAIN + b"><sheetData>", *rows, b"</sheetData></worksheet>"
        ),
    }  # fmt: skip
    return write_zip(path, parts, declare)


ODS_ROW = b'<table:table-row><table:table-cell office:value-type="string"><text:p>5544999999999</text:p></table:table-cell></table:table-row>'  # fmt: skip


def write_ods_parts(path, rows=(ODS_ROW,)):
    """A minimal OpenDocument spreadsheet: a 'Telefone' header over ``rows``."""
    content = (
        b'<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        b'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        b'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        b'<office:body><office:spreadsheet><table:table table:name="Leads"><table:table-row>'
        b'<table:table-cell office:value-type="string"><text:p>Telefone</text:p></table:table-cell>'
        b"</table:table-row>",
        *rows,
        b"</table:table></office:spreadsheet></office:body></office:document-content>",
    )
    manifest = (
        b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        b'<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        b"</manifest:manifest>"
    )  # fmt: skip
    parts = {
        "mimetype": b"application/vnd.oasis.opendocument.spreadsheet",
        "META-INF/manifest.xml": manifest,
        "content.xml": content,
    }
    return write_zip(path, parts)


def run(runner, sandbox, path):
    out = path.with_name("out.csv")
    result = runner.invoke(
        cli,
        [str(path), "-o", str(out)],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    return result, out


def assert_refused(result, out, sandbox, *messages):
    assert result.exit_code == 2, result.stderr
    for message in messages:
        assert message in result.stderr
    assert sandbox.state.answers == {}
    assert sandbox.state.log == []
    assert not out.exists()


def test_the_minimal_files_built_here_are_read(tmp_path):
    assert table_rows(read_table(write_xlsx_parts(tmp_path / "l.xlsx"))) == [
        ["5544999999999", "OP-1"]
    ]
    assert table_rows(read_table(write_ods_parts(tmp_path / "l.ods"))) == [["5544999999999"]]


# --- workbooks whose parts inflate past the limit: refused before parsing ----------------------

BOMBS = {
    "one 600 MiB shared string": lambda p: write_xlsx_parts(
        p, strings=(STRINGS + b"<si><t>", (b"9", 600), b"</t></si>"),
        rows=(HEADER_ROW, b'<row r="2"><c r="A2" t="s"><v>2</v></c></row>'),
    ),
    "600 MiB of sheet rows": lambda p: write_xlsx_parts(
        p, rows=(HEADER_ROW, (b'<row><c t="s"><v>2</v></c><c t="s"><v>3</v></c></row>', 600))
    ),
    "600 MiB of ODS rows": lambda p: write_ods_parts(p.with_suffix(".ods"), rows=((ODS_ROW, 600),)),
}  # fmt: skip


@pytest.mark.parametrize("make", BOMBS.values(), ids=BOMBS.keys())
def test_a_workbook_inflating_past_the_limit_is_refused_before_parsing(
    runner, sandbox, tmp_path, make
):
    path = make(tmp_path / "leads.xlsx")
    assert path.stat().st_size < 4 * MIB
    result, out = run(runner, sandbox, path)
    assert_refused(result, out, sandbox, f"{path}: ", "would inflate to 600.0 MiB", "more than")


LIES = {
    "xl/sharedStrings.xml": {
        "strings": (STRINGS + LEAD_STRINGS + b"<si><t>", (b"9", 600), b"</t></si>")
    },
    "xl/worksheets/sheet1.xml": {"rows": (HEADER_ROW, LEAD_ROW, (b"<row/>", 600))},
}


@pytest.mark.parametrize("member", LIES)
def test_a_workbook_understating_its_sizes_is_not_inflated_past_them(
    runner, sandbox, tmp_path, member
):
    """The zip readers stop at the size a member declares: a lie is a damaged file, found after
    reading at most the declared bytes, not 600 MiB."""
    path = write_xlsx_parts(tmp_path / "leads.xlsx", **LIES[member], declare={member: 4096})
    result, out = run(runner, sandbox, path)
    assert_refused(result, out, sandbox, f"{path}: ", "damaged")


def test_cells_reaching_far_past_the_data_are_refused(tmp_path):
    """Two cells, A1 and XFD1048576: the parser would fill the 17 billion cells between."""
    far = b'<row r="1048576"><c r="XFD1048576" t="s"><v>2</v></c></row>'
    path = write_xlsx_parts(tmp_path / "leads.xlsx", rows=(HEADER_ROW, far))
    with pytest.raises(InputError, match=r"leads\.xlsx: reading the workbook needs more than"):
        read_table(path)


def test_one_long_shared_text_in_many_cells_is_refused(tmp_path):
    """1 MiB of text, stored once and used by 32,000 cells: 2 MiB inflated, and 31 GiB once
    every cell holds its own copy."""
    path = write_xlsx_parts(
        tmp_path / "leads.xlsx",
        strings=(STRINGS + b"<si><t>", (b"9", 1), b"</t></si>"),
        rows=(HEADER_ROW, (b'<row><c t="s"><v>2</v></c></row>', 1)),
    )
    with pytest.raises(InputError, match=r"leads\.xlsx: reading the workbook needs more than"):
        read_table(path)


def test_a_sheet_of_more_cells_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_CELLS", 100)
    monkeypatch.setattr(workbook, "CAPPED", False)  # the limit patched here, read here
    rows = [["Telefone", *[f"c{j}" for j in range(9)]]] + [["5544999999999"] * 10] * 10
    with pytest.raises(InputError, match=r"11 rows × 10 columns are 110 cells, more than the 100"):
        read_table(write_xlsx(tmp_path / "leads.xlsx", rows))


def test_workbooks_are_read_alike_where_no_child_process_can_be_capped(tmp_path, monkeypatch):
    path = write_xlsx(tmp_path / "leads.xlsx", [["Nota"], ["x"], ["Telefone"], [5544999999999]])
    capped = read_table(path)
    monkeypatch.setattr(workbook, "CAPPED", False)
    alike = read_table(path)
    assert (alike.sheet, alike.columns, table_rows(alike)) == (
        capped.sheet,
        capped.columns,
        table_rows(capped),
    )
    assert alike.row_numbers.tolist() == capped.row_numbers.tolist() == [4]


# --- CSV files past their limits -----------------------------------------------------------------


def test_a_csv_past_the_size_limit_is_refused_before_parsing(runner, sandbox, tmp_path):
    rows = [["Telefone", "Operadores"]] + [["5544999999999", "OP-1"]] * 500
    path = write_csv(tmp_path / "leads.csv", rows)
    with open(path, "r+b") as fh:
        fh.truncate(129 * MIB)  # a sparse file: nothing written past the rows
    result, out = run(runner, sandbox, path)
    assert_refused(result, out, sandbox, f"{path}: the file is 129.0 MiB, more than the")


def test_more_data_rows_than_a_worksheet_holds_are_refused(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"Telefone\n" + b"1\n" * 1_048_577)
    with pytest.raises(
        InputError, match=r"leads\.csv: 1,048,577 data rows, more than the 1,048,576"
    ):
        read_table(path)


def test_a_csv_grid_of_too_many_cells_is_refused_before_parsing(tmp_path):
    """A first line of 20,000 fields makes every line below it 20,000 cells wide."""
    path = tmp_path / "leads.csv"
    path.write_bytes(b"Telefone" + b"," * 19_999 + b"\n" + b"5544999999999\n" * 1_000)
    with pytest.raises(InputError, match=r"leads\.csv: 1,001 rows × 20,000 columns are 20,020,000"):
        read_table(path)


# --- control characters anywhere in the cells ----------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x0b", "\x1b", "\x1f"])
def test_a_control_character_past_the_first_8_kb_of_a_csv_is_refused(
    runner, sandbox, tmp_path, char
):
    rows = [["Telefone", "Operadores"]] + [[f"55449{i:08d}", "OP-1"] for i in range(1000)]
    rows[700][1] = f"OP{char}X"  # data row 700: row 701 as a spreadsheet numbers it
    path = write_csv(tmp_path / "leads.csv", rows)
    assert path.read_bytes().index(char.encode()) > 8192
    result, out = run(runner, sandbox, path)
    where = f"{path}: row 701, column 'Operadores' holds a control character (U+{ord(char):04X})"
    assert_refused(result, out, sandbox, where)


def test_a_control_character_in_a_workbook_cell_is_refused(runner, sandbox, tmp_path):
    rows = [["Telefone", "Operadores"], ["5544999999999", "OP-1"], ["5544999999998", "OP\x00X"]]
    path = write_xlsx(tmp_path / "leads.xlsx", rows)
    result, out = run(runner, sandbox, path)
    where = f"{path}, sheet 'Leads': row 3, column 'Operadores' holds a control character (U+0000)"
    assert_refused(result, out, sandbox, where)


def test_tabs_and_line_breaks_inside_cells_are_text(tmp_path):
    rows = [["Telefone", "Nota"], ["5544999999999", "a\tb\r\nc\nd\re"]]
    rows += [["5544999999998", "x"]] * 500
    table = read_table(write_csv(tmp_path / "leads.csv", rows))
    assert table_rows(table)[0] == ["5544999999999", "a\tb\r\nc\nd\re"]


def test_a_workbook_read_from_a_thread_forks_nothing(tmp_path, monkeypatch):
    """The page reads workbooks from worker threads: the capped reader starts a fresh process
    (no fork of a process running threads), and it reads as in this process."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def no_fork():
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    path = write_xlsx(tmp_path / "leads.xlsx", [["Telefone", "Nome"], [5544999999999, "Ana"]])
    with ThreadPoolExecutor(2) as pool:
        tables = list(pool.map(read_table, [path, path]))
    assert [table_rows(t) for t in tables] == [[["5544999999999", "Ana"]]] * 2
