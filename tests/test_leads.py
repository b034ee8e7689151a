"""Phone normalization, operator splitting, per-row validation, and the column-at-a-time
validation and planning that must give the same answers."""

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from batch_attend.leads import (
    Lead,
    LeadDefaults,
    PhoneError,
    leads_to_send,
    normalize_phone,
    normalize_phones,
    operators_of,
    split_operators,
    validate_row,
    validate_table,
)
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.planning import assign_pool, skip_duplicates
from batch_attend.reading import ColumnMap, Table

# Every format listed in shared/api/README.md ("Phone numbers in the wild"), and more.
PHONES = [
    ("(44) 99999-9999", "5544999999999"),
    ("+55 44 99999-9999", "5544999999999"),
    ("044999999999", "5544999999999"),
    ("5544999999999", "5544999999999"),
    ("554499999999", "554499999999"),  # the vendor's own example: 12 digits, kept as is
    ("5.544999999999e+12", "5544999999999"),
    ("554499999999.0", "554499999999"),
    ("44 9999 9999", "554499999999"),
    ("  (44) 99999-9999  ", "5544999999999"),
    ("\u00a0(44)\u00a099999-9999\u00a0", "5544999999999"),
    ("44.99999.9999", "5544999999999"),
    ("+1 (415) 555-2671", "14155552671"),
    ("0055 44 99999 9999", "5544999999999"),
    ("(11) 3030-4040", "551130304040"),
    ("11987654321", "5511987654321"),
    ("1130304040", "551130304040"),
    ("+55 (62) 3212-4455", "556232124455"),
    ("441234567890123", "441234567890123"),  # 15 digits, the E.164 maximum
]

INVALID = [
    "",
    "   ",
    "\u00a0",
    "12345",
    "999999999",  # 9 digits
    "+55 44",
    "1234567890123456",  # 16 digits
    "(44) 99999-9999 ramal 12",
    "abc",
    "5.54E+11",  # scientific notation that lost digits
    "44 99999-9999 / 44 98888-7777",  # two numbers in one cell: 22 digits
    "٤٤٩٩٩٩٩٩٩٩٩",  # non-ASCII digits are not sent
    "5544999999.5",  # a number cell with a fraction
    "554499999999,25",
]


@pytest.mark.parametrize(("raw", "expected"), PHONES)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_phones_raise(raw):
    with pytest.raises(PhoneError):
        normalize_phone(raw)


def test_a_huge_exponent_is_an_invalid_phone_not_a_crash():
    with pytest.raises(PhoneError, match="lost digits"):
        normalize_phone("1E4300")


def test_scientific_notation_that_lost_digits_says_to_format_as_text():
    with pytest.raises(PhoneError, match="format the phone column as Text"):
        normalize_phone("5.54E+11")


def test_ninth_digit_is_never_added_or_removed():
    assert normalize_phone("(44) 9999-9999") == "554499999999"
    assert normalize_phone("(44) 99999-9999") == "5544999999999"


def test_country_code_option():
    assert normalize_phone("(21) 98765-4321", country_code="351") == "35121987654321"
    assert normalize_phone("+55 21 98765-4321", country_code="351") == "5521987654321"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("OP-1", ("OP-1",)),
        ("OP-1, OP-2", ("OP-1", "OP-2")),
        ("OP-1;OP-2|OP-3", ("OP-1", "OP-2", "OP-3")),
        ("OP-1\nOP-2\r\nOP-3", ("OP-1", "OP-2", "OP-3")),
        ("OP-2, OP-1, OP-2", ("OP-2", "OP-1")),
        (" , ; ", ()),
        ("", ()),
    ],
)
def test_split_operators(cell, expected):
    assert split_operators(cell) == expected


COLUMNS = ColumnMap(phone=0, operators=1, department=2)


def test_valid_row_becomes_lead_with_body():
    lead = validate_row(0, ["(44) 99999-9999", "A; B", "DEP"], 2, COLUMNS, LeadDefaults())
    assert isinstance(lead, Lead)
    assert lead.row == 2
    assert lead.body() == {
        "phone": "5544999999999",
        "operators": ["A", "B"],
        "departmentId": "DEP",
    }


def test_empty_department_is_omitted_not_null():
    lead = validate_row(0, ["554499999999", "A", "  "], 2, COLUMNS, LeadDefaults())
    assert lead.body() == {"phone": "554499999999", "operators": ["A"]}


def test_defaults_fill_empty_cells_only():
    defaults = LeadDefaults(operators=("OP-D",), department="DEP-D")
    filled = validate_row(0, ["554499999999", "", ""], 2, COLUMNS, defaults)
    own = validate_row(1, ["554499999999", "OP-1", "DEP-1"], 3, COLUMNS, defaults)
    assert (filled.operators, filled.department) == (("OP-D",), "DEP-D")
    assert (own.operators, own.department) == (("OP-1",), "DEP-1")


def test_missing_operators_is_invalid():
    outcome = validate_row(0, ["554499999999", "", ""], 5, COLUMNS, LeadDefaults())
    assert isinstance(outcome, Outcome)
    assert outcome.status is RowStatus.INVALID
    assert outcome.error_code == ErrorCode.MISSING_OPERATORS
    assert outcome.phone == ""


def test_invalid_phone_outcome_names_the_value():
    outcome = validate_row(0, ["12345", "A", ""], 5, COLUMNS, LeadDefaults())
    assert outcome.status is RowStatus.INVALID
    assert outcome.error.startswith("invalid_phone: '12345' has 5 digits")


def test_no_operators_column_uses_default():
    columns = ColumnMap(phone=0, operators=None, department=None)
    assert validate_row(0, ["554499999999"], 2, columns, LeadDefaults(("X",))).operators == ("X",)
    missing = validate_row(0, ["554499999999"], 2, columns, LeadDefaults())
    assert missing.error_code == ErrorCode.MISSING_OPERATORS


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"\A[0-9]{10,15}\Z", fullmatch=True),
    st.lists(st.text(min_size=1, max_size=8), max_size=3).map(tuple),
    st.one_of(st.none(), st.text(max_size=8)),
)
def test_body_bytes_are_the_json_of_the_body(phone, operators, department):
    lead = Lead(0, 2, phone, operators, department)
    assert lead.body_bytes() == json.dumps(lead.body(), ensure_ascii=False).encode()


def table_of(rows: list[list[str]]) -> Table:
    columns = [
        pl.Series(str(j), list(c), dtype=pl.String) for j, c in enumerate(zip(*rows, strict=True))
    ]
    return Table(
        source=Path("leads.csv"),
        sheet=None,
        columns=["Telefone", "Operadores", "Departamento"],
        frame=pl.DataFrame(columns),
        row_numbers=list(range(2, 2 + len(rows))),
    )


def plan_of(phones: list[str], operators: list[str] | None = None) -> pl.DataFrame:
    operators = operators or ["A"] * len(phones)
    table = table_of([[p, o, ""] for p, o in zip(phones, operators, strict=True)])
    return validate_table(table, COLUMNS, LeadDefaults())


def test_skip_duplicates_points_to_the_first_row():
    plan = skip_duplicates(
        plan_of(["5544999999999", "554499999999", "(44) 99999-9999", "+55 44 99999 9999", "x", "y"])
    )
    statuses = [None, None, "skipped", "skipped", "invalid", "invalid"]
    assert plan.get_column("status").to_list() == statuses
    assert plan.get_column("error_message").to_list()[2:4] == ["same phone as row 2"] * 2
    assert [lead.row for lead in leads_to_send(plan)] == [2, 3]


@pytest.mark.parametrize(
    ("distribute", "expected"),
    [("round-robin", ["P", "Q", "R", "P"]), ("balanced", ["Q", "R", "Q", "R"])],
)
def test_pool_fills_only_empty_operator_cells(distribute, expected):
    phones = [f"55449999900{i:02d}" for i in range(6)]
    plan = validate_table(
        table_of([[p, o, ""] for p, o in zip(phones, ["P", "", "", "P", "", ""], strict=True)]),
        COLUMNS,
        LeadDefaults(pool=True),
    )
    planned = assign_pool(plan, ("P", "Q", "R"), distribute)
    filled = [lead.operators for lead in leads_to_send(planned)]
    assert filled[0] == filled[3] == ("P",)
    assert [ops[0] for i, ops in enumerate(filled) if i not in (0, 3)] == expected


phone_cells = st.one_of(
    st.sampled_from([raw for raw, _ in PHONES] + INVALID),
    st.text(alphabet="0123456789 +()-/.,eE\u00a0\t", max_size=20),
    st.from_regex(r"\A(\+|00|0)?[ (]?[0-9]{2,3}[) ]?[ ]?[0-9]{4,5}[- ]?[0-9]{4}\Z", fullmatch=True),
    st.text(max_size=8),
)
other_cells = st.one_of(
    st.sampled_from(["", " ", "A", "A; B", "A,A|B", " \u00a0", "OP-1\nOP-2", "a\x1fb"]),
    st.text(max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(phone_cells, other_cells, other_cells), min_size=1, max_size=12),
    st.sampled_from([(), ("X",), ("X", "Y")]),
    st.sampled_from([None, "DEP"]),
    st.booleans(),
    st.sampled_from(["55", "1"]),
)
@example([("\u0663" * 11, "A", "")], (), None, False, "55")  # Arabic-Indic digits: not a phone
@example([("00 44 9999 9999", "A", "")], (), None, False, "55")
@example([("+044999999999", "A", ""), ("0(44) 9999-9999", "A", "")], (), None, False, "55")
def test_column_validation_gives_the_answers_of_validate_row(
    rows, operators, department, pool, country_code
):
    defaults = LeadDefaults(operators, department, country_code, pool=pool)
    rows = [list(r) for r in rows]
    plan = validate_table(table_of(rows), COLUMNS, defaults)
    expected = [validate_row(i, r, 2 + i, COLUMNS, defaults) for i, r in enumerate(rows)]
    for got, want in zip(plan.iter_rows(named=True), expected, strict=True):
        if isinstance(want, Lead):
            assert got["status"] is None
            assert got["phone"] == want.phone
            assert operators_of(got["operators"]) == want.operators
            assert got["department"] == want.department
        else:
            assert (got["status"], got["error_code"], got["error_message"]) == (
                want.status,
                want.error_code,
                want.error_message,
            )
    assert [lead.row for lead in leads_to_send(plan)] == [
        w.row for w in expected if isinstance(w, Lead)
    ]


@settings(max_examples=300, deadline=None)
@given(st.lists(phone_cells, min_size=1, max_size=20))
def test_normalize_phones_agrees_with_normalize_phone(cells):
    got = normalize_phones(pl.Series(cells, dtype=pl.String))
    for cell, phone, error in zip(cells, got["phone"], got["error"], strict=True):
        try:
            assert (phone, error) == (normalize_phone(cell), None)
        except PhoneError as exc:
            assert (phone, error) == (None, str(exc))
