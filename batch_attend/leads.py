"""One spreadsheet row in, a valid request or the reason it cannot be sent out.

Validation happens for every row before anything is sent, so a row the API would reject (or, worse,
misroute) never costs a request. Each rule is one function of one value (a phone cell, an
operators cell); a column is validated by applying it to every cell, or once to every distinct
cell where a sheet repeats a few values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import pandas as pd

from batch_attend.outcomes import ErrorCode, RowStatus
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
_AS_TEXT = "format the phone column as Text in the spreadsheet and type the numbers again"


class PhoneError(ValueError):
    """A phone that cannot be sent; the message is the human sentence for the results file."""


def _from_scientific(text: str) -> str:
    """Digits of a phone that a spreadsheet turned into scientific notation, if none were lost."""
    mantissa, _, _ = text.lower().partition("e")
    significant = len(re.sub(r"[-+.,]", "", mantissa).lstrip("0"))
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid forms
        raise PhoneError(f"'{text}' is not a phone number") from exc
    if value != value.to_integral_value() or value < 0:
        raise PhoneError(f"'{text}' is not a phone number")
    length = value.adjusted() + 1  # digits of the whole number, without writing 1E4300 out
    if significant < length:
        raise PhoneError(
            f"'{text}' is a number in scientific notation that lost digits; {_AS_TEXT}"
        )
    return str(int(value))


def normalize_phone(raw: str, country_code: str = DEFAULT_COUNTRY_CODE) -> str:
    """Return the digits to send for ``raw``, or raise :class:`PhoneError` saying why not.

    Masks (``+``, spaces, dots, dashes, parentheses, NBSP) are dropped; a leading ``+`` or
    ``00`` marks an international number; otherwise a leading trunk ``0`` is dropped and a 10 or
    11 digit national number gets ``country_code``; the result must have 10 to 15 digits. A
    ninth digit is never added or removed: both Brazilian forms are sent as written.
    Spreadsheet artefacts (``554499999999.0``, ``5.544999999999e+12``) are undone only when no
    digit was lost.
    """
    text = raw.strip()  # str.strip() also drops NBSP and the other Unicode spaces
    if not text:
        raise PhoneError("the phone cell is empty")
    if _EXCEL_WHOLE_FLOAT.match(text):
        text = text.split(".", 1)[0]
    elif _SCIENTIFIC.match(text):
        text = _from_scientific(text)
    elif _DECIMAL_NUMBER.match(text):
        raise PhoneError(f"'{text}' is a decimal number, not a phone; {_AS_TEXT}")
    digits = text.translate(_DROP_DECORATION)
    if not (digits.isdigit() and digits.isascii()):
        bad = next((ch for ch in digits if not (ch.isascii() and ch.isdigit())), "?")
        raise PhoneError(f"'{text}' has '{bad}', which is not part of a phone number")
    international = text.startswith(("+", "00"))
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


def normalize_phones(cells: pd.Series, country_code: str = DEFAULT_COUNTRY_CODE) -> pd.DataFrame:
    """:func:`normalize_phone` over a column: ``phone`` ("" where invalid) and ``error`` (""
    where valid)."""
    phones, errors = [], []
    for cell in cells:
        try:
            phones.append(normalize_phone(cell, country_code))
            errors.append("")
        except PhoneError as exc:
            phones.append("")
            errors.append(str(exc))
    return pd.DataFrame({"phone": phones, "error": errors}, index=cells.index, dtype=str)


def split_operators(cell: str) -> tuple[str, ...]:
    """Operator IDs from one cell: split on , ; | or new lines, trimmed, first occurrence kept."""
    parts = (part.strip() for part in _OPERATOR_SEPARATORS.split(cell))
    return tuple(dict.fromkeys(part for part in parts if part))


def per_distinct(cells: pd.Series, rule) -> pd.Series:
    """``rule`` applied once per distinct cell (a sheet repeats a few operators and departments),
    its results shared by every row holding that cell."""
    return cells.map({cell: rule(cell) for cell in cells.unique()}).astype(object)


class Lead(NamedTuple):
    """A row that passed validation: exactly what will be sent for it."""

    index: int  # position in the table, 0-based
    row: int  # the row number a person sees
    phone: str
    operators: tuple[str, ...]
    department: str  # "" when none

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
    department: str = ""
    country_code: str = DEFAULT_COUNTRY_CODE
    pool: bool = False  # rows without operators get a pool member later, in planning


#: The columns of a plan: one row per input row, in input order. ``status`` is None for a row
#: still to be sent; otherwise the row's fate is already decided (invalid, skipped, or done by an
#: earlier run: ``carried``, see ``planning.carry_over``).
PLAN_COLUMNS = (
    "row", "phone", "operators", "department", "status", "error_code", "error_message", "carried",
)  # fmt: skip


def pending(plan: pd.DataFrame) -> pd.Series:
    """The rows of ``plan`` still to be sent."""
    return plan["status"].isna()


def decide(plan: pd.DataFrame, rows: pd.Series, status: str, codes, messages) -> pd.DataFrame:
    """``plan`` with ``rows`` (a mask) given ``status`` and ``code: message`` (the same for
    every row, or a Series of one per row)."""
    plan = plan.copy()
    plan.loc[rows, "status"] = str(status)
    for column, values in (("error_code", codes), ("error_message", messages)):
        plan.loc[rows, column] = values  # a Series is aligned on the index
    return plan


def _missing_operators(has_column: bool) -> str:
    where = "the operators cell is empty" if has_column else "no operators column"
    return f"{where} and no --operator default was given"


def validate(table: Table, columns: ColumnMap, defaults: LeadDefaults) -> pd.DataFrame:
    """Validate every row of ``table`` into a plan (see ``PLAN_COLUMNS``)."""
    empty = pd.Series("", index=table.frame.index, dtype=str)

    def cells(j: int | None) -> pd.Series:
        return table.column(j) if j is not None else empty

    phones = normalize_phones(cells(columns.phone), defaults.country_code)
    operators = per_distinct(
        cells(columns.operators), lambda c: split_operators(c) or defaults.operators
    )
    department = per_distinct(cells(columns.department), lambda c: c.strip() or defaults.department)
    plan = pd.DataFrame(
        {
            "row": pd.Series(table.row_numbers, index=table.frame.index, dtype="int64"),
            "phone": phones["phone"],
            "operators": operators,
            "department": department.astype(str),
            "status": pd.Series(None, index=table.frame.index, dtype=object),
            "error_code": empty,
            "error_message": empty,
            "carried": False,
        }
    )
    bad_phone = phones["error"] != ""
    plan = decide(plan, bad_phone, RowStatus.INVALID, ErrorCode.INVALID_PHONE, phones["error"])
    if not defaults.pool:
        no_operators = pending(plan) & (plan["operators"].map(len) == 0)
        plan = decide(
            plan,
            no_operators,
            RowStatus.INVALID,
            ErrorCode.MISSING_OPERATORS,
            _missing_operators(columns.operators is not None),
        )
    return plan


def leads_to_send(plan: pd.DataFrame) -> Iterator[Lead]:
    """A :class:`Lead` for every row of ``plan`` still to be sent, in input order, made as the
    sender asks for them (memory stays flat however long the file)."""
    todo = plan[pending(plan)]
    for index, row, phone, operators, department in zip(
        todo.index, todo["row"], todo["phone"], todo["operators"], todo["department"], strict=True
    ):
        yield Lead(int(index), int(row), phone, operators, department)
