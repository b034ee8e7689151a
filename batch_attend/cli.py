"""The ``batch-attend`` command: options in, one options object, one library call, an exit code
out.

Only this module imports click. Every command goes through one error boundary
(:meth:`DefaultCommandGroup.invoke`): a library error becomes one line on stderr and its exit
code; ``--traceback`` shows the rest. Heavy libraries are imported by the library when a command
needs them, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from pathlib import Path

import click

from batch_attend import __version__, i18n
from batch_attend.api import DEFAULT_BASE_URL, shown_url
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.outcomes import ExitStatus
from batch_attend.settings import (
    ACCOUNT_ENV,
    BASE_URL_ENV,
    CONFIG_FILE,
    TICKET_ENV,
    TOKEN_ENV,
    ConfigError,
    RunOptions,
    find_config,
    read_config,
)

TRACEBACK = "batch_attend.traceback"
CONFIG_USED = "batch_attend.config"


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

    def invoke(self, ctx: click.Context):
        """A config file in use is named before anything else, even with ``quiet`` in it, and so
        is a base URL taken from it: a file left in a folder must not redirect the token
        silently."""
        path = ctx.meta.get(CONFIG_USED)
        if path is not None:
            line = _("settings from {path}").format(path=path.resolve())
            source = ctx.get_parameter_source("base_url")
            if source is click.core.ParameterSource.DEFAULT_MAP:
                line += _(", with its base URL {url}").format(url=shown_url(ctx.params["base_url"]))
            ctx.obj.log(f"batch-attend: {line}")
        return super().invoke(ctx)

    def get_short_help_str(self, limit: int = 45) -> str:
        saved = self.help
        try:
            if self.help:
                self.help = _(inspect.cleandoc(self.help))
            return super().get_short_help_str(limit)
        finally:
            self.help = saved


def _lang_given(args: list[str]) -> str | None:
    """``--lang X`` (or ``--lang=X``) among ``args``, for a help shown before options are read."""
    for i, arg in enumerate(args):
        if arg == "--lang" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
    return None


class DefaultContext(click.Context):
    """The context of the default command, which users never type: its usage lines and hints
    say ``batch-attend INPUT``, not ``batch-attend run INPUT``."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else super().command_path


class DefaultCommandGroup(click.Group):
    """``batch-attend FILE ...`` runs the default command; ``batch-attend sandbox`` the other one.

    ``batch-attend --help`` shows the main command's options, then the other commands. Its
    :meth:`invoke` is the one error boundary of every command.
    """

    default_command = "run"
    command_class = TranslatedCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        i18n.set_language(_lang_given(args), Env().environ)  # before any --help is shown
        lead = 2 if args[:1] == ["--lang"] else int(bool(args) and args[0].startswith("--lang="))
        if lead and len(args) > lead and args[lead] in self.commands:  # --lang pt_BR check …
            args = [args[lead], *args[:lead], *args[lead + 1 :]]
        if args and args[0] not in self.commands and args[0] != "--version":
            helped = "--help" in args or "-h" in args  # the same help, other commands listed
            args = ["--help"] if helped else [self.default_command, *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        env = ctx.obj = Env()
        try:
            code = super().invoke(ctx)
        except BatchAttendError as exc:
            env.log(f"batch-attend: {_('error')}: {exc}")
            code = exc.exit_status
        except KeyboardInterrupt:
            env.log(f"batch-attend: {_('interrupted before any request was sent.')}")
            code = ExitStatus.INTERRUPTED
        except BrokenPipeError:
            # Results on stdout read by something that stopped reading (``| head``): the
            # ledger holds every answer. Point stdout at nothing so the exit flush stays quiet.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            env.log(
                "batch-attend: "
                + _(
                    "the results on stdout were cut off (broken pipe); every answer is in the "
                    "journal, so running the same command again sends nothing twice."
                )
            )
            code = ExitStatus.ROWS_NOT_DONE
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get(TRACEBACK):
                raise
            env.log(
                f"batch-attend: {_('unexpected error')}: {type(exc).__name__}: {exc}. "
                + _(
                    "The results file may be missing or incomplete; run again with --traceback "
                    "for details."
                )
            )
            code = ExitStatus.ROWS_NOT_DONE
        ctx.exit(int(code))

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
                "4 the account's WhatsApp number is not connected; 5 a file could not be written "
                "after sending began; 130/143 interrupted."
            )
        )


@click.group(
    cls=DefaultCommandGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="batch-attend")
def cli() -> None:
    """Start a PlugChat attendance for every row of a leads spreadsheet."""


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


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """Options from ``batch-attend.toml`` (or ``--config``) become this command's defaults, so
    the command line and the environment still win over them."""
    path = find_config(value)
    if path is None:
        return
    params = {
        opt[2:]: p
        for p in ctx.command.params
        for opt in getattr(p, "opts", [])
        if opt.startswith("--") and p.name not in ("config", "lang", "traceback", "help")
    }
    try:
        values = read_config(path, {key: p.name for key, p in params.items()})
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc
    for p in params.values():  # operator = "OP-ANA" for an option given many times
        if getattr(p, "multiple", False) and isinstance(values.get(p.name), str):
            values[p.name] = [values[p.name]]
    ctx.default_map = {**(ctx.default_map or {}), **values}
    ctx.meta[CONFIG_USED] = path


def _set_language(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    i18n.set_language(value, Env().environ)


def _set_traceback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[TRACEBACK] = value


def _with(func, decorators: list):
    """Apply a list of click decorators, first one outermost (as if stacked in that order)."""
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def common_options(func):
    """--config, --lang and --traceback, on every command."""
    return _with(
        func,
        [
            click.option(
                "--config",
                type=click.Path(path_type=Path, dir_okay=False, exists=True),
                is_eager=True,
                expose_value=False,
                callback=_load_config,
                help=f"Options file (TOML; default: ./{CONFIG_FILE} when present). "
                "Options given on the command line win over it.",
            ),
            click.option(
                "--lang",
                type=click.Choice(["en", "pt_BR", "pt"]),
                is_eager=True,
                expose_value=False,
                callback=_set_language,
                help="Language of messages (default: from LC_ALL/LANG; pt_BR gives Portuguese). "
                "Results files keep English column names and codes.",
            ),
            click.option(
                "--traceback",
                is_flag=True,
                expose_value=False,
                callback=_set_traceback,
                help="Show the full traceback of an unexpected error.",
            ),
        ],
    )


def listen_options(port: int):
    """--host and --port of a command that serves (the sandbox, the web page)."""
    return lambda func: _with(
        func,
        [
            click.option(
                "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
            ),
            click.option(
                "--port",
                default=port,
                show_default=True,
                type=click.IntRange(0, 65535),
                help="Port (0 = any free port).",
            ),
        ],
    )


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
                envvar=TICKET_ENV,
                help=f"Ticket header for the operator list (env {TICKET_ENV}); "
                "needed to write operator names, logins or e-mails instead of IDs.",
            ),
            click.option(
                "--account-id",
                metavar="ID",
                envvar=ACCOUNT_ENV,
                help=f"The account's ID, to ask who is online (env {ACCOUNT_ENV}); it is in the "
                "address of an operator's chat page.",
            ),
            click.option(
                "--base-url",
                metavar="URL",
                envvar=BASE_URL_ENV,
                help=f"API base URL (env {BASE_URL_ENV}). Default: {DEFAULT_BASE_URL}",
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
                "--online-only",
                is_flag=True,
                help="Give rows only to operators online now: pool members, and the operators "
                "of cells that name several (needs --account-id).",
            ),
            click.option(
                "--verify-whatsapp",
                is_flag=True,
                help="Ask PlugChat whether each phone has WhatsApp before its start (and the "
                "other ninth-digit form of a Brazilian mobile that has not); a phone without "
                "is invalid (no_whatsapp), never started.",
            ),
            click.option(
                "--no-status-check",
                is_flag=True,
                help="Do not ask whether the account's WhatsApp number is connected before "
                "sending (nor again when answers fail in a row).",
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
                "--header-row",
                type=click.IntRange(1, 1_048_576),
                metavar="N",
                help="The header's row number, as the spreadsheet shows it (default: found among "
                "the top 20 rows by the phone column's name).",
            ),
            click.option(
                "--ddd-column",
                metavar="NAME",
                help="Column holding the area code (DDD) for phones written without it.",
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
                "--journal",
                type=click.Path(path_type=Path, dir_okay=False),
                metavar="PATH",
                help="The ledger of what was sent and answered (default: OUTPUT + '.journal'; "
                "INPUT + '.journal' when the results go to stdout).",
            ),
        ],
    )


@cli.command(name="run")
@click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Results file: .csv or .xlsx by extension, '-' for CSV on stdout. "
    "Default: INPUT's name + '.results' beside it; required when INPUT is '-' (stdin).",
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
    "--fresh",
    is_flag=True,
    help="Forget what the journal holds and send every row again (rows started earlier then "
    "come back already in service).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and validate, write the results, send nothing and ask the API nothing "
    "(no token needed).",
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
@click.option(
    "--results-lang",
    type=click.Choice(["en", "pt_BR", "pt"]),
    help="Language of the results' error sentences and Summary sheet (default: en). Column "
    "names, statuses and error codes stay English for scripts.",
)
@click.option(
    "--output-delimiter",
    metavar="CHAR",
    callback=_delimiter,
    help="CSV results' delimiter (default: the CSV input's; from a workbook, ; when messages "
    "are in Portuguese, as Excel in Brazil expects, else ,).",
)
@common_options
@click.pass_obj
def run_command(env: Env, input_file: Path, **opts) -> ExitStatus:
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
    A results file may be given back as INPUT: rows it shows done are not sent again.
    Options may also come from ./batch-attend.toml; the command line wins over it.
    """
    from batch_attend.runner import run_batch

    return run_batch(RunOptions.build(input=input_file, **opts), env).exit_status


run_command.context_class = DefaultContext


@cli.command(name="check")
@click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="The results file a run would write: what its journal holds counts as done "
    "(default: INPUT's name + '.results' beside it).",
)
@credential_options
@input_options
@common_options
@click.pass_obj
def check_command(env: Env, input_file: Path, **opts) -> ExitStatus:
    """Check the token, the account and INPUT without starting any attendance.

    Reports whether the token is accepted, how many departments and operators the account has
    (operators need the ticket), and how many rows are ready to send, listing the invalid ones.
    Exit 0 only when everything is ready; 1 when some rows are invalid; 3 when the token is
    refused; 2 for usage or input errors.

    \b
    Example:
      batch-attend check leads.xlsx --ticket 0000
    """
    from batch_attend.preflight import check_batch

    report = check_batch(RunOptions.build(input=input_file, **opts), env)
    for line in report.lines():
        click.echo(line, file=env.stdout)
    return report.exit_status


def _listing(kind: str):
    online = click.option(
        "--online",
        is_flag=True,
        help="Who is online now, and who is not (needs --account-id instead of the ticket).",
    )

    @credential_options
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "csv", "json"]),
        help="Output format (default: a table on a terminal, CSV otherwise).",
    )
    @(online if kind == "operators" else (lambda f: f))
    @common_options
    @click.pass_obj
    def command(env: Env, fmt: str | None, **opts) -> ExitStatus:
        from batch_attend.preflight import format_directory, list_directory

        which = "online" if opts.pop("online", False) else kind
        items = list_directory(RunOptions.build(**opts), which, env)
        if fmt is None:
            fmt = "table" if env.stdout.isatty() else "csv"
        env.stdout.write(format_directory(items, which, fmt))
        return ExitStatus.SUCCESS

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


@cli.command(name="template")
@click.argument("output", metavar="OUTPUT", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@credential_options
@common_options
@click.pass_obj
def template_command(env: Env, output: Path, force: bool, **opts) -> ExitStatus:
    """Write a leads workbook (.xlsx) to fill in, with drop-downs of the account's operators
    (needs the ticket) and departments.

    \b
    Example:
      batch-attend template leads.xlsx --ticket 0000
    """
    from batch_attend.template import write_template

    env.log("batch-attend: " + write_template(output, RunOptions.build(**opts), env, force=force))
    return ExitStatus.SUCCESS


@cli.command(name="sandbox")
@listen_options(8080)
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
    help="Refuse a start closer than 1/N s to the one before, as nginx's limit_req does "
    "(503, no Retry-After).",
)
@click.option(
    "--burst",
    default=0,
    type=click.IntRange(0),
    metavar="B",
    help="With --rate-limit: let B more through at once (nginx's burst=B nodelay).",
)
@click.option(
    "--limit-status",
    type=click.Choice(["503", "429"]),
    default="503",
    show_default=True,
    help="What --rate-limit answers.",
)
@click.option(
    "--retry-after",
    type=click.Choice(["seconds", "date", "none"]),
    default="none",
    show_default=True,
    help="A Retry-After of a second with each refusal, in seconds or as a date.",
)
@click.option(
    "--revoke-after",
    type=click.IntRange(0),
    metavar="N",
    help="Refuse the token (401) after N starts.",
)
@click.option(
    "--disconnected",
    is_flag=True,
    help="Start with the WhatsApp number disconnected (status false, starts 503).",
)
@click.option(
    "--disconnect-after",
    type=click.IntRange(0),
    metavar="N",
    help="Disconnect the WhatsApp number after N starts.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="PHONE=KIND[:TIMES]",
    help="Misbehave for one phone: fail, drop, slow, act-drop, act-fail, html, badjson, empty, "
    "bad-gateway.",
)
@click.option(
    "--slow-seconds",
    default=5.0,
    type=click.FloatRange(0),
    show_default=True,
    help="How long a 'slow' fault waits.",
)
@common_options
@click.pass_obj
def sandbox_command(
    env: Env,
    host,
    port,
    token,
    latency,
    jitter,
    rate_limit,
    burst,
    limit_status,
    retry_after,
    revoke_after,
    disconnected,
    disconnect_after,
    faults,
    slow_seconds,
) -> ExitStatus:
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
    from batch_attend.sandbox import SandboxState, parse_faults, serve

    state = SandboxState(
        token=token,
        latency=latency,
        jitter=jitter,
        rate_limit=rate_limit,
        burst=burst,
        limit_status=int(limit_status),
        retry_after=retry_after,
        revoke_after=revoke_after,
        connected=not disconnected,
        disconnect_after=disconnect_after,
        faults=parse_faults(faults),
        slow_seconds=slow_seconds,
        keep_log=False,
    )

    def announce(url: str) -> None:
        click.echo(_("PlugChat sandbox listening on {url}").format(url=url), file=env.stdout)
        click.echo(
            _("Send 'Authorization: {token}'. Ctrl-C stops it.").format(token=token),
            file=env.stdout,
        )
        env.stdout.flush()

    try:
        serve(state, host, port, announce)
    except KeyboardInterrupt:
        env.log("batch-attend: " + _("sandbox stopped."))
    return ExitStatus.SUCCESS


@cli.command(name="serve")
@listen_options(8000)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("batch-attend-data"),
    show_default=True,
    help="Where uploads, results and their journals are kept (made readable only by you).",
)
@credential_options
@common_options
@click.pass_obj
def serve_command(env: Env, host: str, port: int, data_dir: Path, **opts) -> ExitStatus:
    """Serve the whole job on a web page: upload, preview, start, progress, results, history.

    \b
    Example:
      export PLUGCHAT_TOKEN=...     # stays on the server, never sent to the browser
      batch-attend serve --sandbox  # then open the address it prints
    """
    from batch_attend.web.app import serve

    def announce(url: str) -> None:
        click.echo(
            _("batch-attend serving on {url} (Ctrl-C stops it)").format(url=url), file=env.stdout
        )
        env.stdout.flush()

    try:
        serve(host, port, data_dir, opts, env.environ, announce)
    except KeyboardInterrupt:
        env.log("batch-attend: " + _("server stopped."))
    return ExitStatus.SUCCESS


def main() -> None:
    cli(prog_name="batch-attend")
