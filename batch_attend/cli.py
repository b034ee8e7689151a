"""The ``batch-attend`` command: options in, one library call, an exit code out.

Only this module imports click. Heavy libraries (pandas, aiohttp) are imported by the library when
a run needs them, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import click
from click.core import ParameterSource

from batch_attend import __version__
from batch_attend.api import DEFAULT_BASE_URL
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.outcomes import ExitStatus

TOKEN_ENV = "PLUGCHAT_TOKEN"
TICKET_ENV = "PLUGCHAT_TICKET"
BASE_URL_ENV = "PLUGCHAT_BASE_URL"


class TranslatedCommand(click.Command):
    """Help in the user's language: the English help texts are the catalog's message IDs, and
    are translated when the help is shown (the language is known only then)."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        saved = [(p, p.help) for p in self.params if getattr(p, "help", None)]
        saved_help = self.help
        try:
            for param, text in saved:
                param.help = _(text)
            if self.help:
                self.help = _(inspect.cleandoc(self.help))
            super().format_help(ctx, formatter)
        finally:
            for param, text in saved:
                param.help = text
            self.help = saved_help

    def get_short_help_str(self, limit: int = 45) -> str:
        saved = self.help
        try:
            if self.help:
                self.help = _(inspect.cleandoc(self.help))
            return super().get_short_help_str(limit)
        finally:
            self.help = saved


def _translate_click() -> None:
    """click's own words ("Usage:", "Options:", its error messages) through our catalog too."""
    import click.core
    import click.decorators
    import click.exceptions
    import click.formatting
    import click.parser
    import click.types

    for module in (
        click.core,
        click.decorators,
        click.exceptions,
        click.formatting,
        click.parser,
        click.types,
    ):
        if hasattr(module, "_"):
            module._ = _


_translate_click()


class DefaultCommandGroup(click.Group):
    """``batch-attend FILE ...`` runs the default command; ``batch-attend sandbox`` the other one.

    ``batch-attend --help`` shows the main command's options, then the other commands.
    """

    default_command = "run"
    command_class = TranslatedCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from batch_attend import i18n

        i18n.set_language(None, Env().environ)  # before any --help is shown; --lang may change it
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        command = self.commands[self.default_command]
        sub = click.Context(command, info_name=ctx.info_name, max_content_width=100)
        command.format_help(sub, formatter)
        with formatter.section(_("Other commands")):
            formatter.write_dl(
                [
                    (name, cmd.get_short_help_str(60))
                    for name, cmd in self.commands.items()
                    if name != self.default_command
                ]
                + [("--version", _("Show the version and exit."))]
            )
        formatter.write_paragraph()
        formatter.write_text(
            _(
                "Exit codes: 0 every row started or already in service; 1 some rows invalid or "
                "failed; 2 usage or input error, nothing sent; 3 the API refused the token; "
                "130/143 interrupted."
            )
        )


@click.group(
    cls=DefaultCommandGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="batch-attend")
def cli() -> None:
    """Start a PlugChat attendance for every row of a leads spreadsheet."""


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[token]") if secret and secret in text else text


def _country_code(ctx: click.Context, param: click.Parameter, value: str) -> str:
    digits = value.strip().lstrip("+")
    if not digits.isdigit() or not 1 <= len(digits) <= 3:
        raise click.BadParameter(
            _("'{value}' is not a country code (1 to 3 digits, e.g. 55)").format(value=value)
        )
    return digits


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(value.lower(), value)
    if len(value) != 1:
        raise click.BadParameter(
            _("'{value}' is not a single character (or tab/comma/semicolon/pipe)").format(
                value=value
            )
        )
    return value


CONFIG_FILE = "batch-attend.toml"


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Options from ``batch-attend.toml`` (or ``--config``) become this command's defaults, so
    anything given on the command line still wins. The token may not live there."""
    import tomllib

    path = value or (Path(CONFIG_FILE) if Path(CONFIG_FILE).is_file() else None)
    if path is None:
        return None
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise click.BadParameter(
            _("{path}: cannot read it ({strerror})").format(path=path, strerror=exc.strerror)
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(
            _("{path}: not valid TOML ({exc})").format(path=path, exc=exc)
        ) from exc
    names = {}
    for p in ctx.command.params:
        for opt in getattr(p, "opts", []):
            if opt.startswith("--"):
                names[opt[2:]] = p.name
                names[opt[2:].replace("-", "_")] = p.name
    defaults = {}
    for key, val in data.items():
        if key in ("token", "plugchat_token", "PLUGCHAT_TOKEN"):
            raise click.BadParameter(
                _(
                    "{path}: the token may not be stored in a config file; use PLUGCHAT_TOKEN or token-file = 'path' (a file only you can read)"
                ).format(path=path)
            )
        if key not in names or key in ("config", "lang", "help"):
            known = ", ".join(sorted(k for k in names if "_" not in k and k != "config"))
            raise click.BadParameter(
                _("{path}: unknown option '{key}'. Known: {known}").format(
                    path=path, key=key, known=known
                )
            )
        defaults[names[key]] = val
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return Path(path)


def _set_language(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    from batch_attend import i18n

    return i18n.set_language(value, Env().environ)


def common_options(func):
    """--config, --lang and --traceback, on every command that talks to the API."""
    func = click.option(
        "--traceback", is_flag=True, help="Show the full traceback of an unexpected error."
    )(func)
    func = click.option(
        "--lang",
        type=click.Choice(["en", "pt_BR", "pt"]),
        is_eager=True,
        expose_value=False,
        callback=_set_language,
        help="Language of messages (default: from LC_ALL/LANG; pt_BR gives Portuguese). "
        "Results files keep English column names and codes.",
    )(func)
    func = click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        is_eager=True,
        expose_value=False,
        callback=_load_config,
        help=f"Options file (TOML; default: ./{CONFIG_FILE} when present). "
        "Options given on the command line win over it.",
    )(func)
    return func


def _with(func, decorators: list):
    """Apply a list of click decorators, first one outermost (as if stacked in that order)."""
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def credential_options(func):
    return _with(
        func,
        [
            click.option(
                "--token",
                metavar="TOKEN",
                help=f"PlugChat API token, sent as the Authorization header exactly as given. "
                f"Prefer {TOKEN_ENV} or --token-file: command lines are visible to other users.",
            ),
            click.option(
                "--token-file",
                type=click.Path(path_type=Path, dir_okay=False),
                metavar="PATH",
                help="Read the token from this file (surrounding white space is ignored).",
            ),
            click.option(
                "--ticket",
                metavar="TICKET",
                help=f"Ticket header for the operator list (env {TICKET_ENV}); "
                "needed to write operator names, logins or e-mails instead of IDs.",
            ),
            click.option(
                "--base-url",
                metavar="URL",
                help=f"API base URL (env {BASE_URL_ENV}). Default: {DEFAULT_BASE_URL}",
            ),
        ],
    )


def input_options(func):
    return _with(
        func,
        [
            click.option(
                "--operator",
                "operators",
                multiple=True,
                metavar="ID",
                help="Operator (ID or name) for rows whose operators cell is empty; repeat for "
                "several: --operator OP-1 --operator OP-2.",
            ),
            click.option(
                "--department",
                metavar="ID",
                help="Department (ID or name) for rows with an empty department cell.",
            ),
            click.option(
                "--pool",
                metavar="A,B,C",
                help="Spread rows without operators over these operators (IDs or names).",
            ),
            click.option(
                "--pool-file",
                type=click.Path(path_type=Path, dir_okay=False),
                metavar="PATH",
                help="Pool members from a file, one per line (# starts a comment).",
            ),
            click.option(
                "--distribute",
                type=click.Choice(["round-robin", "balanced"]),
                default="round-robin",
                show_default=True,
                help="How the pool is used: in turn, or to whoever has the fewest rows "
                "(counting rows that already name them).",
            ),
            click.option(
                "--no-lookup",
                is_flag=True,
                help="Send operator and department cells as they are, without resolving names.",
            ),
            click.option(
                "--country-code",
                default="55",
                show_default=True,
                metavar="DIGITS",
                callback=_country_code,
                help="Added to 10-11 digit national numbers such as (44) 99999-9999.",
            ),
            click.option(
                "--phone-column",
                metavar="NAME",
                help="Column holding the phone (default: found by name).",
            ),
            click.option("--operators-column", metavar="NAME", help="Column holding operators."),
            click.option(
                "--department-column", metavar="NAME", help="Column holding the department."
            ),
            click.option(
                "--sheet",
                metavar="NAME|N",
                help="Workbook sheet, by name or 1-based number "
                "(default: the first sheet with a phone column).",
            ),
            click.option(
                "--encoding",
                metavar="NAME",
                help="CSV encoding, e.g. cp1252 (default: detected: UTF-8, UTF-16, Windows-1252...).",
            ),
            click.option(
                "--delimiter",
                metavar="CHAR",
                callback=_delimiter,
                help="CSV delimiter (default: detected among , ; tab |).",
            ),
            click.option(
                "--allow-duplicates",
                is_flag=True,
                help="Send every row, even when its phone already appeared in an earlier row.",
            ),
            click.option(
                "--timeout",
                default=30.0,
                show_default=True,
                type=click.FloatRange(0.1, 600),
                metavar="SECONDS",
                help="Seconds each request may take, from connecting to the whole answer.",
            ),
            click.option(
                "--sandbox",
                is_flag=True,
                help="Talk to a built-in PlugChat stand-in on 127.0.0.1 (no token, no internet).",
            ),
        ],
    )


def _credentials(ctx: click.Context, env: Env, opts: dict) -> tuple[str | None, str | None, str]:
    """Token, ticket and base URL: command line, then environment, then config file."""
    token = opts.get("token")
    if not token and opts.get("token_file"):
        try:
            token = Path(opts["token_file"]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.BadParameter(
                _("{path}: cannot read it ({strerror})").format(
                    path=opts["token_file"], strerror=exc.strerror
                ),
                param_hint="--token-file",
            ) from exc
    token = token or env.environ.get(TOKEN_ENV) or None
    ticket = opts.get("ticket")
    if ctx.get_parameter_source("ticket") is not ParameterSource.COMMANDLINE:
        ticket = env.environ.get(TICKET_ENV) or ticket
    base_url = opts.get("base_url")
    if ctx.get_parameter_source("base_url") is not ParameterSource.COMMANDLINE:
        base_url = env.environ.get(BASE_URL_ENV) or base_url
    return token, ticket or None, base_url or DEFAULT_BASE_URL


def _options_from(ctx: click.Context, env: Env, input_file: Path | None, opts: dict):
    from batch_attend.runner import RunOptions

    token, ticket, base_url = _credentials(ctx, env, opts)
    known = {f for f in RunOptions.__dataclass_fields__}
    values = {k: v for k, v in opts.items() if k in known}
    values.update(
        input=input_file or Path("."),
        token=token,
        ticket=ticket,
        base_url=base_url,
        operators=tuple(o.strip() for o in opts.get("operators", ()) if o.strip()),
        department=opts.get("department") or None,
        lookup=not opts.get("no_lookup", False),
    )
    if "no_bom" in opts:
        values["bom"] = not opts["no_bom"]
    return RunOptions(**values), token


def _fail(env: Env, message: str, token: str | None, code: ExitStatus) -> None:
    env.log(f"batch-attend: {_('error')}: {_redact(message, token)}")
    sys.exit(code)


@cli.command(name="run")
@click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Results file: .csv or .xlsx by extension, '-' for CSV on stdout. "
    "Default: INPUT's name + '.results' beside it.",
)
@credential_options
@input_options
@click.option(
    "-c",
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Requests in flight at once.",
)
@click.option(
    "--retries",
    default=3,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Retries per row after a time-out, a dropped connection, 500/502/503/504 or 429.",
)
@click.option(
    "--backoff",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="First retry waits a random time up to this, doubling each retry (capped at 30 s). "
    "A Retry-After from the API wins.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    metavar="N",
    help="At most N requests per second for the whole run.",
)
@click.option(
    "--journal",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Where to record progress for resuming (default: OUTPUT + '.journal'; "
    "none when the results go to stdout).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Ignore what an earlier run recorded in the journal and send every row again.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and validate, write the results, send nothing (no token needed).",
)
@click.option(
    "--summary-json",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Write counts, timings, paths and the exit code as JSON here (for schedulers).",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PATH",
    help="Append one JSON line per request (row, masked phone, status, attempt, HTTP status, "
    "latency).",
)
@click.option("-v", "--verbose", is_flag=True, help="One line on stderr per request and answer.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option(
    "--no-bom",
    is_flag=True,
    help="Write CSV results without the UTF-8 BOM that Excel needs for accents.",
)
@common_options
@click.pass_context
def run_command(ctx: click.Context, input_file: Path, **opts) -> None:
    """Start an attendance for every row of INPUT (.csv, .xlsx, .xls, .ods) and write the results.

    \b
    Examples:
      export PLUGCHAT_TOKEN=...        # never echoed anywhere
      batch-attend leads.xlsx -o results.csv
      batch-attend leads.csv -o results.xlsx --operator OP-1 --department DEP-9 -c 16
      batch-attend leads.xlsx --pool "Ana Souza,Bruno Lima" --department Vendas
      batch-attend samples/leads.xlsx -o results.xlsx --sandbox
      batch-attend leads.xlsx --dry-run -o check.csv

    \b
    Columns are found by name in Portuguese or English (telefone/phone/celular/whatsapp,
    operadores/operators, departamento/department/setor); every other column is kept.
    Options may also come from ./batch-attend.toml; the command line wins over it.
    """
    env = Env()
    token = None
    summary_path = opts.pop("summary_json")
    started = time.time()
    try:
        from batch_attend.outcomes import exit_status_for
        from batch_attend.runner import run_batch

        options, token = _options_from(ctx, env, input_file, opts)
        report = run_batch(options, env)
    except BatchAttendError as exc:
        _write_summary(
            summary_path,
            None,
            options_or_none(locals()),
            ExitStatus.USAGE_OR_INPUT_ERROR,
            started,
            str(exc),
            token,
        )
        _fail(env, str(exc), token, ExitStatus.USAGE_OR_INPUT_ERROR)
    except KeyboardInterrupt:
        env.log(f"batch-attend: {_('interrupted before any request was sent.')}")
        sys.exit(ExitStatus.INTERRUPTED)
    except Exception as exc:
        if opts["traceback"]:
            raise
        env.log(
            f"batch-attend: {_('unexpected error')}: {type(exc).__name__}: "
            f"{_redact(str(exc), token)}. "
            + _(
                "The results file may be missing or incomplete; run again with --traceback "
                "for details."
            )
        )
        sys.exit(ExitStatus.ROWS_NOT_DONE)
    summary = report.summary
    if summary.interrupted_by:
        unsent = summary.error_counts.get("interrupted", 0)
        resume = (
            _("Run the same command again to resume (progress is in {journal}).").format(
                journal=report.journal
            )
            if report.journal
            else _("Without a journal (results on stdout) a rerun sends every row again.")
        )
        env.log(
            "batch-attend: "
            + _("interrupted ({signal}); {count} rows not finished are marked skipped.").format(
                signal=summary.interrupted_by, count=f"{unsent:,}"
            )
            + " "
            + resume
        )
    elif summary.token_refused:
        skipped = summary.error_counts.get("unauthorized", 0)
        env.log(
            "batch-attend: "
            + _(
                "the API refused the token (HTTP 401); sending stopped. Check {env} (or --token). "
                "{count} rows are marked skipped: fix the token and run again."
            ).format(env=TOKEN_ENV, count=f"{skipped:,}")
        )
    code = exit_status_for(summary)
    _write_summary(summary_path, report, options, code, started, None, token)
    sys.exit(code)


def options_or_none(scope: dict):
    return scope.get("options")


def _write_summary(path, report, options, code, started, error, token) -> None:
    """``--summary-json``: what a scheduler needs to know, whatever the outcome."""
    if path is None:
        return
    import json

    data = {
        "exit_code": int(code),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "input": str(options.input) if options else None,
        "output": None,
        "journal": None,
        "error": _redact(error, token) if error else None,
    }
    if report is not None:
        summary = report.summary
        data.update(
            output=report.output,
            journal=str(report.journal) if report.journal else None,
            rows=summary.total,
            counts={str(k): v for k, v in sorted(summary.counts.items())},
            errors={str(k): v for k, v in sorted(summary.error_counts.items())},
            elapsed_s=round(summary.elapsed, 3),
            rows_per_s=round(summary.sent_rows / summary.elapsed, 1) if summary.elapsed else 0.0,
            requests=summary.requests,
            retries=summary.retries,
            rate_limited=summary.pushbacks,
            resumed=summary.resumed,
        )
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@cli.command(name="check")
@click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path))
@credential_options
@input_options
@common_options
@click.pass_context
def check_command(ctx: click.Context, input_file: Path, **opts) -> None:
    """Check the token, the account and INPUT without starting any attendance.

    Reports whether the token is accepted, how many departments and operators the account has
    (operators need the ticket), and how many rows are ready to send, listing the invalid ones.
    Exit 0 only when everything is ready; 1 when some rows are invalid; 3 when the token is
    refused; 2 for usage or input errors.

    \b
    Example:
      batch-attend check leads.xlsx --ticket 0000
    """
    env = Env()
    token = None
    try:
        from batch_attend.preflight import check_batch

        options, token = _options_from(ctx, env, input_file, opts)
        report = check_batch(options)
    except BatchAttendError as exc:
        _fail(env, str(exc), token, ExitStatus.USAGE_OR_INPUT_ERROR)
    for line in report.lines():
        click.echo(_redact(line, token), file=env.stdout)
    if report.token == "refused":
        sys.exit(ExitStatus.TOKEN_REFUSED)
    if report.all_ready:
        sys.exit(ExitStatus.SUCCESS)
    if report.token in ("missing", "unknown"):
        sys.exit(ExitStatus.USAGE_OR_INPUT_ERROR)
    sys.exit(ExitStatus.ROWS_NOT_DONE)


def _listing(kind: str):
    @credential_options
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        help="Output format (default: a table on a terminal, CSV otherwise).",
    )
    @click.option(
        "--timeout",
        default=30.0,
        type=click.FloatRange(0.1, 600),
        metavar="SECONDS",
        help="Seconds the request may take, from connecting to the whole answer.",
    )
    @click.option("--sandbox", is_flag=True, help="Ask the built-in stand-in instead.")
    @common_options
    @click.pass_context
    def command(ctx: click.Context, fmt: str | None, **opts) -> None:
        env = Env()
        token = None
        try:
            from batch_attend.preflight import format_directory, list_directory

            options, token = _options_from(ctx, env, None, opts)
            items = list_directory(options, kind)
        except BatchAttendError as exc:
            from batch_attend.directory import TokenRefusedError

            refused = isinstance(exc, TokenRefusedError)
            code = ExitStatus.TOKEN_REFUSED if refused else ExitStatus.USAGE_OR_INPUT_ERROR
            _fail(env, str(exc), token, code)
        if fmt is None:
            fmt = "table" if env.stdout.isatty() else "csv"
        env.stdout.write(format_directory(items, kind, fmt))

    return command


cli.command(
    name="operators",
    help="List the account's operators (needs the ticket), to fill a sheet with correct "
    "names or IDs.\n\n\b\nExample:\n  batch-attend operators --ticket 0000 --format csv > operadores.csv",
)(_listing("operators"))
cli.command(
    name="departments",
    help="List the account's departments (ID, name, active).\n\n\b\nExample:\n  batch-attend departments",
)(_listing("departments"))


@cli.command(name="sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0 = any free port).",
)
@click.option(
    "--token", default="sandbox-token", show_default=True, help="The token the sandbox accepts."
)
@click.option(
    "--latency",
    default=0.0,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="Delay before every answer.",
)
@click.option(
    "--jitter",
    default=0.0,
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="Random extra delay, up to this much.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(0, min_open=True),
    metavar="N",
    help="Answer 429 above N requests per second.",
)
@click.option(
    "--retry-after",
    type=click.Choice(["seconds", "date", "none"]),
    default="seconds",
    show_default=True,
    help="Form of the Retry-After header sent with 429.",
)
@click.option(
    "--revoke-after",
    type=click.IntRange(0),
    metavar="N",
    help="Refuse the token (401) after N starts.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="PHONE=KIND[:TIMES]",
    help="Misbehave for one phone: fail, drop, slow, act-drop, html, badjson, empty, bad-gateway.",
)
@click.option(
    "--slow-seconds",
    default=5.0,
    type=click.FloatRange(0),
    show_default=True,
    help="How long a 'slow' fault waits.",
)
def sandbox_command(
    host, port, token, latency, jitter, rate_limit, retry_after, revoke_after, faults, slow_seconds
) -> None:
    """Serve a local PlugChat stand-in for rehearsals (Ctrl-C stops it).

    \b
    Example:
      batch-attend sandbox --port 8080 &
      curl -X POST http://127.0.0.1:8080/api/integrations/start-attendance \\
           -H 'Authorization: sandbox-token' -H 'Content-Type: application/json' \\
           -d '{"phone": "554499999999", "operators": ["OP-ANA"]}'
      PLUGCHAT_TOKEN=sandbox-token batch-attend leads.xlsx \\
           --base-url http://127.0.0.1:8080/api/integrations
    """
    import asyncio

    from batch_attend.sandbox import Fault, SandboxState, serve_forever

    env = Env()
    parsed = {}
    for spec in faults:
        phone, sep, kind = spec.partition("=")
        try:
            if not sep:
                raise ValueError("expected PHONE=KIND[:TIMES]")
            parsed[phone.strip()] = Fault.parse(kind.strip())
        except ValueError as exc:
            raise click.BadParameter(
                _("{spec}: {exc}").format(spec=spec, exc=exc), param_hint="--fault"
            ) from exc
    state = SandboxState(
        token=token,
        latency=latency,
        jitter=jitter,
        rate_limit=rate_limit,
        retry_after=retry_after,
        revoke_after=revoke_after,
        faults=parsed,
        slow_seconds=slow_seconds,
        keep_log=False,
    )

    def announce(url: str) -> None:
        click.echo(f"PlugChat sandbox listening on {url}", file=env.stdout)
        click.echo(f"Send 'Authorization: {token}'. Ctrl-C stops it.", file=env.stdout)
        env.stdout.flush()

    try:
        asyncio.run(serve_forever(state, host, port, announce))
    except OSError as exc:
        env.log(f"batch-attend: error: cannot listen on {host}:{port} ({exc.strerror})")
        sys.exit(ExitStatus.USAGE_OR_INPUT_ERROR)
    except KeyboardInterrupt:
        env.log("batch-attend: sandbox stopped.")


def main() -> None:
    cli(prog_name="batch-attend")
