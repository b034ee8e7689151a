"""One spreadsheet row in, a valid request or the reason it cannot be sent out.

Validation happens for every row before anything is sent, so a row the API would reject (or, worse,
misroute) never costs a request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.reading import ColumnMap, Table

DEFAULT_COUNTRY_CODE = "55"
MIN_DIGITS = 10
MAX_DIGITS = 15  # E.164
NATIONAL_DIGITS = (10, 11)  # Brazilian area code + 8 or 9 digit number

# What people put around the digits of a phone number; anything else makes the cell suspect.
_DROP_DECORATION = str.maketrans("", "", " \t\r\n\v\f\u00a0\u2007\u202f\u2009\u200b\u3000+().-/")
_OPERATOR_SEPARATORS = re.compile(r"[,;|\r\n]+")
_EXCEL_WHOLE_FLOAT = re.compile(r"^\d+\.0+$")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
# A long run of digits with a fraction: a number cell, not a phone typed with a dot.
_DECIMAL_NUMBER = re.compile(r"^\d{6,}[.,]\d+$")

_ASCII_DECORATION = b" \t\r\n\v\f+().-/"


def _without_mask(text: str) -> str:
    """``text`` without the characters people put around phone digits (fast for ASCII)."""
    if text.isascii():
        return text.encode("ascii").translate(None, _ASCII_DECORATION).decode("ascii")
    return text.translate(_DROP_DECORATION)


class PhoneError(ValueError):
    """A phone that cannot be sent; the message is the human sentence for the results file."""


def _from_scientific(text: str) -> str:
    """Digits of a phone that a spreadsheet turned into scientific notation, if none were lost."""
    mantissa, _, _ = text.lower().partition("e")
    significant = len(
        mantissa.replace("-", "").replace("+", "").replace(".", "").replace(",", "").lstrip("0")
    )
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid forms
        raise PhoneError(f"'{text}' is not a phone number") from exc
    if value != value.to_integral_value() or value < 0:
        raise PhoneError(f"'{text}' is not a phone number")
    digits = str(int(value))
    if significant < len(digits):
        raise PhoneError(
            f"'{text}' is a number in scientific notation that lost digits; "
            "format the phone column as Text in the spreadsheet and type the numbers again"
        )
    return digits


def normalize_phone(raw: str, country_code: str = DEFAULT_COUNTRY_CODE) -> str:
    """Return the digits to send for ``raw``, or raise :class:`PhoneError` saying why not.

    Masks (``+``, spaces, dots, dashes, parentheses, NBSP) are dropped; a leading trunk ``0`` is
    dropped; a 10 or 11 digit national number gets ``country_code``; the result must have 10 to 15
    digits. A ninth digit is never added or removed: both Brazilian forms are sent as written.
    """
    text = raw.strip()  # str.strip() also drops NBSP and the other Unicode spaces
    if not text:
        raise PhoneError("the phone cell is empty")
    if text.isdigit() and text.isascii():  # the common case, already digits only
        return _national_or_international(text, text, False, country_code, raw)
    if "." not in text and "," not in text and "e" not in text and "E" not in text:
        # A masked phone such as (44) 99999-9999: no number-cell artefacts to undo.
        leftover = _without_mask(text)
        if leftover.isdigit() and leftover.isascii():
            return _national_or_international(
                text, leftover, text.startswith("+"), country_code, raw
            )
    if _EXCEL_WHOLE_FLOAT.match(text):
        text = text.split(".", 1)[0]
    elif _SCIENTIFIC.match(text):
        text = _from_scientific(text)
    elif _DECIMAL_NUMBER.match(text):
        raise PhoneError(
            f"'{text}' is a decimal number, not a phone; "
            "format the phone column as Text in the spreadsheet and type the numbers again"
        )
    leftover = _without_mask(text)
    if not leftover.isdigit() or not leftover.isascii():
        bad = next((ch for ch in leftover if not (ch.isascii() and ch.isdigit())), "?")
        raise PhoneError(f"'{text}' has '{bad}', which is not part of a phone number")
    return _national_or_international(text, leftover, text.startswith("+"), country_code, raw)


def _national_or_international(
    text: str, digits: str, international: bool, country_code: str, raw: str
) -> str:
    if text.startswith("00"):
        digits = digits[2:]  # international call prefix
    elif not international and digits.startswith("0"):
        digits = digits[1:]  # trunk prefix, as in 044 99999-9999
    if not international and len(digits) in NATIONAL_DIGITS:
        digits = country_code + digits
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise PhoneError(
            f"'{text}' has {len(digits)} digits; a phone needs "
            f"{MIN_DIGITS} to {MAX_DIGITS} (country code, area code, number)"
        )
    return digits


@functools.lru_cache(maxsize=4096)
def split_operators(cell: str) -> tuple[str, ...]:
    """Operator IDs from one cell: split on , ; | or new lines, trimmed, first occurrence kept.

    Cached: a sheet names the same few operators over and over."""
    seen: dict[str, None] = {}
    for part in _OPERATOR_SEPARATORS.split(cell):
        part = part.strip().strip("\u00a0").strip()
        if part:
            seen.setdefault(part, None)
    return tuple(seen)


class Lead(NamedTuple):
    """A row that passed validation: exactly what will be sent for it.

    A named tuple rather than a dataclass: a million of them are built in a second.
    """

    index: int  # position in the table, 0-based
    row: int  # the row number a person sees
    phone: str
    operators: tuple[str, ...]
    department: str | None

    def body(self) -> dict:
        """The JSON body of the start-attendance request (no ``departmentId`` key when empty)."""
        body: dict = {"phone": self.phone, "operators": list(self.operators)}
        if self.department:
            body["departmentId"] = self.department
        return body


@dataclass(frozen=True)
class LeadDefaults:
    """Values from the command line that fill empty cells."""

    operators: tuple[str, ...] = ()
    department: str | None = None
    country_code: str = DEFAULT_COUNTRY_CODE
    pool: bool = False  # rows without operators get a pool member later, in planning


def validate_row(
    index: int, row: Sequence[str], row_number: int, columns: ColumnMap, defaults: LeadDefaults
) -> Lead | Outcome:
    """A :class:`Lead` ready to send, or an ``invalid`` :class:`Outcome` naming the problem."""
    return _validate(
        index,
        row_number,
        row[columns.phone],
        row[columns.operators] if columns.operators is not None else "",
        row[columns.department] if columns.department is not None else "",
        columns.operators is not None,
        defaults,
    )


def _validate(
    index: int,
    row_number: int,
    phone_cell: str,
    operators_cell: str,
    department_cell: str,
    has_operators_column: bool,
    defaults: LeadDefaults,
) -> Lead | Outcome:
    try:
        phone = normalize_phone(phone_cell, defaults.country_code)
    except PhoneError as exc:
        return Outcome(
            RowStatus.INVALID, error_code=ErrorCode.INVALID_PHONE, error_message=str(exc)
        )
    operators = split_operators(operators_cell) if operators_cell else ()
    operators = operators or defaults.operators
    if not operators and not defaults.pool:
        where = "the operators cell is empty" if has_operators_column else "no operators column"
        return Outcome(
            RowStatus.INVALID,
            error_code=ErrorCode.MISSING_OPERATORS,
            error_message=f"{where} and no --operator default was given",
        )
    department = department_cell.strip() if department_cell else ""
    return Lead(index, row_number, phone, operators, department or defaults.department or None)


def validate_table(
    table: Table, columns: ColumnMap, defaults: LeadDefaults
) -> list[Lead | Outcome]:
    """Validate every row of ``table``; the list is in input order, one entry per data row."""
    n = len(table)
    empty = [""] * n
    phones = table.cells[columns.phone]
    operators = table.cells[columns.operators] if columns.operators is not None else empty
    departments = table.cells[columns.department] if columns.department is not None else empty
    has_operators = columns.operators is not None
    return [
        _validate(i, number, phone, ops, dep, has_operators, defaults)
        for i, (number, phone, ops, dep) in enumerate(
            zip(table.row_numbers, phones, operators, departments, strict=True)
        )
    ]


def duplicate_of(leads: list[Lead]) -> dict[int, int]:
    """For each lead whose phone already appeared earlier in the file: its index → the earlier row.

    Sending the same phone twice would at best cost a request and at worst race two starts with
    different operators, so later copies are skipped (``--allow-duplicates`` turns this off).
    """
    first_row: dict[str, int] = {}
    duplicates: dict[int, int] = {}
    for index, row, phone, _, _ in leads:
        first = first_row.setdefault(phone, row)
        if first != row:
            duplicates[index] = first
    return duplicates
