"""Phone strings written the way Brazilian people and CRMs write them, generated from a seed:
the forms of README's phone rules and shared/api/README.md, valid and not, for comparing the
tool with libphonenumber (``tests/test_phone_oracle.py``)."""

from __future__ import annotations

import random

#: Brazil's 67 area codes; the 2-digit numbers that are none.
DDDS = [
    *range(11, 20), 21, 22, 24, 27, 28, *range(31, 36), 37, 38, *range(41, 50), 51, 53, 54, 55,
    *range(61, 70), 71, 73, 74, 75, 77, 79, *range(81, 90), *range(91, 100),
]  # fmt: skip
NOT_DDDS = [n for n in range(10, 100) if n not in DDDS]
#: Carrier codes libphonenumber reads after a trunk 0, and some it does not.
CARRIERS = (12, 14, 15, 21, 22, 23, 25, 31, 41, 43, 55, 65, 99)
OTHER_CARRIERS = (17, 20, 32, 36, 47, 53, 63, 85, 89, 91)
SPACES = (" ", "\u00a0", "  ", "\u202f")


def _mobile(r: random.Random) -> str:
    return "9" + "".join(r.choice("0123456789") for _ in range(8))


def _landline(r: random.Random) -> str:
    return r.choice("2345") + "".join(r.choice("0123456789") for _ in range(7))


def _old_mobile(r: random.Random) -> str:  # before the ninth digit
    return r.choice("6789") + "".join(r.choice("0123456789") for _ in range(7))


def _masked(r: random.Random, ddd: str, number: str) -> str:
    """``ddd`` and ``number`` in one of the masks people type."""
    cut = len(number) - 4
    head, tail = number[:cut], number[cut:]
    space = r.choice(SPACES)
    return r.choice(
        (
            f"({ddd}) {head}-{tail}",
            f"({ddd}){head}-{tail}",
            f"{ddd} {head}-{tail}",
            f"{ddd}{space}{head}{space}{tail}",
            f"{ddd}{number}",
            f"{ddd}.{head}.{tail}",
            f" ({ddd}) {head}-{tail}  ",
            f"{space}{ddd}-{head}-{tail}{space}",
            f"{ddd} {head} {tail}",
        )
    )


def _foreign(r: random.Random) -> tuple[str, str]:
    """(country code, national number) of a plausible number abroad."""
    digit = lambda n: "".join(r.choice("0123456789") for _ in range(n))  # noqa: E731
    return r.choice(
        (
            ("1", r.choice(("415", "212", "305", "617")) + r.choice("23456789") + digit(6)),
            ("351", "9" + r.choice("1236") + digit(7)),
            ("44", "7" + r.choice("4579") + digit(8)),
            ("44", "20" + r.choice("378") + digit(7)),
            ("43", "6" + r.choice("5678") + digit(8)),
            ("43", "1" + digit(7)),
            ("49", "15" + digit(9)),
            ("54", "9" + "11" + digit(8)),
            ("34", "6" + digit(8)),
            ("33", "6" + digit(8)),
        )
    )


def corpus(seed: int = 23, size: int = 6000) -> list[tuple[str, str]]:
    """``size`` (form, phone string) pairs; the same for the same seed."""
    r = random.Random(seed)
    forms = []

    def add(form: str, text: str) -> None:
        forms.append((form, text))

    while len(forms) < size:
        ddd = str(r.choice(DDDS))
        mobile, landline, old = _mobile(r), _landline(r), _old_mobile(r)
        number = r.choice((mobile, mobile, landline))
        carrier = str(r.choice(CARRIERS))
        space = r.choice(SPACES)
        add("national", _masked(r, ddd, number))
        add("old mobile form", _masked(r, ddd, old))
        add("+55", r.choice(("+55 ", "+55", "+55 ", f"+55{space}")) + _masked(r, ddd, number))
        add("+55 then trunk 0", f"+55 (0{ddd}) {number[:-4]}-{number[-4:]}")
        add("+55 then carrier", f"+55 0{r.choice((carrier, 'xx'))} {ddd} {number}")
        add("+55", f"(+55) {ddd} {number}")
        add("0055", r.choice(("0055 ", "00 55 ", "0055")) + _masked(r, ddd, number))
        add("0055 then trunk 0", f"0055 0{ddd} {number}")
        add("55 without +", r.choice(("55", "55 ")) + _masked(r, ddd, number))
        add("vendor's 12 digits", f"55{ddd}{old}")
        add("trunk 0", f"0{ddd} {number[:-4]}-{number[-4:]}")
        add("trunk 0", f"(0{ddd}) {number[:-4]}-{number[-4:]}")
        add("trunk 0", f"0{ddd}{number}")
        add("carrier code", f"0 {carrier} {ddd} {number[:-4]}-{number[-4:]}")
        add("carrier code", f"0{carrier} {ddd} {number}")
        add("carrier code", f"(0{carrier} {ddd}) {number[:-4]}-{number[-4:]}")
        add("carrier code", f"(0{carrier}{ddd}) {number[:-4]}-{number[-4:]}")
        add("carrier code", f"0 {carrier} ({ddd}) {number[:-4]}-{number[-4:]}")
        add("carrier code", f"0{carrier}{ddd}{number}")
        add("unknown carrier code", f"0 {r.choice(OTHER_CARRIERS)} {ddd} {number}")
        xx = r.choice(("xx", "XX", "xx", "Xx"))
        add("xx", r.choice((f"(0{xx}{ddd}) ", f"0{xx} {ddd} ", f"(0{xx} {ddd}) ")) + number)
        add("Excel number", f"55{ddd}{number}.0")
        digits = f"55{ddd}{number}"
        add("Excel number", f"{digits[0]}.{digits[1:]}e+{len(digits) - 1}")
        add("Excel number", f"{digits[0]}.{digits[1:6]}E+{len(digits) - 1}")  # digits lost
        add("no area code", r.choice((f"{number[:-4]}-{number[-4:]}", number)))
        bad = f"{r.choice(NOT_DDDS):02d}"
        add("bad DDD", _masked(r, bad, number))
        add("bad DDD", f"+55 {bad} {number}")
        add("bad DDD", f"0{bad} {number}")
        first = r.choice("01")  # no number starts so
        add("impossible number", _masked(r, ddd, first + number[1:8]))
        add("impossible number", _masked(r, ddd, r.choice("0123456780") + mobile[1:]))
        code, national = _foreign(r)
        add("abroad", f"+{code} {national}")
        add("abroad", f"+{code}{space}{national[:3]} {national[3:]}")
        add("abroad with 00", f"00{code} {national}")
        add("abroad without +", f"{code}{national}")
        add("too short", _masked(r, ddd, number[: -r.randint(2, 5)]))
        add("too long", _masked(r, ddd, number + str(r.randint(0, 99))))
        add("+55 too long", f"55{ddd}{number}{r.randint(0, 9)}")
        add("two numbers", f"{_masked(r, ddd, number)} / {_masked(r, ddd, mobile)}")
        add("extension", f"{_masked(r, ddd, landline)} ramal {r.randint(1, 999)}")
    return forms[:size]
