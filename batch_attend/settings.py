"""What a run is asked to do: the options in groups (the input file and how to read it, the
requests, how they go out, where results go, what a person watching sees), filled from the flat
names of the command line and ``batch-attend.toml``, and the token (never from a config file)."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batch_attend.api import DEFAULT_BASE_URL
from batch_attend.errors import ConfigError
from batch_attend.i18n import _

CONFIG_FILE = "batch-attend.toml"
TOKEN_ENV = "PLUGCHAT_TOKEN"
ACCOUNT_ENV = "PLUGCHAT_ACCOUNT_ID"
TICKET_ENV = "PLUGCHAT_TICKET"
BASE_URL_ENV = "PLUGCHAT_BASE_URL"
#: The sandbox's defaults, where its command line and its server both read them.
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_RETRY_AFTER = "none"
SANDBOX_SLOW_SECONDS = 5.0
#: The sandbox's fault kinds (``--fault PHONE=KIND``), as its help lists them.
SANDBOX_FAULTS = (
    "fail",
    "drop",
    "slow",
    "act-drop",
    "act-fail",
    "html",
    "badjson",
    "empty",
    "bad-gateway",
)


@dataclass
class InputOptions:
    path: Path = Path(".")
    sheet: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    phone_column: str | None = None
    operators_column: str | None = None
    department_column: str | None = None
    ddd_column: str | None = None
    header_row: int | None = None  # None: found among the top rows
    ignore_columns: tuple[str, ...] = ()  # passed over when columns are found
    #: What a person changed on the page: cells (by row and column name), a role's values.
    cell_edits: dict[int, dict[str, str]] = field(default_factory=dict)
    value_map: dict[str, dict[str, str]] = field(default_factory=dict)
    label: str | None = None  # the input's name where it is shown (the page's upload)


@dataclass
class RequestOptions:
    base_url: str = DEFAULT_BASE_URL
    token: str | None = None
    token_file: Path | None = None
    ticket: str | None = None
    sandbox: bool = False
    operators: tuple[str, ...] = ()
    department: str = ""
    country_code: str = "55"
    pool: str | None = None
    pool_file: Path | None = None
    distribute: str = "round-robin"
    lookup: bool = True
    status_check: bool = True  # ask whether the WhatsApp number is connected
    verify_whatsapp: bool = False  # ask whether each phone has WhatsApp before its start
    online_only: bool = False  # give rows only to operators online now
    account_id: str | None = None  # the account's ID, for who is online


@dataclass
class SendingOptions:
    concurrency: int = 8
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    rate: float | None = None
    dry_run: bool = False
    grace: float = 5.0  # seconds in-flight requests get after Ctrl-C


@dataclass
class OutputOptions:
    path: str | None = None  # None: beside the input (required for stdin); "-": CSV on stdout
    journal: Path | None = None  # None: beside the results (or the input, for stdout)
    fresh: bool = False
    bom: bool = True
    output_delimiter: str | None = None  # None: see results.csv_delimiter
    results_lang: str | None = None  # the sentences and the Summary sheet (None: English)
    summary_json: Path | None = None
    log_file: Path | None = None


@dataclass
class DisplayOptions:
    quiet: bool = False
    verbose: bool = False


@dataclass
class RunOptions:
    input: InputOptions = field(default_factory=InputOptions)
    requests: RequestOptions = field(default_factory=RequestOptions)
    sending: SendingOptions = field(default_factory=SendingOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    display: DisplayOptions = field(default_factory=DisplayOptions)

    @classmethod
    def build(cls, **values) -> RunOptions:
        """Options from the long option names with ``_`` for ``-`` (``input`` and ``output`` the
        paths; ``no_lookup``, ``no_bom``, ``no_status_check`` as the flags say); None keeps the
        default. ``A,B`` among the operators is two, as in a cell."""
        from batch_attend.leads import split_operators  # leads imports pandas: not for --help

        values = {name: value for name, value in values.items() if value is not None}
        for name in ("lookup", "bom", "status_check"):
            if f"no_{name}" in values:
                values[name] = not values.pop(f"no_{name}")
        if "operators" in values:
            values["operators"] = tuple(
                op for value in values["operators"] for op in split_operators(value)
            )
        if "department" in values:
            values["department"] = values["department"].strip()
        options = cls()
        groups = [getattr(options, group.name) for group in dataclasses.fields(cls)]
        for name, value in values.items():
            if name in ("input", "output"):  # the paths
                getattr(options, name).path = Path(value) if name == "input" else value
            elif group := next((g for g in groups if name != "path" and hasattr(g, name)), None):
                setattr(group, name, value)
            else:
                raise TypeError(f"unknown option {name!r}")
        return options


def resolve_token(options: RequestOptions, environ: Mapping[str, str]) -> str | None:
    """The token: ``--token``, else the file of ``--token-file``, else ``PLUGCHAT_TOKEN``."""
    if options.token:
        return options.token
    if (path := options.token_file) is not None:
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            message = _("{path}: cannot read the token file ({strerror}).")
            raise ConfigError(message.format(path=path, strerror=exc.strerror)) from exc
    return environ.get(TOKEN_ENV) or None


def country_code(value: str) -> str:
    """``--country-code``: 1 to 3 digits, a leading + allowed."""
    digits = value.strip().lstrip("+")
    if not digits.isdigit() or not 1 <= len(digits) <= 3:
        message = _("'{value}' is not a country code (1 to 3 digits, e.g. 55)")
        raise ValueError(message.format(value=value))
    return digits


def delimiter(value: str) -> str:
    """A CSV delimiter: one character, or tab, comma, semicolon or pipe by name."""
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(value.lower(), value)
    if len(value) != 1:
        message = _("'{value}' is not a single character (or tab/comma/semicolon/pipe)")
        raise ValueError(message.format(value=value))
    return value


def rows(spec: str) -> tuple[tuple[int, int], ...]:
    """``batch-attend undo --rows 2,5-9``: row numbers, and ranges of them."""
    ranges = []
    for part in spec.split(","):
        first, _dash, last = part.strip().partition("-")
        if not first.isdigit() or not (last or first).isdigit() or int(last or first) < int(first):
            message = _("'{part}' is not a row number or a range of them such as 5-9")
            raise ValueError(message.format(part=part))
        ranges.append((int(first), int(last or first)))
    return tuple(ranges)


def read_config(given: Path | None, known: Mapping[str, str]) -> tuple[Path | None, dict]:
    """The config file in use (``given``, else ``./batch-attend.toml`` when there is one) and its
    options by long option name (``known``: name → parameter); never the token."""
    path = Path(given or CONFIG_FILE)
    if given is None and not path.is_file():
        return None, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        message = _("{path}: cannot read it ({strerror})")
        raise ConfigError(message.format(path=path, strerror=exc.strerror)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(_("{path}: not valid TOML ({exc})").format(path=path, exc=exc)) from exc
    values = {}
    for key, value in data.items():
        if key.replace("-", "_").lower() in ("token", "plugchat_token"):
            message = _(
                "{path}: the token may not be stored in a config file; use PLUGCHAT_TOKEN or token-file = 'path' (a file only you can read)"
            )
            raise ConfigError(message.format(path=path))
        name = known.get(key.replace("_", "-"))
        if name is None:
            message = _("{path}: unknown option '{key}'. Known: {known}")
            raise ConfigError(message.format(path=path, key=key, known=", ".join(sorted(known))))
        values[name] = value
    return path, values
