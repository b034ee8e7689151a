"""Where requests go (the built-in sandbox or the API, with its credentials), the one client
of a command, and what the account says before anything is sent."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field

import pandas as pd

from batch_attend.api import PlugChatClient, check_token
from batch_attend.directory import (
    Directory,
    DirectoryError,
    OnlineState,
    fetch_directory,
    fetch_online,
)
from batch_attend.env import Env
from batch_attend.errors import BatchAttendError, TokenRefusedError
from batch_attend.i18n import _
from batch_attend.retrying import RetryPolicy
from batch_attend.settings import RunOptions, resolve_token
from batch_attend.whatsapp import WhatsAppStatus, WhatsAppUnknown, whatsapp_status


@dataclass(frozen=True)
class Session:
    """Where requests go, their credentials, and the account's name in the ledger."""

    base_url: str
    token: str | None
    ticket: str | None
    name: str
    account_id: str | None = None  # for who is online

    def client(self, options: RunOptions) -> PlugChatClient:
        """The one client of a command: the run's gate and retry policy for every request."""
        sending = options.sending
        pacing = {name: getattr(sending, name) for name in ("timeout", "concurrency", "rate")}
        policy = RetryPolicy(sending.retries, sending.backoff)
        return PlugChatClient(self.base_url, self.token, policy=policy, **pacing)


@contextlib.contextmanager
def open_session(options: RunOptions, env: Env):
    """The built-in sandbox (with its own token and ticket), or the API."""
    requests = options.requests
    if requests.sandbox:
        from batch_attend.sandbox import SandboxServer

        with SandboxServer() as server:
            state = server.state
            yield Session(server.base_url, state.token, state.ticket, "sandbox", state.account_id)
    else:
        token = resolve_token(requests, env.environ)
        base_url = requests.base_url.rstrip("/")
        yield Session(base_url, token, requests.ticket, base_url, requests.account_id)


def run_async(coro):
    """Run ``coro`` on uvloop where it is installed (less CPU per request), else asyncio's loop."""
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as loop_runner:
        return loop_runner.run(coro)


@dataclass
class Access:
    """How a command may ask the account: ``lists``, its lists, WhatsApp and who is online (not a
    dry run); ``check``, the departments even when no row needs them, to test the token."""

    session: Session
    client: PlugChatClient
    lists: bool = True
    check: bool = False


@dataclass
class Account:
    """What the account answered. ``token``: accepted, refused, missing, unknown or not asked;
    ``errors``: why a question got no answer."""

    token: str = "unknown"
    directory: Directory = field(default_factory=Directory)
    whatsapp: WhatsAppStatus | None = None
    online: list[OnlineState] | None = None
    errors: dict[str, BatchAttendError] = field(default_factory=dict)
    ticket: bool = False

    async def ask(self, what: str, question) -> None:
        """Ask ``what``, keeping the answer or why there is none; nothing once refused."""
        if self.token == "refused":
            question.close()
            return
        try:
            found = await question
        except TokenRefusedError:
            self.token = "refused"
        except (DirectoryError, WhatsAppUnknown) as exc:
            self.errors[what] = exc
        else:
            self.token = "accepted"
            if what in ("departments", "operators"):  # a Directory with the one list asked
                setattr(self.directory, what, getattr(found, what))
            else:
                setattr(self, what, found)

    def lines(self) -> list[str]:
        """What ``check`` says of the account."""
        said = {
            "accepted": _("accepted"),
            "refused": _("refused by the API (HTTP 401)"),
            "missing": _("not given (set PLUGCHAT_TOKEN or --token)"),
            "not asked": _("not asked"),
        }
        token = said.get(self.token, _("could not ask"))
        if self.token == "unknown" and "departments" in self.errors:
            token += " " + _("(could not ask: {reason})").format(reason=self.errors["departments"])
        out = [_("Token: {token}").format(token=token)]
        if self.token != "accepted":
            return out
        failed = {k: _("could not ask ({reason})").format(reason=e) for k, e in self.errors.items()}
        if self.whatsapp is not None or "whatsapp" in failed:
            ok = self.whatsapp is not None and self.whatsapp.ok
            status = _("connected") if ok else failed.get("whatsapp") or self.whatsapp.problem()
            out.append(_("WhatsApp: {status}").format(status=status))
        for kind, title in (("departments", _("Departments")), ("operators", _("Operators"))):
            items = getattr(self.directory, kind)
            if items is not None:
                counts = {"count": len(items), "active": sum(item.active for item in items)}
                out.append(_("{title}: {count} ({active} active)").format(title=title, **counts))
            elif kind == "operators":
                note = failed.get(kind) or _(
                    "not checked: no ticket (--ticket or PLUGCHAT_TICKET); names cannot be resolved"
                )
                out.append(_("Operators: {note}").format(note=note))
        if self.online is not None:
            on = [o.label for o in self.online if o.online] or [_("none")]
            off = [o.label for o in self.online if not o.online] or [_("none")]
            states = _("Operators online now: {online}; offline: {offline}")
            out.append(states.format(online=", ".join(on), offline=", ".join(off)))
        elif "online" in failed:
            out.append(_("Operators online now: {note}").format(note=failed["online"]))
        return out


async def ask_account(options: RunOptions, access: Access) -> Account:
    """All but the departments, which are asked once the rows show they are needed."""
    session, client = access.session, access.client
    account = Account(ticket=bool(session.ticket))
    if options.requests.status_check:
        await account.ask("whatsapp", whatsapp_status(client))
    if session.ticket and options.requests.lookup:
        lists = fetch_directory(client, ticket=session.ticket, operators=True, departments=False)
        await account.ask("operators", lists)
    if options.requests.online_only or session.account_id:
        await account.ask("online", fetch_online(client, session.account_id))
    return account


def fetch_lists(options: RunOptions, env: Env, kind: str | None = None):
    """The account's ``kind`` list ("operators", "departments", "online"); without ``kind``,
    the departments, and the operators when there is a ticket (a :class:`Directory`)."""

    async def fetch(session: Session):
        async with session.client(options) as client:
            if kind == "online":
                return await fetch_online(client, session.account_id)
            found = await fetch_directory(
                client,
                ticket=session.ticket,
                operators=kind == "operators" or (kind is None and bool(session.ticket)),
                departments=kind != "operators",
            )
        return getattr(found, kind) if kind else found

    with open_session(options, env) as session:
        check_token(session.token)
        if kind == "operators" and not session.ticket:
            raise DirectoryError(
                _("listing operators needs the Ticket header: set PLUGCHAT_TICKET or --ticket")
            )
        return run_async(fetch(session))


def list_directory(options: RunOptions, kind: str, fmt: str | None, env: Env) -> str:
    """The account's operators, departments or who is online, as a table, CSV or JSON."""
    items = fetch_lists(options, env, kind)
    fields = {
        "operators": ["id", "name", "login", "email", "active", "departments"],
        "online": ["id", "name", "online", "since"],
    }.get(kind, ["id", "name", "active"])
    records = [{f: _field(i, f) for f in fields} for i in items]
    fmt = fmt or ("table" if env.stdout.isatty() else "csv")
    if fmt == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return pd.DataFrame(records, columns=fields).to_csv(index=False, lineterminator="\n")
    rows = [fields, *([str(r[f]) for f in fields] for r in records)]
    widths = [max(len(row[j]) for row in rows) for j in range(len(fields))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def _field(item, name: str):
    if name == "departments":
        return ";".join(item.departments)
    if name == "since":  # when the state last changed, as the journal shows moments
        if item.last_changed is None:
            return ""
        moment = dt.datetime.fromtimestamp(item.last_changed / 1000).astimezone()
        return moment.isoformat(timespec="seconds")
    return getattr(item, name)
