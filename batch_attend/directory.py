"""What the account has (operators, which need the ``Ticket`` header; departments; who is
online), and the IDs for what people write in cells: a value that matches nothing, two, or someone
inactive makes its row ``invalid`` rather than a request the API would reject or misroute."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from batch_attend import sentences
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import N_, _
from batch_attend.outcomes import ErrorCode
from batch_attend.reading.headers import fold

OPERATORS_PATH = "/api/operator/get-all"
DEPARTMENTS_PATH = "/departments"
ONLINE_PATH = "/api/account/get-operators-online"


class DirectoryError(BatchAttendError):
    """The operator or department list could not be fetched."""


class LookupProblem(ValueError):
    """A cell value that cannot be turned into an ID; ``code`` goes in the error column."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Department:
    """A department as the account lists it; operators and who is online share its fields."""

    id: str
    name: str = ""
    active: bool = True

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id

    @classmethod
    def from_api(cls, item: dict, **more) -> Department:
        name, active = str(item.get("name") or ""), item.get("active", True) is not False
        return cls(str(item.get("id", "")), name, active, **more)


@dataclass(frozen=True)
class Operator(Department):
    login: str = ""
    email: str = ""
    departments: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, item: dict) -> Operator:
        exactsales = item.get("exactsales") if isinstance(item.get("exactsales"), dict) else {}
        return super().from_api(
            item,
            login=str(item.get("login") or ""),
            email=str(item.get("email") or exactsales.get("email") or ""),
            departments=tuple(str(d) for d in item.get("departaments") or ()),
        )


def looks_like_id(value: str) -> bool:
    """Without the operator list, a value is taken for one of PlugChat's opaque IDs (UUIDs,
    ``OP-1``) when it has no space and no ``@``, and a digit or no lower-case letter."""
    if not value or any(ch.isspace() for ch in value) or "@" in value:
        return False
    return any(ch.isdigit() for ch in value) or not any(ch.islower() for ch in value)


@dataclass(eq=False)
class Directory:
    """What the account has; ``None`` for a list that was not fetched."""

    operators: list[Operator] | None = None
    departments: list[Department] | None = None
    unchecked: bool = False  # without the operator list, names pass as written (a dry run)
    _operator_cache: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def names(self) -> dict[str, str]:
        """The name of every operator and department the account listed, by ID."""
        items = [*(self.operators or ()), *(self.departments or ())]
        return {item.id: item.name for item in items if item.name}

    def operator_id(self, value: str) -> str:
        """The ID for an operator cell value (ID, login, name or e-mail), or :class:`LookupProblem`."""
        if self.operators is None:
            if not (looks_like_id(value) or self.unchecked):
                said = sentences.NAME_WITHOUT_TICKET.format(value=value)
                raise LookupProblem(ErrorCode.UNKNOWN_OPERATOR, said)
            return value
        if value not in self._operator_cache:
            fields = ("login", "name", "email")
            self._operator_cache[value] = _find(self.operators, value, fields, OPERATOR_PROBLEMS)
        return self._operator_cache[value]

    def department_id(self, value: str) -> str:
        """The ID for a department cell value (ID or name), or :class:`LookupProblem`."""
        if self.departments is None:
            return value
        return _find(self.departments, value, ("name",), DEPARTMENT_PROBLEMS)


#: The code and sentence of a value no item matches, that two match, that names one inactive.
OPERATOR_PROBLEMS = (
    (ErrorCode.UNKNOWN_OPERATOR, sentences.UNKNOWN_OPERATOR),
    (ErrorCode.AMBIGUOUS_OPERATOR, sentences.AMBIGUOUS_OPERATOR),
    (ErrorCode.INACTIVE_OPERATOR, sentences.INACTIVE_OPERATOR),
)
DEPARTMENT_PROBLEMS = (
    (ErrorCode.UNKNOWN_DEPARTMENT, sentences.UNKNOWN_DEPARTMENT),
    (ErrorCode.UNKNOWN_DEPARTMENT, sentences.AMBIGUOUS_DEPARTMENT),
    (ErrorCode.INACTIVE_DEPARTMENT, sentences.INACTIVE_DEPARTMENT),
)


def _find(items: list, value: str, fields: tuple[str, ...], problems: tuple) -> str:
    """The ID of the one active item ``value`` names: by ID as written, else by ID or one of
    ``fields`` ignoring case and accents; else the problem, said as ``problems`` say it."""
    (unknown, ambiguous, inactive), key = problems, fold(value)
    found = [item for item in items if item.id == value] or [
        item for item in items if key and key in {fold(getattr(item, f)) for f in ("id", *fields)}
    ]
    if not found:
        raise LookupProblem(unknown[0], unknown[1].format(value=value))
    if len(found) > 1:
        names = " and ".join(item.label for item in found[:3])
        said = ambiguous[1].format(value=value, count=len(found), names=names)
        raise LookupProblem(ambiguous[0], said)
    if not found[0].active:
        label = found[0].label
        raise LookupProblem(inactive[0], inactive[1].format(operator=label, department=label))
    return found[0].id


def _read_list(answer, what: str, scrub, kind: type[Department]) -> list:
    """The ``what`` listed, each read as a ``kind``; an answer that is not the list raises."""
    from batch_attend.api import classify

    data = answer.json()
    if isinstance(data, list) and all(isinstance(item, dict) for item in data):
        return [kind.from_api(item) for item in data]
    if answer.http_status == 200 and answer.failure is None:
        reason = _("an answer that is not a list")
    else:
        reason = sentences.render(classify(answer, scrub).error_message)
    status = f" (HTTP {answer.http_status})" if answer.http_status else ""
    hint = _(" A bad or missing ticket gives HTTP 500.") if what == "operators" else ""
    message = _("could not list the {what}{status}: {reason}.{hint}")
    raise DirectoryError(message.format(what=_(what), status=status, reason=reason, hint=hint))


async def fetch_directory(
    client, *, ticket: str | None, operators: bool, departments: bool
) -> Directory:
    """Fetch the lists that are needed (each once) with the run's client."""
    directory = Directory()
    if departments:
        answer = await client.get(DEPARTMENTS_PATH, N_("listing the departments"))
        directory.departments = _read_list(answer, N_("departments"), client.scrub, Department)
    if operators and ticket:
        asking = N_("listing the operators")
        answer = await client.get(OPERATORS_PATH, asking, headers={"Ticket": ticket})
        directory.operators = _read_list(answer, N_("operators"), client.scrub, Operator)
    return directory


@dataclass(frozen=True)
class OnlineState(Department):
    online: bool = False
    last_changed: int | None = None  # ms since the epoch


async def fetch_online(client, account_id: str | None) -> list[OnlineState]:
    """Every operator's state now, or :class:`DirectoryError`."""
    if not account_id:
        message = _(
            "--online-only needs the account's ID: --account-id, PLUGCHAT_ACCOUNT_ID or "
            "account-id in the config file (it is in the address of an operator's chat page)"
        )
        raise DirectoryError(message)
    path = f"{ONLINE_PATH}?id={quote(account_id, safe='')}"
    answer = await client.get(path, N_("asked who is online"))
    data = answer.json()
    items = data.get("data") if isinstance(data, dict) else None
    if not (isinstance(items, list) and all(isinstance(i, dict) and i.get("id") for i in items)):
        reason = sentences.render(client.scrub(answer.why_unread()))
        message = _("could not ask who is online for account {account} ({reason})")
        raise DirectoryError(message.format(account=account_id, reason=reason))
    return [
        OnlineState.from_api(
            i,
            online=i.get("state") == "online",
            last_changed=i.get("lastChanged") if isinstance(i.get("lastChanged"), int) else None,
        )
        for i in items
    ]
