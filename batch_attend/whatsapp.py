"""The account's WhatsApp number: is it connected? A start while it is not opens chats that
reach no one (the vendor's notes: the service depends on that phone staying online).

``GET /api/whatsapp/status`` on the host of the base URL answers ``connected``, ``session`` and
``smartphoneConnected``, and an ``error`` that explains a false one. A run asks before its first
start, and again when answers fail in a row while sending.

And does each phone have WhatsApp? ``GET /api/whatsapp/phone-exists/PHONE`` says, for
``--verify-whatsapp``; a Brazilian mobile without is asked again in its other ninth-digit form,
the only evidence on which a phone is ever changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from batch_attend import sentences
from batch_attend.directory import TokenRefusedError
from batch_attend.errors import BatchAttendError
from batch_attend.i18n import _
from batch_attend.outcomes import ExitStatus

STATUS_PATH = "/api/whatsapp/status"
_FIELDS = (("connected", "connected"), ("session", "session"), ("smartphoneConnected", "phone"))


class WhatsAppDisconnected(BatchAttendError):
    """The account's WhatsApp number is not connected: nothing is sent."""

    exit_status = ExitStatus.WHATSAPP_DISCONNECTED


class WhatsAppUnknown(BatchAttendError):
    """The status could not be read: a run does not send blind, unless told to."""


@dataclass(frozen=True)
class WhatsAppStatus:
    connected: bool
    session: bool
    phone: bool  # the vendor's smartphoneConnected
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.connected and self.session and self.phone

    def problem(self) -> str:
        """Which field is false, and what the vendor's ``error`` said."""
        names = [vendor for vendor, ours in _FIELDS if not getattr(self, ours)]
        said = _(" (PlugChat says: {error})").format(error=self.error) if self.error else ""
        return _("the account's WhatsApp number is not connected: {fields} false{said}").format(
            fields=", ".join(names), said=said
        )


def status_url(base_url: str) -> str:
    """The status lives beside the integrations API, on the same host."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{STATUS_PATH}"


async def whatsapp_status(client, base_url: str) -> WhatsAppStatus:
    """Ask the status; a refused token raises :class:`TokenRefusedError`, an answer that is not
    the status :class:`WhatsAppUnknown`."""
    answer = await client.get(status_url(base_url))
    if answer.http_status == 401:
        raise TokenRefusedError(
            _("the API refused the token (HTTP 401) when asked the WhatsApp status")
        )
    data = answer.json()
    if not (isinstance(data, dict) and all(isinstance(data.get(f), bool) for f, _o in _FIELDS)):
        if answer.failure is None and answer.http_status == 200:
            reason = _("an answer that is not the status")
        else:
            reason = sentences.render(answer.why_unread())
        raise WhatsAppUnknown(
            _(
                "could not read the WhatsApp status at {url} ({reason}); add --no-status-check "
                "to send without it"
            ).format(url=status_url(base_url), reason=reason)
        )
    error = data.get("error")
    return WhatsAppStatus(
        data["connected"],
        data["session"],
        data["smartphoneConnected"],
        client.scrub(error) if isinstance(error, str) else "",
    )


# --- does a phone have WhatsApp? ----------------------------------------------------------

EXISTS_PATH = "/api/whatsapp/phone-exists/"
NINTH_DIGIT_ADDED = "ninth_digit_added"
NINTH_DIGIT_REMOVED = "ninth_digit_removed"


def other_form(phone: str) -> tuple[str, str] | None:
    """A Brazilian mobile in its other form, with the note that says how it differs: the ninth
    digit after the area code removed (``55 DD 9XXXX-XXXX``) or added (``55 DD XXXX-XXXX``
    starting 6 to 9, the form before the ninth digit); None for any other number."""
    if not phone.startswith("55"):
        return None
    area, local = phone[2:4], phone[4:]
    if len(local) == 9 and local[0] == "9" and local[1] in "6789":
        return "55" + area + local[1:], NINTH_DIGIT_REMOVED
    if len(local) == 8 and local[0] in "6789":
        return "55" + area + "9" + local, NINTH_DIGIT_ADDED
    return None


def exists_url(base_url: str, phone: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{EXISTS_PATH}{phone}"


def read_exists(answer) -> bool | None:
    """``[{"exists": true}]`` → True; None for any answer that does not say."""
    data = answer.json()
    if isinstance(data, dict):
        data = [data]
    if isinstance(data, list) and data and isinstance(data[0], dict):
        exists = data[0].get("exists")
        return exists if isinstance(exists, bool) else None
    return None


async def ask_exists(client, base_url: str, phones, gate, policy) -> dict[str, bool | None]:
    """Whether each of ``phones`` has WhatsApp (None: no answer said, retries spent), asked
    with the run's gate (concurrency, rate, pauses) and retry policy; a refused token raises
    :class:`TokenRefusedError`."""
    import asyncio

    from batch_attend.api import START_ANSWER_LIMIT

    found: dict[str, bool | None] = {}
    pending = iter(phones)

    async def worker() -> None:
        for phone in pending:
            url = exists_url(base_url, phone)
            answer = await client.get(url, limit=START_ANSWER_LIMIT, gate=gate, policy=policy)
            if answer.http_status == 401:
                raise TokenRefusedError(
                    _(
                        "the API refused the token (HTTP 401) when asked whether a phone "
                        "has WhatsApp"
                    )
                )
            found[phone] = read_exists(answer)

    try:
        async with asyncio.TaskGroup() as group:  # one failing (a refused token) stops them all
            for _n in range(gate.concurrency):
                group.create_task(worker())
    except* TokenRefusedError as refused:  # the callers' error, not a group of them
        raise refused.exceptions[0] from None
    return found


def phones_to_ask(plan, skip) -> list[str]:
    """The distinct phones of the rows still to send, but those in ``skip`` (done already, or
    answered by an earlier run)."""
    from batch_attend.leads import pending

    return [p for p in dict.fromkeys(plan["phone"][pending(plan)]) if p not in skip]


def other_forms_to_ask(phones, found: dict[str, bool | None]) -> list[str]:
    """The other forms of the ``phones`` PlugChat said have no WhatsApp, not asked yet."""
    forms = (other_form(p) for p in phones if found.get(p) is False)
    return [alt for alt, _note in filter(None, forms) if alt not in found]


def apply_exists(plan, found: dict[str, bool | None], done=frozenset()):
    """The plan with what PlugChat said of each phone still to send: kept when it has
    WhatsApp; replaced by its other form (with the note saying so) when only that one has;
    ``invalid`` (``no_whatsapp``) when neither; ``failed`` when no answer said. A phone is
    changed on this evidence only; a phone ``done`` already is left as it is."""
    import numpy as np
    import pandas as pd

    from batch_attend.leads import pending
    from batch_attend.outcomes import ErrorCode, RowStatus

    live = pending(plan).to_numpy(bool)
    verdicts = {}  # phone → (phone to send, status, code, message)
    for phone in dict.fromkeys(plan["phone"][live]):
        if phone in done or phone not in found:
            continue  # done already, or not asked
        alt = other_form(phone)
        exists, alt_exists = found.get(phone), found.get(alt[0]) if alt else False
        if exists:
            continue
        if exists is False and alt and alt_exists:
            message = sentences.OTHER_FORM_SENT.format(other=alt[0], phone=phone)
            verdicts[phone] = (alt[0], None, alt[1], message)
        elif exists is False and not alt_exists and (alt is None or alt_exists is False):
            message = (
                sentences.NO_WHATSAPP_EITHER.format(phone=phone, other=alt[0])
                if alt
                else sentences.NO_WHATSAPP.format(phone=phone)
            )
            verdicts[phone] = (phone, RowStatus.INVALID, ErrorCode.NO_WHATSAPP, message)
        else:
            message = sentences.PHONE_CHECK_FAILED.format(phone=phone)
            verdicts[phone] = (phone, RowStatus.FAILED, ErrorCode.PHONE_CHECK_FAILED, message)
    if not verdicts:
        return plan
    plan = plan.copy()
    rows = live & plan["phone"].isin(verdicts).to_numpy(bool)
    chosen = plan["phone"][rows].map(verdicts)
    for k, column in enumerate(("phone", "status", "error_code", "error_message")):
        values = [v[k] for v in chosen]
        if column == "status":
            plan.loc[rows, column] = np.array(values, dtype=object)
        else:
            plan[column] = plan[column].where(
                ~rows, pd.Series(values, index=plan.index[rows], dtype=str)
            )
    return plan
