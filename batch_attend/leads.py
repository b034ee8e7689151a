"""One spreadsheet row in, a valid request or why not, decided before anything is sent (a row the
API would reject or misroute costs no request); rules run per column, or per distinct cell."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import pandas as pd

from batch_attend import sentences
from batch_attend.columns import choose_text, on_cores, pieces
from batch_attend.outcomes import ErrorCode, RowStatus
from batch_attend.reading.headers import ColumnMap
from batch_attend.reading.table import Table

DEFAULT_COUNTRY_CODE = "55"
MIN_DIGITS = 10
MAX_DIGITS = 15  # E.164
#: Brazil's 67 area codes (DDD), as libphonenumber has them.
DDD = "(?:[14689][1-9]|2[12478]|3[1-578]|5[13-5]|7[13-579])"
#: 55, a DDD, then 8 digits (not from 0 or 1) or 9 from 9; or 10-15 digits of another country.
_PHONE = f"55{DDD}(?:[2-9][0-9]{{7}}|9[0-9]{{8}})|[1-46-9][0-9]{{9,14}}|5[0-46-9][0-9]{{8,13}}"
#: The carrier codes libphonenumber knows after a trunk 0 (0 15 11 98765-4321), or ``xx``.
CARRIERS = "12, 14, 15, 21, 22, 23, 25, 31, 41, 43, 55, 65, 99"
_TRUNK = r"^(55)?0(?:1[245]|2[1-35]|31|4[13]|[56]5|99|[xX]{2})?([0-9]{10,11})$"
_OPERATOR_SEPARATORS = re.compile(r"[,;|\r\n]+")
# What people put around a phone's digits, written out (not as \u escapes) for pyarrow's regex.
_MASK = "[ \t\r\n\v\f\u00a0\u2007\u202f\u2009\u200b\u3000+().\\-/]"
_SCIENTIFIC = r"[+-]?[0-9]+(?:[.,][0-9]+)?[eE][+-]?[0-9]+"
# A long run of digits with a fraction: a number cell, not a phone typed with a dot.
_DECIMAL_NUMBER = r"[0-9]{6,}[.,][0-9]+"


def _from_scientific(text: str) -> tuple[str, str]:
    """The digits of a phone in scientific notation, if none were lost (else an error)."""
    mantissa, _, _ = text.lower().partition("e")
    significant = len(re.sub(r"[-+.,]", "", mantissa).lstrip("0"))
    value = Decimal(text.replace(",", "."))  # the pattern admits only valid forms
    if value != value.to_integral_value() or value < 0:
        return "", sentences.NOT_A_PHONE.format(cell=text)
    length = value.adjusted() + 1  # digits of the whole number, without writing 1E4300 out
    if significant < length:
        return "", sentences.LOST_DIGITS.format(cell=text)
    return str(int(value)), ""


def join_ddd(phones: pd.Series, ddd: pd.Series) -> pd.Series:
    """Phones of 8 or 9 digits with their row's DDD ("44", "(44)" or "044") in front."""
    text = phones.astype(str).str.strip()
    digits = text.str.replace(r"\.0+$", "", regex=True).str.replace(_MASK, "", regex=True)
    area = ddd.astype(str).str.replace(r"[^0-9]", "", regex=True).str.lstrip("0")
    join = (
        digits.str.fullmatch(r"[0-9]{8,9}")
        & area.str.fullmatch(r"[1-9][0-9]")
        & ~text.str.startswith("+")
    ).to_numpy(bool)
    return choose_text(join, area + digits, phones.astype(str)) if join.any() else phones


def normalize_phones(
    cells: pd.Series, country_code: str = DEFAULT_COUNTRY_CODE, ddd_column: str | None = None
) -> pd.DataFrame:
    """Each cell's digits to send (``phone``, "" where invalid) or why not (``error``), read as
    dialled in Brazil; a number cell's artefacts are undone only when no digit was lost."""
    text = cells.astype(str).str.strip()
    error = pd.Series("", index=cells.index, dtype=str)
    # A number cell leaves a dot, a comma or an exponent: only such (few) cells are examined.
    odd = text.str.contains(r"[.,eE]").to_numpy(bool)
    if odd.any():
        text[odd], error[odd] = _undo_number_cells(text[odd])
    failed = odd & (error != "").to_numpy(bool)
    digits = text.str.replace(_MASK, "", regex=True)
    plus = text.str.startswith("+").to_numpy(bool)
    idd = ~plus & digits.str.match("00[1-9]").to_numpy(bool)  # no country code starts with 0
    if idd.any():
        digits = choose_text(idd, digits.str.slice(2), digits)
    zero = digits.str.startswith("0").to_numpy(bool)
    coded = plus | idd | (~zero & (digits.str.len() > 11).to_numpy(bool))  # country code first
    part = digits.str.replace(_TRUNK, r"\1\2", regex=True)  # (55) 0 15 11 …: (55) 11 …
    phone = choose_text(coded, part, country_code + part)
    # 12 or more digits, no + or 00, and not our country's code: a number from abroad?
    ours = digits.str.startswith("55") | digits.str.startswith(country_code)
    bare = coded & ~(plus | idd) & ~ours.to_numpy(bool)
    wrong = failed | bare | (coded & zero) | ~phone.str.fullmatch(_PHONE).to_numpy(bool)
    if wrong.any():  # the reasons, worded only for the cells that have one (the others: "")
        facts = pd.DataFrame({"text": text, "digits": digits, "part": part, "phone": phone})
        facts["coded"], facts["bare"], facts["idd"] = coded, bare, idd
        error = _reasons(facts[wrong], error[wrong], ddd_column).reindex(cells.index, fill_value="")
    return pd.DataFrame({"phone": choose_text(wrong, "", phone), "error": error})


def _undo_number_cells(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``554499999999.0``, ``5.544999999999e+12`` as digits; lost digits and decimals as errors."""
    error = pd.Series("", index=text.index, dtype=str)
    text = text.str.replace(r"^([0-9]+)\.0+$", r"\1", regex=True)  # a whole number's float
    scientific = text.str.fullmatch(_SCIENTIFIC)
    if scientific.any():  # rare: the cells are handed over one by one
        undone = [_from_scientific(t) for t in text[scientific]]
        text[scientific] = [d or t for (d, _), t in zip(undone, text[scientific], strict=True)]
        error[scientific] = [e for _, e in undone]
    decimal = text.str.fullmatch(_DECIMAL_NUMBER) & (error == "")
    error[decimal] = sentences.fill(sentences.DECIMAL_NUMBER, cell=text[decimal])
    return text, error


def _reasons(facts: pd.DataFrame, error: pd.Series, ddd_column: str | None) -> pd.Series:
    """Why each of these cells is not a phone (the first reason that applies)."""
    text, digits, part, phone = facts["text"], facts["digits"], facts["part"], facts["phone"]
    length, size = digits.str.len(), part.str.len() - 2  # of a number after 55
    brazil = facts["coded"] & digits.str.startswith("55")
    ours, ddd = phone.str.startswith("55"), phone.str.slice(2, 4)
    unmasked = digits.str.replace(r"^(?:55)?0[xX]{2}", "", regex=True)  # (0xx11) is no error
    bad = unmasked.str.extract(r"([^0-9])", expand=False).fillna("?")
    counted = {"count": length, "least": MIN_DIGITS, "most": MAX_DIGITS, "column": ddd_column}
    no_ddd = sentences.WRONG_LENGTH_NO_DDD if ddd_column is None else sentences.WRONG_LENGTH_BAD_DDD
    short = ~length.between(MIN_DIGITS, MAX_DIGITS)
    for failing, template, values in (
        (text == "", sentences.EMPTY_PHONE, {}),
        (~unmasked.str.fullmatch(r"[0-9]*"), sentences.NOT_PART_OF_A_PHONE, {"char": bad}),
        (facts["coded"] & digits.str.startswith("0"), sentences.ZERO_COUNTRY_CODE, {}),
        (short & length.isin((8, 9)) & ~facts["coded"], no_ddd, counted),  # no +, 00 or 55
        (short & facts["idd"], sentences.WRONG_LENGTH_AFTER_00, counted),
        (short, sentences.WRONG_LENGTH, counted),
        (facts["bare"], sentences.NO_PLUS, {"count": length}),
        (~brazil & part.str.startswith("0"), sentences.AFTER_TRUNK, {"carriers": CARRIERS}),
        (brazil & ~size.isin((10, 11)), sentences.BRAZILIAN_LENGTH, {"count": size}),
        (ours & ~ddd.str.fullmatch(DDD), sentences.UNKNOWN_DDD, {"ddd": ddd}),
        (ours, sentences.NO_SUCH_NUMBER, {}),
        (text == text, sentences.NOT_A_PHONE, {}),  # none of the above
    ):
        rows = (failing & (error == "")).to_numpy(bool)
        if rows.any():  # worded only when some cell has this reason
            error = choose_text(rows, sentences.fill(template, cell=text, **values), error)
    return error


def chat_keys(phones: pd.Series) -> pd.Series:
    """One key per WhatsApp chat: a Brazilian mobile without its ninth digit gets it back."""
    short = phones.str.fullmatch(r"55[0-9]{2}[6-9][0-9]{7}").to_numpy(bool)
    if not short.any():
        return phones
    return choose_text(short, phones.str.slice(0, 4) + "9" + phones.str.slice(4), phones)


#: More operators in one row is a mistake (a column pasted into a cell): the row is refused.
MAX_OPERATORS = 100


def split_operators(cell: str) -> tuple[str, ...]:
    """Operator IDs from one cell, once each; at most :data:`MAX_OPERATORS` + 1."""
    parts = (part.strip() for part in _OPERATOR_SEPARATORS.split(cell, MAX_OPERATORS))
    return tuple(dict.fromkeys(part for part in parts if part))


def per_distinct(cells: pd.Series, rule) -> pd.Series:
    """``rule`` applied once per distinct cell: a sheet repeats a few operators and departments."""
    codes, distinct = pd.factorize(cells)
    results = pd.Series([rule(cell) for cell in distinct], dtype=object).to_numpy()
    return pd.Series(results[codes], index=cells.index, dtype=object)


def map_values(table: Table, columns: ColumnMap, value_map: dict[str, dict[str, str]]) -> Table:
    """``table`` with the values a person mapped replaced: operators in a cell, a whole department."""
    frame = table.frame.copy() if any(value_map.values()) else table.frame
    for role, pairs in value_map.items():
        if (j := getattr(columns, role, None)) is None or not pairs:
            continue

        def rule(cell: str, pairs=pairs, role=role) -> str:
            if role != "operators":
                return pairs.get(cell.strip(), cell)
            names = split_operators(cell)
            return ", ".join(pairs.get(n, n) for n in names) if set(names) & pairs.keys() else cell

        frame[j] = per_distinct(frame[j], rule).astype(str)
    return dataclasses.replace(table, frame=frame)


class Lead(NamedTuple):
    """A row that passed validation: exactly what will be sent for it."""

    index: int  # position in the table, 0-based
    row: int  # the row number a person sees
    phone: str
    operators: tuple[str, ...]
    department: str  # "" when none
    note: tuple[str, str] = ("", "")  # code and sentence for its start (the ninth digit changed)
    key: int | None = None  # the row's fingerprint (see row_keys), kept in the ledger

    def body(self) -> dict:
        """The JSON body of the start-attendance request."""
        body: dict = {"phone": self.phone, "operators": list(self.operators)}
        return {**body, "departmentId": self.department} if self.department else body


@dataclass(frozen=True)
class LeadDefaults:
    """Values from the command line that fill empty cells."""

    operators: tuple[str, ...] = ()
    department: str = ""
    country_code: str = DEFAULT_COUNTRY_CODE
    pool: bool = False  # rows without operators get a pool member later, in planning


def pending(plan: pd.DataFrame) -> pd.Series:
    """The rows still to be sent: a plan's ``status`` is None until their fate is decided."""
    return plan["status"].isna()


def decide(plan: pd.DataFrame, rows: pd.Series, status: str, codes, messages) -> pd.DataFrame:
    """``plan`` with ``rows`` (a mask) given ``status`` and ``code: message`` (one, or a Series)."""
    if not np.asarray(rows, dtype=bool).any():
        return plan
    plan = plan.copy()
    plan.loc[rows, "status"] = str(status)
    for column, values in (("error_code", codes), ("error_message", messages)):
        values = values if isinstance(values, str) else values.reindex(plan.index)
        plan[column] = choose_text(rows, values, plan[column])  # not .loc: a copy per cell
    return plan


def _cells(table: Table, j: int | None) -> pd.Series:
    """A column's cells with a leading ``'`` (a number typed as text) dropped like a space."""
    if j is None:
        return pd.Series("", index=table.frame.index, dtype=str)
    column = table.frame[j]
    if column.str.contains("'", regex=False).any():
        column = column.str.replace(r"^\s*'", "", regex=True)
    return column


def _not_leads(table: Table, phone_cells: pd.Series) -> np.ndarray:
    """Rows below the last phone that fill at most two cells: totals or notes, not leads."""
    phone = (phone_cells.str.strip() != "").to_numpy(bool)
    below = np.zeros(len(table), dtype=bool)
    if phone.any():
        last = int(np.flatnonzero(phone)[-1])
        tail = table.frame.iloc[last + 1 :]
        below[last + 1 :] = (tail.apply(lambda c: c.str.strip() != "").sum(axis=1) <= 2).to_numpy()
    return below


def validate(table: Table, columns: ColumnMap, defaults: LeadDefaults) -> pd.DataFrame:
    """A plan: one row per input row (``row``, ``phone``, ``operators``, ``department``,
    ``status``, ``error_code``, ``error_message``, ``carried`` by an earlier run)."""
    phone_cells, ddd_column = _cells(table, columns.phone), None
    if columns.ddd is not None:
        phone_cells = join_ddd(phone_cells, _cells(table, columns.ddd))
        ddd_column = table.columns[columns.ddd]
    normalize = functools.partial(
        normalize_phones, country_code=defaults.country_code, ddd_column=ddd_column
    )
    phones = pd.concat(on_cores(normalize, pieces(phone_cells)))
    operators = _cells(table, columns.operators)
    operators = per_distinct(operators, lambda c: split_operators(c) or defaults.operators)
    department = _cells(table, columns.department)
    department = per_distinct(department, lambda c: c.strip() or defaults.department)
    plan = pd.DataFrame(
        {
            "row": np.asarray(table.row_numbers, dtype="int64"),
            "phone": phones["phone"],
            "operators": operators,
            "department": department.astype(str),
            "status": None,
            "error_code": "",
            "error_message": "",
            "carried": False,
        },
        index=table.frame.index,
    )
    counts = np.fromiter(map(len, plan["operators"]), dtype=np.int64, count=len(plan))
    too_many = sentences.TOO_MANY_OPERATORS.format(limit=MAX_OPERATORS)
    missing = sentences.NO_OPERATORS
    if columns.operators is None:
        missing = sentences.NO_OPERATORS_COLUMN.format(columns=", ".join(table.columns))
    skipped, invalid = RowStatus.SKIPPED, RowStatus.INVALID
    for rows, status, code, message in (  # a row gets the first that applies
        (_not_leads(table, phone_cells), skipped, ErrorCode.NOT_A_LEAD, sentences.NOT_A_LEAD),
        (phones["error"] != "", invalid, ErrorCode.INVALID_PHONE, phones["error"]),
        (counts > MAX_OPERATORS, invalid, ErrorCode.TOO_MANY_OPERATORS, too_many),
        ((counts == 0) & (not defaults.pool), invalid, ErrorCode.MISSING_OPERATORS, missing),
    ):
        plan = decide(plan, pending(plan) & rows, status, code, message)
    return plan


def row_keys(cells: pd.DataFrame) -> np.ndarray:
    """Each row's fingerprint, kept in the ledger: the row of a phone an earlier run sent."""
    return pd.util.hash_pandas_object(cells, index=False).to_numpy().view(np.int64)


def leads_to_send(plan: pd.DataFrame, cells: pd.DataFrame | None = None) -> Iterator[Lead]:
    """A :class:`Lead` per row still to send, made as the sender asks (no copy of the plan), with
    its fingerprint when the input's ``cells`` are given."""
    live = pending(plan).to_numpy()
    keys = [None] * len(plan)
    if cells is not None and live.any():
        keys = np.zeros(len(plan), dtype=np.int64)
        keys[live] = row_keys(cells[live])
        keys = keys.tolist()
    columns = (plan["row"], plan["phone"], plan["operators"], plan["department"])
    notes = (plan["error_code"], plan["error_message"])  # of a row still to send: a note
    for index, (go, row, phone, operators, department, code, message, key) in enumerate(
        zip(live, *columns, *notes, keys, strict=True)
    ):
        if go:
            yield Lead(index, int(row), phone, operators, department, (code, message), key)
