"""Where requests go: the built-in sandbox or the configured API, with its token, ticket and
account ID; the one client every request of a command goes through; and the account's lists for
``batch-attend operators`` and ``departments``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import json
from dataclasses import dataclass

from batch_attend.api import PlugChatClient, check_token
from batch_attend.directory import DirectoryError, fetch_directory, fetch_online
from batch_attend.env import Env
from batch_attend.i18n import _
from batch_attend.settings import RunOptions, resolve_token


@dataclass(frozen=True)
class Session:
    """Where requests go, the credentials they carry, and the name the ledger knows the
    account by (``sandbox`` for the built-in one: its ledger is kept apart)."""

    base_url: str
    token: str | None
    ticket: str | None
    name: str
    account_id: str | None = None  # for who is online

    @property
    def sandbox(self) -> bool:
        return self.name == "sandbox"

    def client(self, options: RunOptions, concurrency: int | None = None) -> PlugChatClient:
        sending = options.sending
        return PlugChatClient(
            self.base_url,
            self.token,
            timeout=sending.timeout,
            concurrency=concurrency or sending.concurrency,
        )


@contextlib.contextmanager
def open_session(options: RunOptions, env: Env):
    """The built-in sandbox for the command (with its own token and ticket), or the API."""
    requests = options.requests
    if requests.sandbox:
        from batch_attend.sandbox import SANDBOX_ACCOUNT_ID, SANDBOX_TICKET, SandboxServer

        with SandboxServer() as server:
            yield Session(
                server.base_url, server.token, SANDBOX_TICKET, "sandbox", SANDBOX_ACCOUNT_ID
            )
    else:
        token = resolve_token(requests, env.environ)
        base_url = requests.base_url.rstrip("/")
        yield Session(base_url, token, requests.ticket, base_url, requests.account_id)


def run_async(coro):
    """Run ``coro`` on uvloop where it is installed (less CPU per request), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as loop_runner:
        return loop_runner.run(coro)


def list_directory(options: RunOptions, kind: str, env: Env | None = None) -> list:
    """What the account has: ``kind`` is ``operators``, ``departments`` or ``online`` (who is
    online now)."""

    async def fetch(session: Session):
        async with session.client(options) as client:
            if kind == "online":
                return await fetch_online(client, session.base_url, session.account_id)
            found = await fetch_directory(
                client,
                session.base_url,
                ticket=session.ticket,
                operators=kind == "operators",
                departments=kind == "departments",
            )
        return found.operators if kind == "operators" else found.departments

    with open_session(options, env or Env()) as session:
        check_token(session.token)
        if kind == "operators" and not session.ticket:
            raise DirectoryError(
                _("listing operators needs the Ticket header: set PLUGCHAT_TICKET or --ticket")
            )
        return run_async(fetch(session))


def _field(item, name: str):
    if name == "departments":
        return ";".join(item.departments)
    if name == "since":  # when the state last changed, as the journal shows moments
        if item.last_changed is None:
            return ""
        moment = dt.datetime.fromtimestamp(item.last_changed / 1000).astimezone()
        return moment.isoformat(timespec="seconds")
    return getattr(item, name)


def format_directory(items: list, kind: str, fmt: str) -> str:
    """``table`` for people, ``csv`` and ``json`` for scripts."""
    fields = {
        "operators": ["id", "name", "login", "email", "active", "departments"],
        "online": ["id", "name", "online", "since"],
    }.get(kind, ["id", "name", "active"])
    records = [{f: _field(i, f) for f in fields} for i in items]
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()
    rows = [[str(r[f]) for f in fields] for r in records]
    widths = [max([len(f), *(len(row[j]) for row in rows)]) for j, f in enumerate(fields)]
    lines = ["  ".join(f.ljust(w) for f, w in zip(fields, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines) + "\n"
