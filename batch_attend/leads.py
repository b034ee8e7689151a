"""One spreadsheet row in, a valid request or the reason it cannot be sent out.

Validation happens for every row before anything is sent, so a row the API would reject (or, worse,
misroute) never costs a request.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import polars as pl

from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.reading import ColumnMap, Table

DEFAULT_COUNTRY_CODE = "55"
MIN_DIGITS = 10
MAX_DIGITS = 15  # E.164
NATIONAL_DIGITS = (10, 11)  # Brazilian area code + 8 or 9 digit number

# What people put around the digits of a phone number; anything else makes the cell suspect.
_DROP_DECORATION = str.maketrans("", "", " \t\r\n\v\f\u00a0\u2007\u202f\u2009\u200b\u3000+().-/")
_OPERATOR_SEPARATORS = re.compile(r"[,;|\r\n\x1f]+")
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
    length = value.adjusted() + 1  # digits of the whole number, without writing 1E4300 out
    if significant < length:
        raise PhoneError(
            f"'{text}' is a number in scientific notation that lost digits; "
            "format the phone column as Text in the spreadsheet and type the numbers again"
        )
    return str(int(value))


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
    """Operator IDs from one cell: split on , ; | or new lines (and the ASCII unit separator),
    trimmed, first occurrence kept.

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

    def body_bytes(self) -> bytes:
        """:meth:`body` as ``json.dumps(...).encode()`` writes it, assembled from pieces cached
        per operator list and department (a sheet repeats a few): the request loop's hottest
        line. The phone is digits only, so it needs no escaping."""
        tail = _json_tail(self.operators, self.department)
        return b'{"phone": "' + self.phone.encode() + tail


@functools.lru_cache(maxsize=4096)
def _json_tail(operators: tuple[str, ...], department: str | None) -> bytes:
    tail = '", "operators": ' + json.dumps(list(operators), ensure_ascii=False)
    if department:
        tail += ', "departmentId": ' + json.dumps(department, ensure_ascii=False)
    return (tail + "}").encode()


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
    """A :class:`Lead` ready to send, or an ``invalid`` :class:`Outcome` naming the problem.

    The rules for one row, written plainly: :func:`validate_table` applies them a column at a
    time, and a hypothesis test holds the two to the same answers.
    """
    try:
        phone = normalize_phone(row[columns.phone], defaults.country_code)
    except PhoneError as exc:
        return Outcome(
            RowStatus.INVALID, error_code=ErrorCode.INVALID_PHONE, error_message=str(exc)
        )
    operators_cell = row[columns.operators] if columns.operators is not None else ""
    operators = split_operators(operators_cell) if operators_cell else ()
    operators = operators or defaults.operators
    if not operators and not defaults.pool:
        has_column = columns.operators is not None
        return Outcome(
            RowStatus.INVALID,
            error_code=ErrorCode.MISSING_OPERATORS,
            error_message=_missing_operators(has_column),
        )
    department_cell = row[columns.department] if columns.department is not None else ""
    department = department_cell.strip() if department_cell else ""
    return Lead(index, row_number, phone, operators, department or defaults.department or None)


def _missing_operators(has_column: bool) -> str:
    where = "the operators cell is empty" if has_column else "no operators column"
    return f"{where} and no --operator default was given"


#: Operator IDs inside a plan's ``operators`` column are joined by this: the ASCII unit
#: separator, which :func:`split_operators` also splits on, so no ID can contain it.
OPERATORS_JOINER = "\x1f"


def operators_key(operators: Sequence[str]) -> str:
    """The plan's text form of an operator tuple; :func:`operators_of` reverses it."""
    return OPERATORS_JOINER.join(operators)


def operators_of(key: str | None) -> tuple[str, ...]:
    return tuple(key.split(OPERATORS_JOINER)) if key else ()


#: The columns of a plan: one row per input row, in input order. ``status`` is null for a row
#: still to be sent; otherwise the row's fate is already decided (invalid, or skipped and why).
PLAN_SCHEMA = {
    "row": pl.Int64,
    "phone": pl.String,  # normalized digits; null when the row is invalid
    "operators": pl.String,  # operator IDs joined by OPERATORS_JOINER; "" when none
    "department": pl.String,  # null when none
    "status": pl.String,
    "error_code": pl.String,
    "error_message": pl.String,
}
#: Rows of a plan not decided yet: these are the ones to send.
PENDING = pl.col("status").is_null()

# A phone cell the vectorised path settles by itself: ASCII digits and masks, no space at either
# end, nothing a number cell leaves behind (. , e E). Every other cell takes normalize_phone.
_PLAIN_PHONE = r"^[0-9+()/-](?:[0-9 +()/-]*[0-9+()/-])?$"
_MASKS = " +()/-"  # all a plain phone holds besides digits


def normalize_phones(cells: pl.Series, country_code: str = DEFAULT_COUNTRY_CODE) -> pl.DataFrame:
    """:func:`normalize_phone` over a column: ``phone`` (null where invalid) and ``error``.

    The common cells are normalized by polars in one pass; the rest (and every invalid one) go
    through :func:`normalize_phone` itself, so both paths give the same answers (a hypothesis
    test in test_leads.py holds them equal).
    """
    text, digits, number = pl.col("cell"), pl.col("digits"), pl.col("number")
    international = text.str.starts_with("+")
    fast = (  # one step per line: an eager frame computes a shared expression once per use
        pl.DataFrame({"cell": cells})
        .with_columns(digits=text.str.replace_many(list(_MASKS), [""] * len(_MASKS)))
        .with_columns(
            number=pl.when(text.str.starts_with("00"))
            .then(digits.str.slice(2))
            .when(~international & digits.str.starts_with("0"))
            .then(digits.str.slice(1))
            .otherwise(digits)
        )
        .with_columns(
            phone=pl.when(~international & number.str.len_bytes().is_in(NATIONAL_DIGITS))
            .then(pl.lit(country_code) + number)
            .otherwise(number)
        )
        .select(
            "cell",
            phone=pl.when(
                text.str.contains(_PLAIN_PHONE)
                & (digits.str.len_bytes() > 0)
                & pl.col("phone").str.len_bytes().is_between(MIN_DIGITS, MAX_DIGITS)
            ).then(pl.col("phone")),
            error=pl.lit(None, pl.String),
        )
    )
    slow = fast.get_column("phone").is_null()
    if not slow.any():
        return fast.select("phone", "error")
    where = slow.arg_true()
    phones, errors = [], []
    for cell in fast.get_column("cell").gather(where).to_list():
        try:
            phones.append(normalize_phone(cell, country_code))
            errors.append(None)
        except PhoneError as exc:
            phones.append(None)
            errors.append(str(exc))
    return pl.DataFrame(
        [
            fast.get_column("phone").scatter(where, pl.Series(phones, dtype=pl.String)),
            fast.get_column("error").scatter(where, pl.Series(errors, dtype=pl.String)),
        ]
    )


def validate_table(table: Table, columns: ColumnMap, defaults: LeadDefaults) -> pl.DataFrame:
    """Validate every row of ``table`` into a plan (see ``PLAN_SCHEMA``), a column at a time.

    Row for row the same answers as :func:`validate_row`: phones through
    :func:`normalize_phones`, and operator and department cells once per distinct value.
    """
    n = len(table)
    empty = pl.Series([""] * n, dtype=pl.String)
    phones = normalize_phones(table.column(columns.phone), defaults.country_code)
    operator_cells = table.column(columns.operators) if columns.operators is not None else empty
    department_cells = table.column(columns.department) if columns.department is not None else empty
    fill = operators_key(defaults.operators)
    operators = operator_cells.replace_strict(
        {
            cell: operators_key(split_operators(cell)) or fill
            for cell in operator_cells.unique().to_list()
        },
        return_dtype=pl.String,
    )
    department = department_cells.replace_strict(
        {
            cell: cell.strip() or defaults.department or None
            for cell in department_cells.unique().to_list()
        },
        return_dtype=pl.String,
    )
    bad_phone = pl.col("error").is_not_null()
    no_operators = pl.col("operators") == ""
    if defaults.pool:
        no_operators = pl.lit(False)
    return (
        pl.DataFrame(
            {
                "row": pl.Series(table.row_numbers, dtype=pl.Int64),
                "phone": phones.get_column("phone"),
                "operators": operators,
                "department": department,
                "error": phones.get_column("error"),
            }
        )
        .with_columns(
            status=pl.when(bad_phone | no_operators).then(pl.lit(str(RowStatus.INVALID))),
            error_code=pl.when(bad_phone)
            .then(pl.lit(str(ErrorCode.INVALID_PHONE)))
            .when(no_operators)
            .then(pl.lit(str(ErrorCode.MISSING_OPERATORS))),
            error_message=pl.when(bad_phone)
            .then(pl.col("error"))
            .when(no_operators)
            .then(pl.lit(_missing_operators(columns.operators is not None))),
        )
        .select(list(PLAN_SCHEMA))
        .cast(PLAN_SCHEMA)
    )


def leads_to_send(plan: pl.DataFrame) -> list[Lead]:
    """A :class:`Lead` for every row of ``plan`` still to be sent, in input order.

    Rows repeat a few operator lists and departments: each distinct one is built once and
    shared (looked up by its rank among the distinct values), which keeps a million leads a
    few hundred megabytes lighter."""
    todo = plan.with_row_index("index").filter(PENDING)
    fields = zip(
        *(todo.get_column(c).to_list() for c in ("index", "row", "phone")),
        _shared(todo.get_column("operators"), operators_of),
        _shared(todo.get_column("department"), lambda name: name),
        strict=True,
    )
    # tuple.__new__ straight from C: Lead(...) would run the named tuple's Python __new__ for
    # every row (a fifth of this function's time at 20,000 rows).
    return list(map(functools.partial(tuple.__new__, Lead), fields))


def _shared(column: pl.Series, build) -> list:
    """``build(value)`` for every value of ``column``, one object per distinct value."""
    distinct = [build(v) for v in column.unique().sort(nulls_last=True).to_list()]
    if column.null_count():
        distinct.insert(0, distinct.pop())  # null's rank is None: give it index 0
        return [distinct[rank or 0] for rank in column.rank("dense").to_list()]
    return [distinct[rank - 1] for rank in column.rank("dense").to_list()]
