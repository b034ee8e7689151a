"""The ``batch-attend`` command: options in, one library call, an exit code out. Only this module
imports click; every command goes through :func:`errors.guarded`, the one error boundary; heavy
libraries wait until a command needs them, so ``--help`` and ``--version`` answer at once."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import itertools
from collections.abc import Callable
from pathlib import Path

import click

from batch_attend import __version__, i18n, settings
from batch_attend.api import DEFAULT_BASE_URL, shown_url
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError, ConfigError, guarded
from batch_attend.i18n import _
from batch_attend.outcomes import ExitStatus
from batch_attend.settings import RunOptions

DEFAULT = "run"  # the command that ``batch-attend FILE`` runs, never typed
CONFIG_USED = "batch_attend.config"


@contextlib.contextmanager
def _in_language(*commands: click.Command):
    """Help texts in the language known once the command line is read (English: the msgids)."""
    english = [(item, item.help) for c in commands for item in (c, *c.params) if item.help]
    try:
        for item, text in english:
            item.help = _(inspect.cleandoc(text))
        yield
    finally:
        for item, text in english:
            item.help = text


class Context(click.Context):
    """Help in the reader's language; the default command's usage says ``batch-attend INPUT``."""

    @property
    def command_path(self) -> str:
        if self.parent is not None and self.info_name == DEFAULT:
            return self.parent.command_path
        return super().command_path

    def get_help(self) -> str:
        with _in_language(self.command):
            return super().get_help()


class Main(click.Group):
    """``batch-attend FILE`` runs the default command, whose help ``--help`` shows with the rest."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = [p for a in args for p in (a.split("=", 1) if a.startswith("--lang=") else [a])]
        langs = [value for name, value in itertools.pairwise(args) if name == "--lang"]
        i18n.set_language(langs[-1] if langs else None, Env().environ)  # before any help is shown
        if args[:1] == ["--lang"] and args[2:3] and args[2] in self.commands:  # --lang pt_BR check
            args = [args[2], *args[:2], *args[3:]]
        if args and args[0] not in self.commands and args[0] != "--version":
            helped = "--help" in args or "-h" in args  # the same help, other commands listed
            args = ["--help"] if helped else [DEFAULT, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        run = self.commands[DEFAULT]
        formatter.write(Context(run, info_name=DEFAULT, parent=ctx).get_help() + "\n")
        others = {name: c for name, c in self.commands.items() if name != DEFAULT}
        with _in_language(*others.values()):
            rows = [(name, c.get_short_help_str(60)) for name, c in others.items()]
        with formatter.section(_("Other commands")):
            formatter.write_dl([*rows, ("--version", _("Show the version and exit."))])
        formatter.write_paragraph()
        formatter.write_text(
            _(
                "Exit codes: 0 every row started or already in service; 1 some rows invalid or "
                "failed; 2 usage or input error, nothing sent; 3 the API refused the token; "
                "4 the account's WhatsApp number is not connected; 5 a file could not be written "
                "after sending began; 130/143 interrupted."
            )
        )


SHOWN = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "show_default": True}


@click.group(cls=Main, context_settings=SHOWN)
@click.version_option(__version__, "--version", prog_name="batch-attend")
def cli() -> None:
    """Start a PlugChat attendance for every row of a leads spreadsheet."""


def command(name: str, *params: Callable):
    """A command of ``func(env, **options) -> ExitStatus``: ``params`` in order, then ``COMMON``."""

    def declare(func: Callable[..., ExitStatus]) -> click.Command:
        def callback(traceback: bool, **options) -> None:
            ctx, env = click.get_current_context(), Env()
            _name_config(ctx, env)
            ctx.exit(guarded(lambda: func(env, **options), env.log, traceback))

        for param in reversed([*params, *COMMON]):
            callback = param(callback)
        made = cli.command(name, help=func.__doc__)(callback)
        made.context_class = Context
        return made

    return declare


def options(table: dict[str, str], **extras: dict) -> list[Callable]:
    """click options from ``{"-o, --output PATH": help}`` (no metavar nor extras: a flag), with
    ``extras`` by option name (``name``: the parameter's)."""
    made = []
    for shown, text in table.items():
        words = shown.replace(", ", " ").split()
        metavar = None if words[-1].startswith("-") else words.pop()
        extra = dict(extras.get(words[-1].split("/")[0].lstrip("-").replace("-", "_"), {}))
        extra.setdefault("is_flag", metavar is None and not extra)
        decls = [*words, extra.pop("name")] if "name" in extra else words
        made.append(click.option(*decls, metavar=metavar, help=text, **extra))
    return made


def _name_config(ctx: click.Context, env: Env) -> None:
    """A config file in use is named before anything else, even with ``quiet`` in it, and so is
    a base URL taken from it: a file left in a folder must not redirect the token silently."""
    if (path := ctx.meta.get(CONFIG_USED)) is not None:
        line = _("settings from {path}").format(path=path.resolve())
        if ctx.get_parameter_source("base_url") is click.core.ParameterSource.DEFAULT_MAP:
            line += _(", with its base URL {url}").format(url=shown_url(ctx.params["base_url"]))
        env.log(f"batch-attend: {line}")


def _load_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    """The config file's options become defaults: the command line and environment win."""
    params = [p for p in ctx.command.params if p.name not in ("config", "lang", "traceback")]
    known = {opt[2:]: p.name for p in params for opt in p.opts if opt.startswith("--")}
    try:
        path, values = settings.read_config(value, known)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from exc
    many = {p.name for p in params if p.multiple}  # operator = "OP-ANA": one of many
    ctx.default_map = {k: [v] if k in many and isinstance(v, str) else v for k, v in values.items()}
    ctx.meta[CONFIG_USED] = path


def _parsed(parse: Callable[[str], str]) -> Callable:
    """A click callback from a library parser: its ValueError is click's BadParameter."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        try:
            return None if value is None else parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc

    return callback


def listen(port: int) -> list[Callable]:
    """Where a command that serves (the sandbox, the web page) listens."""
    return options(
        {"--host": "Address to listen on.", "--port": "Port (0 = any free port)."},
        host={"default": "127.0.0.1"},
        port={"default": port, "type": click.IntRange(0, 65535)},
    )


def _list(env: Env, kind: str, fmt: str | None, opts: dict) -> ExitStatus:
    from batch_attend.session import list_directory

    env.stdout.write(list_directory(RunOptions.build(**opts), kind, fmt, env))
    return ExitStatus.SUCCESS


def _until_stopped(env: Env, serve: Callable, hello: str, stopped: str, **values) -> ExitStatus:
    """Serve until Ctrl-C, saying ``hello`` (with the ``url`` and ``values``), then ``stopped``."""
    try:
        serve(lambda url: print(hello.format(url=url, **values), file=env.stdout, flush=True))
    except KeyboardInterrupt:
        env.log("batch-attend: " + stopped)
    return ExitStatus.SUCCESS


FILE = {"type": click.Path(path_type=Path, dir_okay=False)}
EXISTING = click.Path(path_type=Path, dir_okay=False, exists=True)
SECONDS = {"type": click.FloatRange(0)}
LANGUAGES = click.Choice(["en", "pt_BR", "pt"])
DISTRIBUTIONS = click.Choice(["round-robin", "balanced"])
COUNTRY_CODE = _parsed(settings.country_code)
DELIMITER = _parsed(settings.delimiter)
PATH = click.Path(path_type=Path)
INPUT = click.argument("input_file", metavar="INPUT", type=PATH)
RESULTS = click.argument("results", metavar="RESULTS", type=EXISTING)
DEFAULTS = RunOptions()

COMMON = options(
    {
        "--config FILE": f"Options file (default: ./{settings.CONFIG_FILE}); the command line wins.",
        "--lang": "Language of messages (default: from LC_ALL/LANG; pt_BR: Portuguese).",
        "--traceback": "Show the full traceback of an unexpected error.",
    },
    config={"type": EXISTING, "is_eager": True, "expose_value": False, "callback": _load_config},
    lang={"type": LANGUAGES, "expose_value": False},  # read by Main.parse_args
)

REQUESTS = options(
    {
        "--token TOKEN": "PlugChat API token, sent as the Authorization header exactly as given. "
        f"Prefer {settings.TOKEN_ENV} or --token-file: command lines are visible to other users.",
        "--token-file PATH": "Read the token from this file (surrounding white space is ignored).",
        "--ticket TICKET": f"The operator list's Ticket header, for names (env {settings.TICKET_ENV}).",
        "--account-id ID": f"The account's ID, to ask who is online (env {settings.ACCOUNT_ENV}).",
        "--base-url URL": f"API base URL (env {settings.BASE_URL_ENV}). Default: {DEFAULT_BASE_URL}",
        "--timeout SECONDS": "Seconds each request may take, from connecting to the whole answer.",
        "--sandbox": "Talk to a built-in PlugChat stand-in on 127.0.0.1 (no token, no internet).",
    },
    token_file=FILE,
    ticket={"envvar": settings.TICKET_ENV},
    account_id={"envvar": settings.ACCOUNT_ENV},
    base_url={"envvar": settings.BASE_URL_ENV},
    timeout={"default": DEFAULTS.sending.timeout, "type": click.FloatRange(0.1, 600)},
)

LEADS = options(
    {
        "--operator ID": "Operator (ID or name) for rows with an empty operators cell (repeatable).",
        "--department ID": "Department (ID or name) for rows with an empty department cell.",
        "--pool A,B,C": "Spread rows without operators over these operators (IDs or names).",
        "--pool-file PATH": "Pool members from a file, one per line (# starts a comment).",
        "--distribute": "How the pool is used: in turn, or to whoever has the fewest rows.",
        "--no-lookup": "Send operator and department cells as they are, without resolving names.",
        "--online-only": "Give rows only to operators online now (needs --account-id).",
        "--verify-whatsapp": "Ask PlugChat whether each phone has WhatsApp before its start.",
        "--no-status-check": "Do not ask whether the account's WhatsApp number is connected.",
        "--country-code DIGITS": "Added to 10-11 digit national numbers such as (44) 99999-9999.",
        "--phone-column NAME": "Column holding the phone (default: found by name).",
        "--operators-column NAME": "Column holding operators.",
        "--ignore-column NAME": "Pass this column over when finding columns (repeatable).",
        "--department-column NAME": "Column holding the department.",
        "--header-row N": "The header's row number, as the spreadsheet shows it (default: found).",
        "--ddd-column NAME": "Column holding the area code (DDD) for phones written without it.",
        "--sheet NAME|N": "Workbook sheet, by name or number (default: the one with the leads).",
        "--encoding NAME": "CSV encoding, e.g. cp1252 (default: detected).",
        "--delimiter CHAR": "CSV delimiter (default: detected among , ; tab |).",
        "--journal PATH": "The ledger of what was sent and answered (default: beside the results).",
    },
    operator={"multiple": True, "name": "operators"},
    pool_file=FILE,
    journal=FILE,
    distribute={"type": DISTRIBUTIONS, "default": DEFAULTS.requests.distribute},
    country_code={"default": DEFAULTS.requests.country_code, "callback": COUNTRY_CODE},
    ignore_column={"multiple": True, "name": "ignore_columns"},
    header_row={"type": click.IntRange(1, 1_048_576)},
    delimiter={"callback": DELIMITER},
)
JOURNAL = LEADS[-1]  # --journal, undo's too

OUTPUT, *SENDING = options(
    {
        "-o, --output PATH": "Results file: .csv or .xlsx by extension, '-' for CSV on stdout. "
        "Default: INPUT's name + '.results' beside it; required when INPUT is '-' (stdin).",
        "-c, --concurrency": "Requests in flight at once.",
        "--retries": "Retries per request after a time-out, a dropped connection, 5xx or 429.",
        "--backoff SECONDS": "First retry's longest random wait, doubling each retry (cap 30 s).",
        "--rate N": "At most N requests per second for the whole run.",
        "--fresh": "Forget what the journal holds and send every row again.",
        "--dry-run": "Validate and write the results; send and ask nothing (no token needed).",
        "--summary-json PATH": "Counts, timings, paths and the exit code as JSON (for schedulers).",
        "--log-file PATH": "Append one JSON line per request (masked phone, status, latency...).",
        "-v, --verbose": "One line on stderr per request and answer.",
        "-q, --quiet": "No progress bar and no summary line.",
        "--no-bom": "Write CSV results without the UTF-8 BOM that Excel needs for accents.",
        "--results-lang": "Language of the results' sentences and Summary sheet (default: en).",
        "--output-delimiter CHAR": "CSV results' delimiter (default: the CSV input's; from a "
        "workbook, ; when messages are in Portuguese, as Excel in Brazil expects, else ,).",
    },
    concurrency={"default": DEFAULTS.sending.concurrency, "type": click.IntRange(1, 256)},
    retries={"default": DEFAULTS.sending.retries, "type": click.IntRange(0, 20)},
    backoff={"default": DEFAULTS.sending.backoff, **SECONDS},
    rate={"type": click.FloatRange(0, min_open=True)},
    summary_json=FILE,
    log_file=FILE,
    results_lang={"type": LANGUAGES},
    output_delimiter={"callback": DELIMITER},
)
PACING = SENDING[:4]  # -c, --retries, --backoff, --rate: every command that sends

#: Options of one command (or two).
CHECKED, FORCE, FORMAT, ONLINE, DATA_DIR, KEEP_DAYS = options(
    {
        "-o, --output PATH": "The results a run would write: what their journal holds counts as done.",
        "--force": "Overwrite OUTPUT if it exists.",
        "--format": "Output format (default: a table on a terminal, CSV otherwise).",
        "--online": "Who is online now, and who is not (needs --account-id instead of the ticket).",
        "--data-dir": "Where uploads, results and journals are kept (yours only).",
        "--keep-days N": "Delete the runs (uploads and results) made more than N days ago.",
    },
    format={"type": click.Choice(["table", "csv", "json"]), "name": "fmt"},
    data_dir={"type": click.Path(path_type=Path, file_okay=False), "default": "batch-attend-data"},
    keep_days={"type": click.FloatRange(0, min_open=True)},
)

UNDO = options(
    {
        "--last-run": "Only what the newest run that started attendances started.",
        "--operator ID": "Only the attendances sent to this operator (repeat for several).",
        "--department ID": "Only those sent to this department (repeat for several).",
        "--rows SPEC": "Only these rows of RESULTS, by its row column: 2,5-9.",
        "--auto-transfer/--no-auto-transfer": "Move each chat to the general department once ended.",
        "--yes": "Finish them without asking (for scripts).",
        "--dry-run": "List the rows whose attendances would be finished; send nothing.",
    },
    operator={"multiple": True, "name": "operators"},
    department={"multiple": True, "name": "departments"},
    rows={"callback": _parsed(settings.rows)},
    auto_transfer={"default": True, "is_flag": True},
)

FAULTS = options(
    {
        "--token": "The token the sandbox accepts.",
        "--latency SECONDS": "Delay before every answer.",
        "--jitter SECONDS": "Random extra delay, up to this much.",
        "--rate-limit N": "Refuse a request closer than 1/N s to the last, as nginx's limit_req.",
        "--burst B": "With --rate-limit: let B more through at once (nginx's burst=B nodelay).",
        "--limit-status": "What --rate-limit answers.",
        "--retry-after": "A Retry-After of a second with each refusal, in seconds or as a date.",
        "--revoke-after N": "Refuse the token (401) after N starts.",
        "--disconnected": "Start with the WhatsApp number disconnected (status false, starts 503).",
        "--disconnect-after N": "Disconnect the WhatsApp number after N starts.",
        "--fault PHONE=KIND[:TIMES]": f"Misbehave for one phone: {', '.join(settings.SANDBOX_FAULTS)}.",
        "--slow-seconds": "How long a 'slow' fault waits.",
    },
    token={"default": settings.SANDBOX_TOKEN},
    latency={"default": 0.0, **SECONDS},
    jitter={"default": 0.0, **SECONDS},
    rate_limit={"type": click.FloatRange(0, min_open=True)},
    burst={"type": click.IntRange(0), "default": 0},
    limit_status={"type": click.Choice(["503", "429"]), "default": "503"},
    retry_after={
        "type": click.Choice(["seconds", "date", "none"]),
        "default": settings.SANDBOX_RETRY_AFTER,
    },
    revoke_after={"type": click.IntRange(0)},
    disconnect_after={"type": click.IntRange(0)},
    fault={"multiple": True, "name": "faults"},
    slow_seconds={"default": settings.SANDBOX_SLOW_SECONDS, **SECONDS},
)


@command(DEFAULT, INPUT, OUTPUT, *REQUESTS, *LEADS, *SENDING)
def run(env: Env, input_file: Path, **opts) -> ExitStatus:
    """Start an attendance for every row of INPUT (.csv, .xlsx, .xls, .ods) and write the results.

    Columns are found by name, in Portuguese or English; every other column is kept. A results
    file may be given back as INPUT: rows it shows done are not sent again.

    \b
    Examples:
      export PLUGCHAT_TOKEN=...        # never echoed anywhere
      batch-attend leads.xlsx -o results.csv --pool "Ana Souza,Bruno Lima"
      batch-attend samples/leads.xlsx -o results.xlsx --sandbox"""
    from batch_attend.run import run_batch

    return run_batch(RunOptions.build(input=input_file, **opts), env).exit_status


@command("check", INPUT, CHECKED, *REQUESTS, *LEADS)
def check(env: Env, input_file: Path, **opts) -> ExitStatus:
    """Check the token, the account and INPUT without starting any attendance. Exit 0 all
    ready; 1 some rows invalid; 2 usage or input error; 3 the token refused.

    Example: batch-attend check leads.xlsx --ticket 0000"""
    from batch_attend.plan import check_lines, check_plan

    plan = check_plan(RunOptions.build(input=input_file, **opts), env)
    env.stdout.write("".join(f"{line}\n" for line in check_lines(plan)))
    return plan.exit_status()


@command("operators", *REQUESTS, FORMAT, ONLINE)
def operators(env: Env, fmt: str | None, online: bool, **opts) -> ExitStatus:
    """List the account's operators (needs the ticket), to fill a sheet with correct names or IDs.

    Example: batch-attend operators --ticket 0000 --format csv > operadores.csv"""
    return _list(env, "online" if online else "operators", fmt, opts)


@command("departments", *REQUESTS, FORMAT)
def departments(env: Env, fmt: str | None, **opts) -> ExitStatus:
    """List the account's departments (ID, name, active)."""
    return _list(env, "departments", fmt, opts)


@command("template", click.argument("output", metavar="OUTPUT", type=PATH), FORCE, *REQUESTS)
def template(env: Env, output: Path, force: bool, **opts) -> ExitStatus:
    """Write a leads workbook (.xlsx) to fill in, with drop-downs of the account's operators
    (needs the ticket) and departments.

    Example: batch-attend template leads.xlsx --ticket 0000"""
    from batch_attend.template import write_template

    env.log("batch-attend: " + write_template(output, RunOptions.build(**opts), env, force=force))
    return ExitStatus.SUCCESS


@command("undo", RESULTS, JOURNAL, *UNDO, *REQUESTS, *PACING)
def undo(env: Env, results: Path, yes: bool, **opts) -> ExitStatus:
    """Finish in PlugChat the attendances batch-attend started for the rows of RESULTS, as the
    first operator each was sent to, so that a later run starts them anew; never one found already
    in service (conversations begun in them close too). It says how many and asks first. Exit 0
    all finished; 1 some not; 2 usage error or the answer no; 3 the token refused.

    Example: batch-attend undo results.csv --last-run --operator OP-ANA"""
    from batch_attend.undo import Narrowing, undo_results

    def confirm() -> bool:  # on a terminal; --yes answers for scripts
        if not (yes or env.stdin.isatty()):
            raise BatchAttendError(_("there is no terminal to ask on: add --yes to finish them."))
        try:
            return yes or click.confirm(_("Finish them?"), err=True)
        except click.Abort:  # Ctrl-C or the end of the input at the question
            raise KeyboardInterrupt from None

    narrowing = Narrowing(**{f.name: opts.pop(f.name) for f in dataclasses.fields(Narrowing)})
    options = RunOptions.build(input=results, output=str(results), **opts)
    return undo_results(options, narrowing, env, confirm=confirm).exit_status


@command("sandbox", *listen(8080), *FAULTS)
def sandbox(env: Env, host: str, port: int, disconnected, faults, **given) -> ExitStatus:
    """Serve a local PlugChat stand-in for rehearsals (Ctrl-C stops it).

    \b
    Example:
      batch-attend sandbox --port 8080 --latency 0.2 --fault 5544999999999=act-drop"""
    from batch_attend.sandbox import SandboxState, parse_faults, serve

    given["limit_status"] = int(given["limit_status"])
    state = SandboxState(
        connected=not disconnected, faults=parse_faults(faults), keep_log=False, **given
    )

    hello = _("PlugChat sandbox listening on {url}") + "\n"
    hello += _("Send 'Authorization: {token}'. Ctrl-C stops it.")
    serving = functools.partial(serve, state, host, port)
    return _until_stopped(env, serving, hello, _("sandbox stopped."), token=state.token)


@command("serve", *listen(8000), DATA_DIR, KEEP_DAYS, *REQUESTS)
def serve(
    env: Env, host: str, port: int, data_dir: Path, keep_days: float | None, **opts
) -> ExitStatus:
    """Serve the whole job on a web page: upload, preview, start, progress, results, history.

    \b
    Example:
      export PLUGCHAT_TOKEN=...     # stays on the server, never sent to the browser
      batch-attend serve --sandbox  # then open the address it prints"""
    from batch_attend.web.app import serve

    serving = functools.partial(
        serve, host, port, data_dir, opts, env.environ, warn=env.log, keep_days=keep_days
    )
    hello = _("batch-attend serving on {url} (Ctrl-C stops it)")
    return _until_stopped(env, serving, hello, _("server stopped."))


def main() -> None:
    cli(prog_name="batch-attend")
