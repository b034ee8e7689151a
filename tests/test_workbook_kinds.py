"""Workbooks are known by the content types they declare, not by where their parts lie; a
workbook saved with a password, in any of the three formats, is refused as password-protected.
Every file is built here: repackaged from an openpyxl workbook, or encrypted as its format
specifies (checked by decrypting it again)."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zipfile
import zlib

import openpyxl
import pytest
import xlwt
from click.testing import CliRunner

from batch_attend.cli import cli
from batch_attend.reading.files import content_kind, read_table
from tests.conftest import TOKEN, table_rows

ROWS = [["Telefone", "Operadores"], ["(44) 99999-9999", "OP-1"]]
PASSWORD = "senha"


def openpyxl_workbook() -> bytes:
    book = openpyxl.Workbook()
    book.active.title = "Leads"
    for row in ROWS:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def repackaged(path, rename, rewrite=()):
    """The openpyxl workbook with its members renamed by ``rename`` and the references in its
    XML rewritten by ``rewrite`` (pairs of old and new text)."""
    with (
        zipfile.ZipFile(io.BytesIO(openpyxl_workbook())) as source,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for name in source.namelist():
            data = source.read(name)
            for old, new in rewrite:
                data = data.replace(old, new)
            target.writestr(rename(name), data)
    return path


def windows_export(path):
    """Member names with Windows backslashes (``xl\\workbook.xml``), as some exports write."""
    return repackaged(path, lambda name: name.replace("/", "\\"))


def parts_at_the_root(path):
    """A minimal package: the workbook's parts at the root (``/workbook.xml``), found through
    ``[Content_Types].xml`` and ``_rels/.rels``."""

    def moved(name: str) -> str:  # xl/_rels/workbook.xml.rels → _rels/workbook.xml.rels
        if name.startswith("xl/"):
            return ("_rels/" if "/_rels/" in name else "") + name.rsplit("/", 1)[1]
        return name

    references = [
        (b"/xl/worksheets/", b"/"), (b"/xl/theme/", b"/"), (b"/xl/", b"/"),
        (b'"xl/', b'"'), (b'"theme/', b'"'), (b'"worksheets/', b'"'),
    ]  # fmt: skip
    return repackaged(path, moved, references)


@pytest.mark.parametrize("make", [windows_export, parts_at_the_root])
def test_a_workbook_is_known_by_its_content_types_wherever_its_parts_lie(tmp_path, make):
    path = make(tmp_path / "leads.xlsx")
    assert not any(n.startswith("xl/") for n in zipfile.ZipFile(path).namelist())
    assert content_kind(path) == "xlsx"
    assert table_rows(read_table(path)) == ROWS[1:]


def test_parts_at_the_root_are_a_real_package():
    with zipfile.ZipFile(parts_at_the_root(io.BytesIO())) as package:
        names = set(package.namelist())
        assert {"[Content_Types].xml", "_rels/.rels", "workbook.xml", "sheet1.xml"} <= names
        assert b'PartName="/workbook.xml"' in package.read("[Content_Types].xml")
        assert b'Target="workbook.xml"' in package.read("_rels/.rels")


# --- saved with a password ----------------------------------------------------------------


def protected_xls(path):
    """An xlwt workbook encrypted as Excel 97-2003 encrypts one (MS-XLS 2.2.10, RC4 as in
    MS-OFFCRYPTO 2.3.6): a FilePass record after the first BOF, then every record's body
    enciphered, but for BOF, FilePass and BoundSheet8's stream position, with the key
    rederived every 1024 bytes of the stream."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
    from cryptography.hazmat.primitives.ciphers import Cipher
    from msoffcrypto.method.rc4 import _makekey
    from xlwt import CompoundDoc

    book = xlwt.Workbook()
    sheet = book.add_sheet("Leads")
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    plain = book.get_biff_data()
    salt, verifier = bytes(range(16)), b"batch-attend 23!"
    rc4 = Cipher(ARC4(_makekey(PASSWORD, salt, 0)), mode=None).encryptor()
    header = rc4.update(verifier) + rc4.update(hashlib.md5(verifier).digest())
    filepass = struct.pack("<HHHHH", 0x2F, 54, 1, 1, 1) + salt + header
    stream, clear = bytearray(), []  # clear: (start, end) of the bytes left unenciphered
    position = 0
    while position < len(plain):
        kind, size = struct.unpack_from("<HH", plain, position)
        body = bytearray(plain[position + 4 : position + 4 + size])
        start = len(stream)
        if kind == 0x0085:  # BoundSheet8: where the sheet's BOF is, now further on
            body[:4] = struct.pack("<I", struct.unpack_from("<I", body)[0] + len(filepass))
        stream += struct.pack("<HH", kind, size) + body
        # never enciphered: BOF, InterfaceHdr, UsrExcl, FileLock, RRDInfo, RRDHead; BoundSheet8's lbPlyPos
        kept = size if kind in (0x0809, 0xE1, 0x194, 0x195, 0x196, 0x138) else 4 * (kind == 0x85)
        clear.append((start, start + 4 + kept))
        if position == 0:
            clear.append((len(stream), len(stream) + len(filepass)))
            stream += filepass
        position += 4 + size
    gap = -len(stream) % 4  # xlwt pads the stream with zeros: they must read as whole records
    stream += struct.pack("<HH", 0, gap) + bytes(gap) if gap else b""
    keys = b"".join(
        Cipher(ARC4(_makekey(PASSWORD, salt, block)), mode=None).encryptor().update(bytes(1024))
        for block in range(len(stream) // 1024 + 1)
    )
    secret = bytearray(b ^ k for b, k in zip(stream, keys, strict=False))
    for start, end in clear:
        secret[start:end] = stream[start:end]
    CompoundDoc.XlsDoc().save(str(path), bytes(secret))
    return path


def test_the_protected_xls_is_one_that_opens_with_its_password(tmp_path):
    from msoffcrypto.format.xls97 import Xls97File

    with open(protected_xls(tmp_path / "leads.xls"), "rb") as protected:
        office = Xls97File(protected)
        assert office.is_encrypted()
        office.load_key(password=PASSWORD)
        with open(tmp_path / "opened.xls", "wb") as opened:
            office.decrypt(opened)
    assert table_rows(read_table(tmp_path / "opened.xls")) == ROWS[1:]


def protected_ods(path):
    """An OpenDocument spreadsheet saved with a password as ODF 1.2 specifies (part 3, 3.4):
    content.xml deflated, then AES-256-CBC under a PBKDF2 key of the password's SHA-256, stored;
    the manifest says how."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    rows = "".join(
        "<table:table-row>"
        + "".join(
            f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>'
            for v in row
        )
        + "</table:table-row>"
        for row in ROWS
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Leads">{rows}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    ).encode()
    pack = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = pack.compress(content) + pack.flush()
    salt, iv = bytes(range(16)), bytes(range(16, 32))
    key = hashlib.pbkdf2_hmac("sha1", hashlib.sha256(PASSWORD.encode()).digest(), salt, 1000, 32)
    padding = 16 - len(deflated) % 16
    padded = deflated + bytes(padding - 1) + bytes([padding])  # W3C XML Encryption padding
    coder = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    secret = coder.update(padded) + coder.finalize()
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        f'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" manifest:size="{len(content)}">'
        '<manifest:encryption-data manifest:checksum-type="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha256-1k" '
        f'manifest:checksum="{b64(hashlib.sha256(deflated[:1024]).digest())}">'
        '<manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#aes256-cbc" '
        f'manifest:initialisation-vector="{b64(iv)}"/>'
        '<manifest:start-key-generation manifest:start-key-generation-name="http://www.w3.org/2000/09/xmldsig#sha256" manifest:key-size="32"/>'
        '<manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:key-size="32" '
        f'manifest:iteration-count="1000" manifest:salt="{b64(salt)}"/>'
        "</manifest:encryption-data></manifest:file-entry></manifest:manifest>"
    )  # fmt: skip
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        package.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        package.writestr("content.xml", secret)  # stored: deflated before it was enciphered
    return path


def test_the_protected_ods_opens_with_its_password(tmp_path):
    """Undone as the manifest says, the content is the spreadsheet's."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    with zipfile.ZipFile(protected_ods(tmp_path / "leads.ods")) as package:
        manifest, secret = package.read("META-INF/manifest.xml"), package.read("content.xml")
    field = lambda name: base64.b64decode(manifest.split(f'{name}="'.encode())[1].split(b'"')[0])  # noqa: E731
    key = hashlib.pbkdf2_hmac("sha1", hashlib.sha256(b"senha").digest(), field("salt"), 1000, 32)
    coder = Cipher(algorithms.AES(key), modes.CBC(field("initialisation-vector"))).decryptor()
    padded = coder.update(secret) + coder.finalize()
    deflated = padded[: -padded[-1]]
    assert hashlib.sha256(deflated[:1024]).digest() == field("checksum")
    assert b"<text:p>(44) 99999-9999</text:p>" in zlib.decompress(deflated, -15)


@pytest.mark.parametrize(
    ("name", "make"), [("leads.xls", protected_xls), ("leads.ods", protected_ods)]
)
def test_a_workbook_with_a_password_is_refused_as_protected(sandbox, tmp_path, name, make):
    path = make(tmp_path / name)
    result = CliRunner().invoke(
        cli,
        [str(path), "-o", str(tmp_path / "out.csv")],
        env={"PLUGCHAT_TOKEN": TOKEN, "PLUGCHAT_BASE_URL": sandbox.base_url},
    )
    assert result.exit_code == 2, result.stderr
    assert f"{path}: the workbook is password-protected." in result.stderr
    assert sandbox.state.answers == {}
    assert not (tmp_path / "out.csv").exists()
