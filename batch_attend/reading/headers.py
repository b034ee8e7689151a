"""Which column holds what, by header names in Portuguese and English (the operators also by
content: mostly the account's operators), and the header row among titles and notes. Two columns
that look like owners are refused: a pool must never override an owner the sheet names."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.reading.limits import quoted

_PHONE_WORDS = "telefone|celular|whatsapp|whats|zap|fone|tel|cel|phone|mobile"
PHONE_ALIASES = (
    "phone", "telefone", "celular", "whatsapp", "numero", "fone", "phonenumber", "mobile", "cel",
    "tel", "telefonecelular", "numerowhatsapp", "numerodowhatsapp", "numerodetelefone",
    "whatsappnumber", "whats", "zap",
)  # fmt: skip
#: A phone word, more such words or qualifiers, a number: "Tel. celular", "Telefone (com DDD) 2".
PHONE_PATTERN = re.compile(
    rf"(?:{_PHONE_WORDS})(?:{_PHONE_WORDS}|comddd|ddd|principal|movel|pessoal|contato|cliente)*"
    r"[0-9]*"
)
DDD_ALIASES = ("ddd", "codigodearea", "codigoarea", "codarea", "areacode", "prefixo")
DEPARTMENT_ALIASES = (
    "department", "departamento", "departmentid", "departamentoid", "iddepartamento", "setor",
    "dept",
)  # fmt: skip
#: The lead's owner as Brazilian teams and CRMs name it ("Vendedor responsável", "Proprietário do
#: lead", "SDR", "operator_ids"); a user ("Usuário") is one only beside such a word.
_OWNER = (
    r"(?:(?:operador|operator|atendente|vendedor|consultor|corretor|agente|responsavel"
    r"|proprietario|owner|sdr|closer)(?:a|es|as|s)?|responsaveis)"
)
_OWNER_AROUND = (
    r"usuario|usuaria|user|id|ids|nome|name|email|login|do|da|de|pelo|pela|lead|leads|cliente"
    r"|atual|principal|atribuido|designado|comercial|vendas"
)
_OWNER_OR_AROUND = rf"(?:{_OWNER_AROUND}|{_OWNER})"
OWNER_PATTERN = re.compile(rf"{_OWNER_OR_AROUND}*{_OWNER}{_OWNER_OR_AROUND}*\d*")
HEADER_SEARCH_ROWS = 20  #: How many rows from the top may hold a title or notes over the header.


class ColumnError(BatchAttendError):
    """Columns that cannot be told apart (``owners``: the owner's), or one named that is not there."""

    def __init__(self, message: str, owners: tuple[str, ...] = (), page: str | None = None):
        super().__init__(message, page=page)
        self.owners = owners


def fold(name: str) -> str:
    """A header for matching: no case, no accents, no spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", name).casefold()
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


def find(names: list[str], wanted: str) -> int | None:
    """Where ``wanted`` is among ``names``: as written, else folded."""
    if wanted in names:
        return names.index(wanted)
    folded = [fold(n) for n in names]
    return folded.index(fold(wanted)) if fold(wanted) in folded else None


def phone_strength(name: str) -> int:
    """How surely a folded header names the phone: 3 an exact alias, 2 a phone word with
    qualifiers or a number ("telefone1", "celularwhatsapp"), 1 a weak name ("contato"), 0 none."""
    if name in PHONE_ALIASES:
        return 3
    if PHONE_PATTERN.fullmatch(name):
        return 2
    return 1 if name == "contato" else 0  # taken only when no column has a better name


def phone_strengths(row: list[str], phone_column: str | None) -> list[int]:
    """How surely each header of ``row`` names the phone (``phone_column``, when given)."""
    names = [fold(c) for c in row]
    if phone_column is not None:
        return [int(name == fold(phone_column)) for name in names]
    return [phone_strength(name) for name in names]


def header_index(top: list[list[str]], phone_column: str | None) -> int | None:
    """Among the top rows naming a phone column, the one with the most distinct names, then the
    surest phone name: a title names no phone, a group row ("Contato" merged) fills few cells."""
    best, key = None, (0, 0)
    for i, row in enumerate(top):
        strength = max(phone_strengths(row, phone_column), default=0)
        if strength and (k := (len({fold(c) for c in row} - {""}), strength)) > key:
            best, key = i, k
    return best


@dataclass(frozen=True)
class ColumnMap:
    """Which column holds what, and ``why`` each was taken (shown before sending)."""

    phone: int
    operators: int | None
    department: int | None
    ddd: int | None = None
    why: dict[str, str] = field(default_factory=dict, compare=False)


def _named(table, name: str, option: str) -> int:
    if (j := find(table.columns, name)) is not None:
        return j
    raise ColumnError(
        _(
            "{where}: no column named '{override}' (given by {option}). Columns seen: {columns}."
        ).format(where=table.where, override=name, option=option, columns=quoted(table.columns)),
        page=_("This sheet has no column '{name}': choose another.").format(name=name),
    )


def map_columns(
    table,
    phone_column: str | None = None,
    operators_column: str | None = None,
    department_column: str | None = None,
    ddd_column: str | None = None,
    ignore: tuple[str, ...] = (),
    owners_by_content: dict[int, float] | None = None,
) -> ColumnMap:
    """The phone, DDD, operators and department columns, none in ``ignore``: named, else found by
    name (the operators also by ``owners_by_content``: column → share of account operators)."""
    folded = [fold(c) for c in table.columns]
    skip = {_named(table, name, "--ignore-column") for name in ignore}
    why: dict[str, str] = {}

    def choose(role: str, given: str | None, rate, label: str = "") -> int | None:
        option = f"--{role}-column"
        if given is not None:
            why[role] = _("given by {option}").format(option=option)
            return _named(table, given, option)
        strength = [0 if j in skip else rate(name) for j, name in enumerate(folded)]
        best = max(strength, default=0)
        found = [j for j, s in enumerate(strength) if s and s == best]
        if len(found) > 1 and label:  # unlabelled (the DDD): the first is taken, not refused
            names = quoted(table.columns[j] for j in found)
            raise ColumnError(
                _(
                    "{where}: several columns could hold the {role}: {names}. Choose one with {option}."
                ).format(where=table.where, role=label, names=names, option=option),
                page=_("Several columns could hold the {role}: {names}. Choose one below.").format(
                    role=label, names=names
                ),
            )
        if found:
            why[role] = _("matched {name}").format(name=folded[found[0]])
        return found[0] if found else None

    phone = choose("phone", phone_column, phone_strength, _("phone"))
    if phone is None:
        message = _(
            "{where}: no phone column found. Columns seen: {columns}. Accepted names: {accepted} (any case or accents), or name it with --phone-column."
        )
        accepted = ", ".join(PHONE_ALIASES[:6])
        raise ColumnError(
            message.format(where=table.where, columns=quoted(table.columns), accepted=accepted),
            page=_("No column was recognised as the phone: choose it below."),
        )
    department = choose(
        "department", department_column, lambda n: int(n in DEPARTMENT_ALIASES), _("department")
    )
    ddd = choose("ddd", ddd_column, lambda name: int(name in DDD_ALIASES))
    if operators_column is not None:
        operators = choose("operators", operators_column, None)
    else:
        taken = skip | {phone, department, ddd}
        operators = _owners(table, folded, taken, owners_by_content or {}, why)
    return ColumnMap(phone, operators, department, ddd, why)


def _owners(
    table, folded: list[str], skip: set, by_content: dict[int, float], why: dict
) -> int | None:
    """The one column that looks like owners, by name or content; two that hold something: refused."""
    by_name = {j for j, name in enumerate(folded) if OWNER_PATTERN.fullmatch(name)}
    candidates = sorted((by_name | by_content.keys()) - skip)
    holding = [j for j in candidates if (table.frame[j].str.strip() != "").any()]
    if len(holding) > 1:
        owners = tuple(table.columns[j] for j in holding)
        raise ColumnError(
            _(
                "{where}: several columns look like the lead's owner: {names}. Use one with --operators-column NAME, or set the others aside on purpose with --ignore-column NAME (a pool or --operator would otherwise override the owners they name)."
            ).format(where=table.where, names=quoted(owners)),
            owners,
            _("Several columns look like the lead's owner: {names}.").format(names=quoted(owners)),
        )
    chosen = (holding or candidates or [None])[0]
    if chosen is None:
        return None
    if chosen in by_name:
        why["operators"] = _("matched {name}").format(name=folded[chosen])
    else:
        why["operators"] = _("holds the account's operators ({share:.0%} of its cells)").format(
            share=by_content[chosen]
        )
    return chosen
