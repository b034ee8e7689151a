"""The rules of a row, as tables of inputs and what they give: phones, operator cells, the
validation of a sheet, duplicates, pools and the leads an earlier run did."""

from pathlib import Path

import pandas as pd
import pytest

from batch_attend.leads import (
    Lead,
    LeadDefaults,
    leads_to_send,
    normalize_phones,
    split_operators,
    validate,
)
from batch_attend.planning import assign_pool, carry_over, skip_duplicates
from batch_attend.reading.headers import ColumnMap
from batch_attend.reading.table import Table
from tests.conftest import phone_of, said

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
    ("+441234567890123", "441234567890123"),  # 15 digits, the E.164 maximum
    ("00 44 9999 9999", "4499999999"),  # 00 marks an international number: no country code
    ("+351 912 345 678", "351912345678"),
    # a carrier code (or xx) after the trunk 0, as long-distance calls are dialled in Brazil
    ("0 15 (41) 98045-0107", "5541980450107"),
    ("0 21 11 98765-4321", "5511987654321"),
    ("(04374) 98055-2634", "5574980552634"),
    ("015 11 3030-4040", "551130304040"),
    ("(0xx69) 98855-2085", "5569988552085"),
    ("0XX 11 98765-4321", "5511987654321"),
    ("0 12 3456-7890", "551234567890"),  # a trunk 0 and DDD 12 (also a carrier code)
    ("021 98765-4321", "5521987654321"),
    # a trunk 0 after the country code
    ("+55 (011) 98765-4321", "5511987654321"),
    ("0055 011 3030-4040", "551130304040"),
    ("+55 (0xx11) 98765-4321", "5511987654321"),
    ("55 (011) 98765-4321", "5511987654321"),
    ("(+55) 44 99999-9999", "5544999999999"),
    ("(44) 7999-9999", "554479999999"),
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

# Why each is not a phone; README's phone rules in examples.
REFUSED = [
    ("(20) 3278-9299", "'(20) 3278-9299': 20 is not a Brazilian area code (DDD)"),
    ("+55 10 98765-4321", "'+55 10 98765-4321': 10 is not a Brazilian area code (DDD)"),
    ("55119876543290",
     "'55119876543290' has 12 digits after the country code 55; a Brazilian number has 10 or 11 "
     "(area code and number)"),
    ("(44) 89999-9999",
     "'(44) 89999-9999' is not a Brazilian number: after the area code come 8 digits not "
     "starting with 0 or 1, or 9 starting with 9"),
    ("(44) 1999-9999",
     "'(44) 1999-9999' is not a Brazilian number: after the area code come 8 digits not "
     "starting with 0 or 1, or 9 starting with 9"),
    ("0 17 11 98765-4321",
     "'0 17 11 98765-4321' starts with 0, as dialled within Brazil, but the area code and "
     "number (10 or 11 digits) do not follow, nor a carrier code (12, 14, 15, 21, 22, 23, 25, "
     "31, 41, 43, 55, 65, 99) and those"),
    ("441234567890123",
     "'441234567890123' has 15 digits, more than a Brazilian number; write a number from "
     "abroad with + or 00 and its country code"),
    ("+044999999999", "'+044999999999': a country code follows + or 00, and none starts with 0"),
    ("(0xx11) ramal", "'(0xx11) ramal' has 'r', which is not part of a phone number"),
    # The digits counted are the cell's: 00 then 0 is no country code, 00 1 is one.
    ("0000-0000",
     "'0000-0000' has 8 digits; a phone needs 10 to 15 (country code, area code, number); add "
     "the area code (DDD) in front, or a DDD column"),
    ("00 1 234",
     "'00 1 234' has 4 digits after 00; a phone needs 10 to 15 (country code, area code, number)"),
    ("+55 44 1234",  # a country code and area code were written: no DDD is missing
     "'+55 44 1234' has 8 digits; a phone needs 10 to 15 (country code, area code, number)"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), PHONES)
def test_normalize_phone(raw, expected):
    assert phone_of(raw) == (expected, "")


@pytest.mark.parametrize("raw", INVALID)
def test_invalid_phones_are_refused(raw):
    phone, why = phone_of(raw)
    assert phone == "" and why


@pytest.mark.parametrize(("raw", "why"), REFUSED)
def test_why_a_phone_is_refused(raw, why):
    assert phone_of(raw) == ("", why)


def test_the_67_area_codes_are_libphonenumbers():
    import phonenumbers

    ddds = [f"{n}" for n in range(10, 100) if phonenumbers.number_type(
        phonenumbers.parse(f"+55{n}32101234")
    ) == phonenumbers.PhoneNumberType.FIXED_LINE]  # fmt: skip
    assert len(ddds) == 67
    got = normalize_phones(pd.Series([f"({n}) 3210-1234" for n in range(10, 100)], dtype=str))
    assert [n for n, phone in zip(range(10, 100), got["phone"], strict=True) if phone] == [
        int(n) for n in ddds
    ]


def test_a_huge_exponent_is_an_invalid_phone_not_a_crash():
    assert "lost digits" in phone_of("1E4300")[1]


def test_scientific_notation_that_lost_digits_says_to_format_as_text():
    assert "format the phone column as Text" in phone_of("5.54E+11")[1]


def test_ninth_digit_is_never_added_or_removed():
    assert phone_of("(44) 9999-9999")[0] == "554499999999"
    assert phone_of("(44) 99999-9999")[0] == "5544999999999"


def test_country_code_option():
    assert phone_of("(21) 98765-4321", country_code="351")[0] == "35121987654321"
    assert phone_of("+55 21 98765-4321", country_code="351")[0] == "5521987654321"


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


def table_of(rows: list[list[str]]) -> Table:
    frame = pd.DataFrame(rows, dtype=str).set_axis(range(len(rows[0])), axis=1)
    return Table(
        source=Path("leads.csv"),
        sheet=None,
        columns=["Telefone", "Operadores", "Departamento"][: frame.shape[1]],
        frame=frame,
        row_numbers=list(range(2, 2 + len(rows))),
    )


def plan_of(rows, defaults=None, columns=COLUMNS) -> pd.DataFrame:
    return validate(table_of(rows), columns, defaults or LeadDefaults())


def test_normalize_phones_over_a_column_is_the_rule_cell_by_cell():
    cells = ["(44) 99999-9999", "12345", ""]
    got = normalize_phones(pd.Series(cells, dtype=str))
    assert list(zip(got["phone"], map(said, got["error"]), strict=True)) == list(
        map(phone_of, cells)
    )
    assert said(got["error"].tolist()[2]) == "the phone cell is empty"


def test_a_valid_row_becomes_a_lead_with_its_body():
    (lead,) = leads_to_send(plan_of([["(44) 99999-9999", "A; B", "DEP"]]))
    assert lead == Lead(0, 2, "5544999999999", ("A", "B"), "DEP")
    assert lead.body() == {"phone": "5544999999999", "operators": ["A", "B"], "departmentId": "DEP"}


def test_empty_department_is_omitted_not_null():
    (lead,) = leads_to_send(plan_of([["554499999999", "A", "  "]]))
    assert lead.body() == {"phone": "554499999999", "operators": ["A"]}


def test_defaults_fill_empty_cells_only():
    defaults = LeadDefaults(operators=("OP-D",), department="DEP-D")
    filled, own = leads_to_send(
        plan_of([["554499999999", "", ""], ["554499999998", "OP-1", "DEP-1"]], defaults)
    )
    assert (filled.operators, filled.department) == (("OP-D",), "DEP-D")
    assert (own.operators, own.department) == (("OP-1",), "DEP-1")


@pytest.mark.parametrize(
    ("row", "columns", "defaults", "status", "error"),
    [
        (["554499999999", "", ""], COLUMNS, LeadDefaults(), "invalid",
         "missing_operators: the operators cell is empty and no --operator default was given"),
        (["554499999999"], ColumnMap(0, None, None), LeadDefaults(), "invalid",
         "missing_operators: no operators column (columns: Telefone); name one with "
         "--operators-column, or give --operator"),
        (["554499999999"], ColumnMap(0, None, None), LeadDefaults(("X",)), None, ""),
        (["554499999999", "", ""], COLUMNS, LeadDefaults(pool=True), None, ""),
        (["12345", "A", ""], COLUMNS, LeadDefaults(), "invalid",
         "invalid_phone: '12345' has 5 digits; a phone needs 10 to 15 (country code, area code, number)"),
    ],
)  # fmt: skip
def test_what_makes_a_row_invalid(row, columns, defaults, status, error):
    plan = plan_of([row], defaults, columns)
    got = plan.iloc[0]
    assert (None if pd.isna(got["status"]) else got["status"]) == status
    assert ": ".join(p for p in (got["error_code"], said(got["error_message"])) if p) == error


def test_skip_duplicates_points_to_the_first_row():
    phones = ["5544999999999", "(44) 3030-4040", "(44) 99999-9999", "+55 44 99999 9999", "x"]
    plan = skip_duplicates(plan_of([[p, "A", ""] for p in phones]))
    statuses = [None, None, "skipped", "skipped", "invalid"]
    assert [None if pd.isna(s) else s for s in plan["status"]] == statuses
    assert [said(m) for m in plan["error_message"].tolist()[2:4]] == ["same phone as row 2"] * 2
    assert [lead.row for lead in leads_to_send(plan)] == [2, 3]


@pytest.mark.parametrize(
    ("first", "second"),
    [("(44) 99999-9999", "554499999999"), ("44 9999-9999", "+55 44 99999-9999"),
     ("(11) 6123-4567", "11 96123-4567")],
)  # fmt: skip
def test_a_mobile_with_and_without_its_ninth_digit_is_one_chat(first, second):
    plan = skip_duplicates(
        plan_of([[first, "A", ""], ["(44) 3030-4040", "A", ""], [second, "A", ""]])
    )
    (sent, landline, twin) = plan.itertuples(index=False)
    assert pd.isna(sent.status) and pd.isna(landline.status)
    assert (twin.status, twin.error_code) == ("skipped", "duplicate_row")
    assert said(twin.error_message) == (
        f"same WhatsApp number as row 2: {sent.phone} there, {twin.phone} here, one mobile with "
        "and without the ninth digit"
    )
    assert [lead.row for lead in leads_to_send(plan)] == [2, 3]


def test_chat_keys_pair_the_forms_other_form_pairs():
    from batch_attend.leads import chat_keys
    from batch_attend.whatsapp import other_form

    phones = ["554499999999", "5544999999999", "554479999999", "554439999999", "5544939999999",
              "556261234567", "14155552671", "5511987654321"]  # fmt: skip
    keys = chat_keys(pd.Series(phones, dtype=str)).tolist()
    for phone, key in zip(phones, keys, strict=True):
        twin = other_form(phone)
        assert key == (max(phone, twin[0], key=len) if twin else phone)


@pytest.mark.parametrize(
    ("distribute", "expected"),
    [("round-robin", ["P", "Q", "R", "P"]), ("balanced", ["Q", "R", "Q", "R"])],
)
def test_pool_fills_only_empty_operator_cells(distribute, expected):
    phones = [f"55449999900{i:02d}" for i in range(6)]
    plan = plan_of(
        [[p, o, ""] for p, o in zip(phones, ["P", "", "", "P", "", ""], strict=True)],
        LeadDefaults(pool=True),
    )
    filled = [
        lead.operators for lead in leads_to_send(assign_pool(plan, ("P", "Q", "R"), distribute))
    ]
    assert filled[0] == filled[3] == ("P",)
    assert [ops[0] for i, ops in enumerate(filled) if i not in (0, 3)] == expected


def test_leads_done_earlier_are_carried_over_not_sent():
    plan = plan_of([["5544999990001", "A", ""], ["5544999990002", "A", ""], ["1", "A", ""]])
    carried = carry_over(plan, {"5544999990002": ("started", None), "99": ("started", None)})
    assert carried["carried"].tolist() == [False, True, False]
    assert carried["status"].tolist()[1] == "started"
    assert [lead.phone for lead in leads_to_send(carried)] == ["5544999990001"]


def test_a_lead_done_in_one_ninth_digit_form_is_carried_over_in_the_other():
    plan = plan_of(
        [["(44) 99999-9999", "A", ""], ["44 99999-9999", "A", ""], ["(44) 8888-7777", "A", ""]]
    )
    carried = skip_duplicates(
        carry_over(plan, {"554499999999": ("started", None), "5544988887777": ("started", None)})
    )
    assert carried["carried"].tolist() == [True, False, True]
    assert carried["phone"].tolist() == ["554499999999", "5544999999999", "5544988887777"]
    assert carried["status"].tolist() == ["started", "skipped", "started"]
    assert list(leads_to_send(carried)) == []
