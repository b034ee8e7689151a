"""Is the account's WhatsApp number connected (a start while it is not reaches no one), and does
each phone have WhatsApp (``--verify-whatsapp``; a Brazilian mobile without is asked again in its
other ninth-digit form, the only evidence on which a phone is ever changed)?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from batch_attend import sentences
from batch_attend.api import START_ANSWER_LIMIT, endpoint
from batch_attend.errors import BatchAttendError, TokenRefusedError
from batch_attend.i18n import N_, _
from batch_attend.outcomes import ErrorCode, ExitStatus, RowStatus

STATUS_PATH = "/api/whatsapp/status"
EXISTS_PATH = "/api/whatsapp/phone-exists/"
FIELDS = ("connected", "session", "smartphoneConnected")


class WhatsAppDisconnected(BatchAttendError):
    """The account's WhatsApp number is not connected: nothing is sent."""

    exit_status = ExitStatus.WHATSAPP_DISCONNECTED


class WhatsAppUnknown(BatchAttendError):
    """The status could not be read: a run does not send blind, unless told to."""


@dataclass(frozen=True)
class WhatsAppStatus:
    false: tuple[str, ...]  # which of the :data:`FIELDS` are false
    error: str = ""  # what the vendor's ``error`` said

    @property
    def ok(self) -> bool:
        return not self.false

    def problem(self) -> str:
        said = _(" (PlugChat says: {error})").format(error=self.error) if self.error else ""
        message = _("the account's WhatsApp number is not connected: {fields} false{said}")
        return message.format(fields=", ".join(self.false), said=said)


async def whatsapp_status(client) -> WhatsAppStatus:
    """The status; an answer that is not the status raises :class:`WhatsAppUnknown`."""
    answer = await client.get(STATUS_PATH, N_("asked the WhatsApp status"))
    data = answer.json()
    if not (isinstance(data, dict) and all(isinstance(data.get(f), bool) for f in FIELDS)):
        if answer.failure is None and answer.http_status == 200:
            reason = _("an answer that is not the status")
        else:
            reason = sentences.render(answer.why_unread())
        raise WhatsAppUnknown(
            _(
                "could not read the WhatsApp status at {url} ({reason}); add --no-status-check "
                "to send without it"
            ).format(url=endpoint(client.base_url, STATUS_PATH), reason=reason)
        )
    error = data.get("error")
    false = tuple(field for field in FIELDS if not data[field])
    return WhatsAppStatus(false, client.scrub(error) if isinstance(error, str) else "")


def other_form(phone: str) -> tuple[str, str] | None:
    """A Brazilian mobile in its other form (the ninth digit removed or added), with the note."""
    if not phone.startswith("55"):
        return None
    area, local = phone[2:4], phone[4:]
    if len(local) == 9 and local[0] == "9" and local[1] in "6789":
        return "55" + area + local[1:], ErrorCode.NINTH_DIGIT_REMOVED
    if len(local) == 8 and local[0] in "6789":
        return "55" + area + "9" + local, ErrorCode.NINTH_DIGIT_ADDED
    return None


async def ask_exists(client, phones) -> dict[str, bool | None]:
    """Whether each of ``phones`` has WhatsApp (None: no answer said), asked through the run's gate."""
    found: dict[str, bool | None] = {}
    pending = iter(phones)

    async def worker() -> None:
        for phone in pending:
            asking = N_("asked whether a phone has WhatsApp")
            answer = await client.get(EXISTS_PATH + phone, asking, limit=START_ANSWER_LIMIT)
            data = answer.json()  # [{"exists": true}], or the object alone
            item = data[0] if isinstance(data, list) and data else data
            exists = item.get("exists") if isinstance(item, dict) else None
            found[phone] = exists if isinstance(exists, bool) else None

    try:
        async with asyncio.TaskGroup() as group:  # one failing (a refused token) stops them all
            for _n in range(client.gate.concurrency):
                group.create_task(worker())
    except* TokenRefusedError as refused:  # the callers' error, not a group of them
        raise refused.exceptions[0] from None
    return found


async def verify_phones(client, plan, done, known: dict[str, bool]) -> tuple:
    """``--verify-whatsapp`` for the phones still to send but those ``done`` or ``known`` from an
    earlier run: the plan with the answers applied, and the answers asked now."""
    from batch_attend.leads import pending

    found: dict[str, bool | None] = dict(known)
    asked = [p for p in dict.fromkeys(plan["phone"][pending(plan)]) if p not in done | known.keys()]
    found.update(await ask_exists(client, asked))
    refused = [p for p in asked + [p for p in known if p not in done] if found.get(p) is False]
    others = [form for form, _note in filter(None, map(other_form, refused)) if form not in found]
    found.update(await ask_exists(client, others))
    return apply_exists(plan, found, done), {p: found[p] for p in asked + others}


def apply_exists(plan, found: dict[str, bool | None], done=frozenset()):
    """The plan with what PlugChat said of each phone still to send (but those ``done``): kept,
    replaced by its other form with a note, ``invalid`` (neither has WhatsApp) or ``failed``."""
    from batch_attend.columns import choose_text
    from batch_attend.leads import decide, pending

    live, phones = pending(plan), plan["phone"]
    moved, invalid, failed = {}, {}, {}  # by phone: (other form, note, message), or a message
    for phone in dict.fromkeys(phones[live]):
        if phone in done or phone not in found or found[phone]:
            continue
        alt, note = other_form(phone) or (None, None)
        if found[phone] is None or (alt and found.get(alt) is None):
            failed[phone] = sentences.PHONE_CHECK_FAILED.format(phone=phone)
        elif alt and found[alt]:
            moved[phone] = alt, note, sentences.OTHER_FORM_SENT.format(other=alt, phone=phone)
        else:
            sentence = sentences.NO_WHATSAPP_EITHER if alt else sentences.NO_WHATSAPP
            invalid[phone] = sentence.format(phone=phone, other=alt)
    for said, status, code in (
        (invalid, RowStatus.INVALID, ErrorCode.NO_WHATSAPP),
        (failed, RowStatus.FAILED, ErrorCode.PHONE_CHECK_FAILED),
    ):
        rows = live & phones.isin(said)
        plan = decide(plan, rows, status, code, phones[rows].map(said))
    rows = live & phones.isin(moved)
    if rows.any():  # still to send, with a note
        plan = plan.copy()
        for k, column in enumerate(("phone", "error_code", "error_message")):
            values = phones[rows].map(lambda phone, k=k: moved[phone][k]).reindex(plan.index)
            plan[column] = choose_text(rows, values, plan[column])
    return plan
