"""The phone rules against libphonenumber (the ``phonenumbers`` package), region BR, on a
generated corpus: whenever both read a valid number they agree on its digits, and a number
libphonenumber finds invalid the tool refuses, or accepts for a reason README's phone rules
state. Each reason is a predicate below, checked case by case.

``python -m tests.test_phone_oracle`` prints the counts."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd
import phonenumbers

from batch_attend.leads import DDD, normalize_phones
from tests.phone_corpus import corpus

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def lib(text: str) -> str | None:
    """libphonenumber's digits for ``text`` dialled in Brazil; None when it reads no valid
    number."""
    try:
        number = phonenumbers.parse(text, "BR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def as_read(cell: str) -> str:
    """``cell`` as README's Input section says it is read, before any phone rule: a
    spreadsheet's number cell as the whole number it holds (``554499999999.0``,
    ``5.544999999999e+12``), every kind of space a space (libphonenumber refuses U+202F)."""
    stripped = cell.strip()
    if re.fullmatch(r"[0-9]+\.0+|[0-9]\.[0-9]+[eE]\+?[0-9]+", stripped):
        value = Decimal(stripped)
        if value == value.to_integral_value():
            cell = str(int(value))
    return "".join(" " if c.isspace() else c for c in cell)


def _digits(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


def idd_as_plus(cell: str, tool: str) -> bool:
    """A leading 00 is read as +: libphonenumber, dialling from Brazil, wants a carrier code
    after it (00 21 1 ...), and reads the number the tool sends once the 00 is a +."""
    start = cell.lstrip(" (")
    return start.startswith("00") and lib("+" + start[2:]) == tool


def mobile_kept(cell: str, tool: str) -> bool:
    """The 12-digit form of a Brazilian mobile (no ninth digit) is sent as written, and its
    13-digit form is a valid mobile."""
    twin = tool[:4] + "9" + tool[4:]
    return (
        re.fullmatch(f"55{DDD}[6-9][0-9]{{7}}", tool) is not None
        and _digits(cell).endswith(tool[2:])
        and lib("+" + twin) == twin
    )


def abroad(cell: str, tool: str) -> bool:
    """A number of another country, written with + or 00, is sent as written: its length is
    checked, not its numbering plan."""
    start = cell.lstrip(" (")
    written = _digits(start)[2:] if start.startswith("00") else _digits(start)
    return start.startswith(("+", "00")) and not tool.startswith("55") and written == tool


#: Why the tool may read a number otherwise than libphonenumber (both find it valid), and the
#: words README's phone rules state it in.
OTHERWISE = {idd_as_plus: "`00` (read as `+`)", mobile_kept: "both mobile forms pass as written"}
#: Why the tool may send a number libphonenumber finds invalid.
INVALID_TO_IT = {**OTHERWISE, abroad: "from abroad"}


def compare(cells: list[str]) -> tuple[Counter, list[tuple[str, str, str | None]]]:
    """How the tool and libphonenumber compare on each cell (a count per verdict), and the
    cells where they differ for no stated reason: (cell, tool's digits, libphonenumber's)."""
    tool = normalize_phones(pd.Series(cells, dtype=str))["phone"].tolist()
    counts: Counter = Counter()
    unexplained = []
    for cell, sent in zip(cells, tool, strict=True):
        read = as_read(cell)
        theirs = lib(read)
        if not sent:
            verdict = "both refuse" if theirs is None else "the tool refuses, libphonenumber not"
        elif sent == theirs:
            verdict = "agree" if read == cell else "agree, as read"
        else:
            reasons = OTHERWISE if theirs else INVALID_TO_IT
            held = next((name for name in reasons if name(read, sent)), None)
            if held is None:
                unexplained.append((cell, sent, theirs))
                continue
            verdict = (
                f"{held.__name__} ({'other digits' if theirs else 'invalid'} to libphonenumber)"
            )
        counts[verdict] += 1
    return counts, unexplained


def test_the_corpus_is_large_and_covers_every_form():
    forms = Counter(form for form, _cell in corpus())
    assert sum(forms.values()) >= 5000
    assert min(forms.values()) >= 100, forms


def test_the_tool_never_reads_a_number_otherwise_than_libphonenumber_without_a_stated_reason():
    counts, unexplained = compare([cell for _form, cell in corpus()])
    assert not unexplained, f"{len(unexplained)} unexplained, e.g. {unexplained[:10]}"
    assert counts["agree"] + counts["agree, as read"] > 2000, counts
    for reason in INVALID_TO_IT:  # each reason is needed (else it goes, with its README words)
        assert any(verdict.startswith(reason.__name__) for verdict in counts), reason.__name__


def test_readme_states_every_reason():
    phone_rules = " ".join(README.split("- **Phone**", 1)[1].split("\n- **", 1)[0].split())
    for words in INVALID_TO_IT.values():
        assert words in phone_rules, words


if __name__ == "__main__":
    counts, unexplained = compare([cell for _form, cell in corpus()])
    for verdict, count in counts.most_common():
        print(f"{count:6,}  {verdict}")
    print(f"{len(unexplained):6,}  unexplained", *unexplained[:20], sep="\n")
    tool = normalize_phones(pd.Series([cell for _form, cell in corpus()], dtype=str))["phone"]
    stricter = Counter(
        form
        for (form, cell), sent in zip(corpus(), tool, strict=True)
        if not sent and lib(as_read(cell))
    )
    print("the tool refuses, libphonenumber not:", dict(stricter))
