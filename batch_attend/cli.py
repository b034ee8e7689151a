"""The ``batch-attend`` command: options in, one library call, an exit code out.

Only this module imports click. Heavy libraries (pandas, aiohttp) are imported by the library when
a run needs them, so ``--help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from batch_attend import __version__
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError
from batch_attend.outcomes import ExitStatus

TOKEN_ENV = "PLUGCHAT_TOKEN"
BASE_URL_ENV = "PLUGCHAT_BASE_URL"


class DefaultCommandGroup(click.Group):
    """``batch-attend FILE ...`` runs the default command; ``batch-attend sandbox`` the other one.

    ``batch-attend --help`` shows the main command's options, then the other commands.
    """

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        command = self.commands[self.default_command]
        sub = click.Context(command, info_name=ctx.info_name, max_content_width=100)
        command.format_help(sub, formatter)
        with formatter.section("Other commands"):
            formatter.write_dl(
                [
                    (name, cmd.get_short_help_str(60))
                    for name, cmd in self.commands.items()
                    if name != self.default_command
                ]
                + [("--version", "Show the version and exit.")]
            )
        formatter.write_paragraph()
        formatter.write_text(
            "Exit codes: 0 every row started or already in service; 1 some rows invalid or "
            "failed; 2 usage or input error, nothing sent; 3 the API refused the token; "
            "130/143 interrupted."
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
        raise click.BadParameter(f"'{value}' is not a country code (1 to 3 digits, e.g. 55)")
    return digits


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(value.lower(), value)
    if len(value) != 1:
        raise click.BadParameter(
            f"'{value}' is not a single character (or tab/comma/semicolon/pipe)"
        )
    return value


@cli.command(name="run")
@click.argument("input_file", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Results file: .csv or .xlsx by extension, '-' for CSV on stdout. "
    "Default: INPUT's name + '.results' beside it.",
)
@click.option(
    "--token",
    metavar="TOKEN",
    help=f"PlugChat API token, sent as the Authorization header exactly as given. "
    f"Prefer the {TOKEN_ENV} environment variable: command lines are visible to other users.",
)
@click.option(
    "--base-url",
    metavar="URL",
    help=f"API base URL (env {BASE_URL_ENV}). Default: https://app.plugchat.com.br/api/integrations",
)
@click.option(
    "--operator",
    "operators",
    multiple=True,
    metavar="ID",
    help="Operator ID for rows whose operators cell is empty (repeat for several: "
    "--operator OP-1 --operator OP-2).",
)
@click.option(
    "--department", metavar="ID", help="Department ID for rows with an empty department cell."
)
@click.option(
    "--country-code",
    default="55",
    show_default=True,
    metavar="DIGITS",
    callback=_country_code,
    help="Added to 10-11 digit national numbers such as (44) 99999-9999.",
)
@click.option(
    "-c",
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Requests in flight at once.",
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 600),
    metavar="SECONDS",
    help="Time-out to connect and to read each answer.",
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
    "--phone-column", metavar="NAME", help="Column holding the phone (default: found by name)."
)
@click.option("--operators-column", metavar="NAME", help="Column holding operator IDs.")
@click.option("--department-column", metavar="NAME", help="Column holding the department ID.")
@click.option(
    "--sheet",
    metavar="NAME|N",
    help="Workbook sheet, by name or 1-based number (default: the first sheet with a phone column).",
)
@click.option("--encoding", metavar="NAME", help="CSV encoding, e.g. cp1252 (default: UTF-8).")
@click.option(
    "--delimiter",
    metavar="CHAR",
    callback=_delimiter,
    help="CSV delimiter (default: sniffed among , ; tab |).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and validate, write the results, send nothing (no token needed).",
)
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="Send every row, even when its phone already appeared in an earlier row.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Send to a built-in PlugChat stand-in on 127.0.0.1 (no token, no internet).",
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
@click.option("-v", "--verbose", is_flag=True, help="One line on stderr per request and answer.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option(
    "--no-bom",
    is_flag=True,
    help="Write CSV results without the UTF-8 BOM that Excel needs for accents.",
)
@click.option("--traceback", is_flag=True, help="Show the full traceback of an unexpected error.")
def run_command(input_file: Path, **opts) -> None:
    """Start an attendance for every row of INPUT (.csv, .xlsx, .xls, .ods) and write the results.

    \b
    Examples:
      export PLUGCHAT_TOKEN=...        # never echoed anywhere
      batch-attend leads.xlsx -o results.csv
      batch-attend leads.csv -o results.xlsx --operator OP-1 --department DEP-9 -c 16
      batch-attend samples/leads.xlsx -o results.xlsx --sandbox
      batch-attend leads.xlsx --dry-run -o check.csv

    \b
    Columns are found by name in Portuguese or English (telefone/phone/celular/whatsapp,
    operadores/operators, departamento/department/setor); every other column is kept.
    """
    env = Env()
    token = opts["token"] or env.environ.get(TOKEN_ENV) or None
    try:
        from batch_attend.outcomes import exit_status_for
        from batch_attend.runner import RunOptions, run_batch

        options = RunOptions(
            input=input_file,
            output=opts["output"],
            token=token,
            base_url=opts["base_url"] or env.environ.get(BASE_URL_ENV) or RunOptions.base_url,
            operators=tuple(o.strip() for o in opts["operators"] if o.strip()),
            department=opts["department"] or None,
            country_code=opts["country_code"],
            concurrency=opts["concurrency"],
            timeout=opts["timeout"],
            retries=opts["retries"],
            backoff=opts["backoff"],
            rate=opts["rate"],
            journal=opts["journal"],
            fresh=opts["fresh"],
            verbose=opts["verbose"],
            phone_column=opts["phone_column"],
            operators_column=opts["operators_column"],
            department_column=opts["department_column"],
            sheet=opts["sheet"],
            encoding=opts["encoding"],
            delimiter=opts["delimiter"],
            dry_run=opts["dry_run"],
            allow_duplicates=opts["allow_duplicates"],
            sandbox=opts["sandbox"],
            quiet=opts["quiet"],
            bom=not opts["no_bom"],
        )
        report = run_batch(options, env)
    except BatchAttendError as exc:
        env.log(f"batch-attend: error: {_redact(str(exc), token)}")
        sys.exit(ExitStatus.USAGE_OR_INPUT_ERROR)
    except KeyboardInterrupt:
        env.log("batch-attend: interrupted before any request was sent.")
        sys.exit(ExitStatus.INTERRUPTED)
    except Exception as exc:
        if opts["traceback"]:
            raise
        env.log(
            f"batch-attend: unexpected error: {type(exc).__name__}: {_redact(str(exc), token)}. "
            "The results file may be missing or incomplete; run again with --traceback for details."
        )
        sys.exit(ExitStatus.ROWS_NOT_DONE)
    summary = report.summary
    if summary.interrupted_by:
        unsent = summary.error_counts.get("interrupted", 0)
        resume = (
            f"Run the same command again to resume (progress is in {report.journal})."
            if report.journal
            else "Without a journal (results on stdout) a rerun sends every row again."
        )
        env.log(
            f"batch-attend: interrupted ({summary.interrupted_by}); {unsent:,} rows not finished "
            f"are marked skipped. {resume}"
        )
    elif summary.token_refused:
        skipped = summary.error_counts.get("unauthorized", 0)
        env.log(
            "batch-attend: the API refused the token (HTTP 401); sending stopped. "
            f"Check {TOKEN_ENV} (or --token). {skipped:,} rows are marked skipped: "
            "fix the token and run again."
        )
    sys.exit(exit_status_for(summary))


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
            raise click.BadParameter(f"{spec}: {exc}", param_hint="--fault") from exc
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
