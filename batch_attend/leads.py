"""One spreadsheet row in, a valid request or the reason it cannot be sent out.

Validation happens for every row before anything is sent, so a row the API would reject (or, worse,
misroute) never costs a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.reading import ColumnMap, Table

DEFAULT_COUNTRY_CODE = "55"
MIN_DIGITS = 10
MAX_DIGITS = 15  # E.164
NATIONAL_DIGITS = (10, 11)  # Brazilian area code + 8 or 9 digit number

# What people put around the digits of a phone number; anything else makes the cell suspect.
_PHONE_DECORATION = re.compile(r"[\s\u00a0\u2007\u202f+().\-/]")
_OPERATOR_SEPARATORS = re.compile(r"[,;|\r\n]+")
_EXCEL_WHOLE_FLOAT = re.compile(r"^\d+\.0+$")
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
# A long run of digits with a fraction: a number cell, not a phone typed with a dot.
_DECIMAL_NUMBER = re.compile(r"^\d{6,}[.,]\d+$")


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
    text = raw.strip().strip("\u00a0\u2007\u202f").strip()
    if not text:
        raise PhoneError("the phone cell is empty")
    if _EXCEL_WHOLE_FLOAT.match(text):
        text = text.split(".", 1)[0]
    elif _SCIENTIFIC.match(text):
        text = _from_scientific(text)
    elif _DECIMAL_NUMBER.match(text):
        raise PhoneError(
            f"'{text}' is a decimal number, not a phone; "
            "format the phone column as Text in the spreadsheet and type the numbers again"
        )
    international = text.startswith("+") or text.startswith("00")
    leftover = _PHONE_DECORATION.sub("", text)
    if not leftover.isdigit() or not leftover.isascii():
        bad = next((ch for ch in leftover if not (ch.isascii() and ch.isdigit())), "?")
        raise PhoneError(f"'{raw.strip()}' has '{bad}', which is not part of a phone number")
    digits = leftover
    if text.startswith("00"):
        digits = digits[2:]  # international call prefix
    elif not international and digits.startswith("0"):
        digits = digits[1:]  # trunk prefix, as in 044 99999-9999
    if not international and len(digits) in NATIONAL_DIGITS:
        digits = country_code + digits
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise PhoneError(
            f"'{raw.strip()}' has {len(digits)} digits; a phone needs "
            f"{MIN_DIGITS} to {MAX_DIGITS} (country code, area code, number)"
        )
    return digits


def split_operators(cell: str) -> tuple[str, ...]:
    """Operator IDs from one cell: split on , ; | or new lines, trimmed, first occurrence kept."""
    seen: dict[str, None] = {}
    for part in _OPERATOR_SEPARATORS.split(cell):
        part = part.strip().strip("\u00a0").strip()
        if part:
            seen.setdefault(part, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class Lead:
    """A row that passed validation: exactly what will be sent for it."""

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


def validate_row(
    index: int, row: list[str], row_number: int, columns: ColumnMap, defaults: LeadDefaults
) -> Lead | Outcome:
    """A :class:`Lead` ready to send, or an ``invalid`` :class:`Outcome` naming the problem."""
    try:
        phone = normalize_phone(row[columns.phone], defaults.country_code)
    except PhoneError as exc:
        return Outcome(
            RowStatus.INVALID, error_code=ErrorCode.INVALID_PHONE, error_message=str(exc)
        )
    operators = split_operators(row[columns.operators]) if columns.operators is not None else ()
    operators = operators or defaults.operators
    if not operators:
        where = (
            "the operators cell is empty"
            if columns.operators is not None
            else "no operators column"
        )
        return Outcome(
            RowStatus.INVALID,
            error_code=ErrorCode.MISSING_OPERATORS,
            error_message=f"{where} and no --operator default was given",
        )
    department = row[columns.department].strip() if columns.department is not None else ""
    department = department or defaults.department or None
    return Lead(
        index=index, row=row_number, phone=phone, operators=operators, department=department
    )


def validate_table(
    table: Table, columns: ColumnMap, defaults: LeadDefaults
) -> list[Lead | Outcome]:
    """Validate every row of ``table``; the list is in input order, one entry per data row."""
    return [
        validate_row(i, row, table.row_numbers[i], columns, defaults)
        for i, row in enumerate(table.rows)
    ]


def duplicate_of(leads: list[Lead]) -> dict[int, int]:
    """For each lead whose phone already appeared earlier in the file: its index → the earlier row.

    Sending the same phone twice would at best cost a request and at worst race two starts with
    different operators, so later copies are skipped (``--allow-duplicates`` turns this off).
    """
    first_row: dict[str, int] = {}
    duplicates: dict[int, int] = {}
    for lead in leads:
        if lead.phone in first_row:
            duplicates[lead.index] = first_row[lead.phone]
        else:
            first_row[lead.phone] = lead.row
    return duplicates
