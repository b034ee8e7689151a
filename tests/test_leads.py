"""Phone normalization, operator splitting and per-row validation."""

import pytest

from batch_attend.leads import (
    Lead,
    LeadDefaults,
    PhoneError,
    duplicate_of,
    normalize_phone,
    split_operators,
    validate_row,
)
from batch_attend.outcomes import ErrorCode, Outcome, RowStatus
from batch_attend.reading import ColumnMap

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


def test_duplicate_of_points_to_first_row():
    leads = [
        Lead(0, 2, "5544999999999", ("A",), None),
        Lead(1, 3, "554499999999", ("A",), None),
        Lead(2, 4, "5544999999999", ("B",), None),
        Lead(3, 5, "5544999999999", ("C",), None),
    ]
    assert duplicate_of(leads) == {2: 2, 3: 2}
