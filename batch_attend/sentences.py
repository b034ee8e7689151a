"""The sentences of the results' ``error`` column, each written once, here, in English. A row's
reason is kept (in the ledger, the plan) as a key and its values (``WRONG_LENGTH {"cell": "1"}``)
and rendered where it is shown, in the reader's language, numbers as the reader writes them."""

from __future__ import annotations

import json
import re
import string
from typing import TYPE_CHECKING

from batch_attend import i18n
from batch_attend.i18n import N_

if TYPE_CHECKING:  # pandas is imported by the code that has columns to fill
    import pandas as pd

# leads: the phone cell
NOT_A_PHONE = N_("'{cell}' is not a phone number")
LOST_DIGITS = N_(
    "'{cell}' is a number in scientific notation that lost digits; format the phone column as "
    "Text in the spreadsheet and type the numbers again"
)
DECIMAL_NUMBER = N_(
    "'{cell}' is a decimal number, not a phone; format the phone column as Text in the "
    "spreadsheet and type the numbers again"
)
EMPTY_PHONE = N_("the phone cell is empty")
NOT_PART_OF_A_PHONE = N_("'{cell}' has '{char}', which is not part of a phone number")
WRONG_LENGTH = N_(
    "'{cell}' has {count} digits; a phone needs {least} to {most} (country code, area code, number)"
)
WRONG_LENGTH_AFTER_00 = N_(
    "'{cell}' has {count} digits after 00; a phone needs {least} to {most} (country code, area "
    "code, number)"
)
WRONG_LENGTH_NO_DDD = N_(
    "'{cell}' has {count} digits; a phone needs {least} to {most} (country code, area code, "
    "number); add the area code (DDD) in front, or a DDD column"
)
WRONG_LENGTH_BAD_DDD = N_(
    "'{cell}' has {count} digits; a phone needs {least} to {most} (country code, area code, "
    "number); the DDD cell ('{column}' column) is empty or not an area code"
)
UNKNOWN_DDD = N_("'{cell}': {ddd} is not a Brazilian area code (DDD)")
NO_SUCH_NUMBER = N_(
    "'{cell}' is not a Brazilian number: after the area code come 8 digits not starting with 0 "
    "or 1, or 9 starting with 9"
)
BRAZILIAN_LENGTH = N_(
    "'{cell}' has {count} digits after the country code 55; a Brazilian number has 10 or 11 "
    "(area code and number)"
)
AFTER_TRUNK = N_(
    "'{cell}' starts with 0, as dialled within Brazil, but the area code and number (10 or 11 "
    "digits) do not follow, nor a carrier code ({carriers}) and those"
)
NO_PLUS = N_(
    "'{cell}' has {count} digits, more than a Brazilian number; write a number from abroad with "
    "+ or 00 and its country code"
)
ZERO_COUNTRY_CODE = N_("'{cell}': a country code follows + or 00, and none starts with 0")
# leads: the operators cell
NO_OPERATORS = N_("the operators cell is empty and no --operator default was given")
NO_OPERATORS_COLUMN = N_(
    "no operators column (columns: {columns}); name one with --operators-column, or give --operator"
)
TOO_MANY_OPERATORS = N_("the operators cell names more than {limit} operators")
# the account's lists
NAME_WITHOUT_TICKET = N_(
    "'{value}' looks like a name or login, and those can be looked up only with a ticket "
    "(--ticket or PLUGCHAT_TICKET); write the operator ID, or add --no-lookup to send the cell "
    "as it is"
)
UNKNOWN_OPERATOR = N_(
    "no operator '{value}' in this account (by ID, login, name or e-mail); "
    "`batch-attend operators` lists them"
)
AMBIGUOUS_OPERATOR = N_("'{value}' matches {count} operators: {names}; write the ID instead")
INACTIVE_OPERATOR = N_("operator {operator} is inactive")
UNKNOWN_DEPARTMENT = N_(
    "no department '{value}' in this account; `batch-attend departments` lists them"
)
AMBIGUOUS_DEPARTMENT = N_("'{value}' matches {names}; write the ID instead")
INACTIVE_DEPARTMENT = N_("department {department} is inactive")
# planning
SAME_PHONE = N_("same phone as row {row}")
NOT_A_LEAD = N_("no phone in this row below the last lead: a totals or notes row, not a lead")
SAME_MOBILE = N_(
    "same WhatsApp number as row {row}: {other} there, {phone} here, one mobile with and "
    "without the ninth digit"
)
OPERATORS_OFFLINE = N_("none of the row's operators is online now; a later run sends it")
DRY_RUN = N_("validated, not sent")
NOT_RESENT = N_(
    "{done}, asked for {before}; this run asks for {now}, which was not sent: PlugChat keeps "
    "one attendance per chat (move it there if it should change hands)"
)
NOT_RESENT_IN = N_(
    "{done}, asked for {before}; this run asks for {now} in {department}, which was not sent: "
    "PlugChat keeps one attendance per chat (move it there if it should change hands)"
)
DONE_AT = N_("{done} at {when}")
STARTED_BEFORE = N_("started by an earlier run")
IN_SERVICE_BEFORE = N_("found already in service by an earlier run")
# WhatsApp
OTHER_FORM_SENT = N_(
    "sent as {other}: PlugChat has WhatsApp for that form of the number, not for {phone} as written"
)
NO_WHATSAPP = N_("PlugChat says {phone} has no WhatsApp; not sent")
NO_WHATSAPP_EITHER = N_(
    "PlugChat says {phone} has no WhatsApp (nor {other}, its other form); not sent"
)
PHONE_CHECK_FAILED = N_("could not ask PlugChat whether {phone} has WhatsApp; run again to retry")
# answers
BAD_REQUEST = N_("the API rejected the request as malformed")
TOKEN_REFUSED = N_("the API refused the token")
FORBIDDEN = N_("the token may not start attendances")
NOT_FOUND = N_("no start-attendance endpoint at this address; check --base-url")
METHOD_NOT_ALLOWED = N_("the API did not accept POST at this address")
UNSUPPORTED_MEDIA_TYPE = N_("the API did not accept the JSON content type")
UNPROCESSABLE = N_("the API could not process the request")
SLOW_DOWN = N_("the API asked to slow down (too many requests)")
BAD_REQUEST_ANSWER = N_("the API rejected the request as malformed (HTTP {status}: {snippet})")
UNPROCESSABLE_ANSWER = N_("the API could not process the request (HTTP {status}: {snippet})")
REDIRECTED = N_("the API redirected; check --base-url (redirects are not followed for POST)")
REDIRECTED_TO = N_(
    "the API redirected to {location}; check --base-url (redirects are not followed for POST)"
)
SERVER_ERROR = N_("the API answered HTTP {status} with an error")
SERVER_ERROR_PAGE = N_("the API answered HTTP {status} with an HTML error page")
OTHER_STATUS = N_("the API answered HTTP {status}")
OTHER_STATUS_WITH = N_("the API answered HTTP {status}: {snippet}")
EMPTY_BODY = N_("the API answered with an empty body")
HTML_PAGE = N_("the API answered with an HTML page instead of JSON (a proxy or login page?)")
NOT_JSON = N_("the API answered with something that is not JSON: {snippet}")
ANSWERED_FALSE = N_("the API answered false: nothing was started")
UNKNOWN_SHAPE = N_("the API answered with JSON of an unknown shape: {snippet}")
CONNECT_TIMEOUT = N_("could not connect to the API within {seconds} s")
ANSWER_TIMEOUT = N_("no answer from the API within {seconds} s")
CANNOT_CONNECT = N_("could not connect to the API ({reason})")
NOT_HTTP = N_("the answer was not valid HTTP ({reason})")
CONNECTION_CLOSED = N_("the connection closed before an answer came ({reason})")
REQUEST_FAILED = N_("the request failed ({reason})")
TOO_LARGE = N_("the API answered with more than {size} KiB; it was not read")
COMPRESSED = N_("the API answered compressed as '{encoding}', which was not asked")
NOT_INFLATED = N_("the API's {encoding} answer could not be inflated ({reason})")
# batch-attend undo
FINISHED = N_(
    "the attendance batch-attend started was finished (as operator {operator}); a later run "
    "starts it anew"
)
FINISHED_MOVED = N_(
    "the attendance batch-attend started was finished (as operator {operator}) and the chat "
    "moved to the general department; a later run starts it anew"
)
NOTHING_TO_FINISH = N_(
    "PlugChat found no attendance open in this chat: nothing was left to finish; a later run "
    "starts it anew"
)
# how a run stopped
RETRY_TOO_LATE = N_(
    "the API answered HTTP {status} and asked to be called again in {seconds} s (at {when}), "
    "longer than batch-attend waits; run the same command again then"
)
CONFIRMED_ON_RETRY = N_(
    "an earlier request for this lead got no clear answer; this answer shows the attendance it "
    "started, with the operators it carried"
)
CONFIRMED_ON_RETRY_NUMBER = N_(
    "an earlier request for this lead got no clear answer; this answer shows the attendance it "
    "started, with the operators it carried (number {number})"
)
NOT_SENT_RETRY_AT = N_(
    "not sent: the API asked to be called again at {when}; run the same command again then"
)
NOT_FINISHED = N_(
    "not finished: the run was interrupted ({signal}); run the same command again to resume"
)
WHATSAPP_DROPPED = N_(
    "not sent: the account's WhatsApp number disconnected during the run; reconnect it and run "
    "the same command again"
)
JOURNAL_FAILED = N_(
    "not finished: the journal could not be written; run the same command again once it can"
)
TOKEN_REFUSED_EARLIER = N_("not sent: the API refused the token earlier in the run")


#: The web page's words for the sentences that tell a command-line user what to type: what to
#: do on the page instead (the same values; files keep the sentences above).
PAGE = {
    "NO_OPERATORS": N_(
        "the operators cell is empty; choose an operator pool above, or write the operator in "
        "the cell"
    ),
    "NO_OPERATORS_COLUMN": N_("no operators column; choose one above, or an operator pool"),
    "NAME_WITHOUT_TICKET": N_(
        "'{value}' looks like a name or login, which this server cannot look up (it has no "
        "PlugChat ticket); write the operator's ID instead"
    ),
    "UNKNOWN_OPERATOR": N_(
        "no operator '{value}' in this account; choose which operator it is in the table above, "
        "or correct the cell"
    ),
    "UNKNOWN_DEPARTMENT": N_(
        "no department '{value}' in this account; choose which department it is in the table "
        "above, or correct the cell"
    ),
    "NOT_FOUND": N_("no start-attendance endpoint at the PlugChat address this server uses"),
    "REDIRECTED": N_("the API redirected; the PlugChat address this server uses needs checking"),
    "REDIRECTED_TO": N_(
        "the API redirected to {location}; the PlugChat address this server uses needs checking"
    ),
    "PHONE_CHECK_FAILED": N_(
        "could not ask PlugChat whether {phone} has WhatsApp; Resume asks again"
    ),
    "RETRY_TOO_LATE": N_(
        "the API answered HTTP {status} and asked to be called again in {seconds} s (at {when}); "
        "Resume then"
    ),
    "NOT_SENT_RETRY_AT": N_("not sent: the API asked to be called again at {when}; Resume then"),
    "NOT_FINISHED": N_("not sent: the run was cancelled; Resume sends it"),
    "WHATSAPP_DROPPED": N_(
        "not sent: the account's WhatsApp number disconnected during the run; reconnect it, "
        "then Resume"
    ),
    "JOURNAL_FAILED": N_("not finished: the server could not write its records; Resume later"),
}


def label(code: str) -> str:
    """An error code in a person's words (``invalid_phone``: "Invalid phone"), translated."""
    words = code.replace("_", " ").replace("whatsapp", "WhatsApp")
    return i18n._(words[:1].upper() + words[1:])


class Template(str):
    """A sentence by its name (this string); :meth:`format` adds its values, as kept."""

    text: str
    fields: frozenset[str]

    def __new__(cls, name: str, text: str) -> Template:
        made = super().__new__(cls, name)
        made.text = text
        made.fields = frozenset(f for _l, f, _s, _c in string.Formatter().parse(text) if f)
        return made

    def format(self, **values) -> str:
        kept = {name: value for name, value in values.items() if name in self.fields}
        return f"{self} {json.dumps(kept, ensure_ascii=False)}" if kept else str(self)


#: Every template above, by name (the upper-case names of this module).
TEMPLATES = {
    name: Template(name, text)
    for name, text in dict(globals()).items()
    if name.isupper() and isinstance(text, str)
}
globals().update(TEMPLATES)
#: Fields holding a sentence (rendered too), a quantity and a moment (written as the reader
#: writes numbers and dates); the others (a cell, a row, an HTTP status) are shown as they are.
SENTENCE_FIELDS = frozenset({"done"})
NUMBER_FIELDS = frozenset({"count", "size", "limit", "seconds"})
MOMENT_FIELDS = frozenset({"when"})
_KEPT = re.compile(r"([A-Z][A-Z0-9_]*)(?: (\{.*\}))?", re.DOTALL)


def _quoted(values: pd.Series) -> pd.Series:
    """Text cells as JSON strings, a column at a time (no control character but tab, CR and LF
    can be in a cell: the reader refuses the others)."""
    escaped = values.astype(str)
    for char, code in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        escaped = escaped.str.replace(char, code, regex=False)
    return '"' + escaped + '"'


def fill(template: Template, **values) -> pd.Series | str:
    """:meth:`Template.format`, a column at a time where values are Series."""
    import pandas as pd

    columns = {n: v for n, v in values.items() if isinstance(v, pd.Series) and n in template.fields}
    if not columns:
        return template.format(**values)
    out: pd.Series | str = f"{template} {{"
    for k, name in enumerate(sorted(template.fields & values.keys())):
        value = values[name]
        if name in columns:
            part = value.astype(str) if pd.api.types.is_numeric_dtype(value) else _quoted(value)
        else:
            part = json.dumps(value, ensure_ascii=False)
        out = out + ("" if k == 0 else ", ") + json.dumps(name) + ": " + part
    return out + "}"


def render(kept: str, page: bool = False) -> str:
    """A message as the ledger keeps it, in the current language (``page``: the web page's words);
    other text (an earlier version's sentence, a results file's cell) as it came."""
    found = _KEPT.fullmatch(kept) if kept else None
    template = TEMPLATES.get(found.group(1)) if found else None
    if template is None:
        return kept
    try:
        values = json.loads(found.group(2)) if found.group(2) else {}
        for name, value in values.items():
            if name in SENTENCE_FIELDS:
                values[name] = render(value)
            elif name in NUMBER_FIELDS and isinstance(value, int):
                values[name] = i18n.number(value)
            elif name in MOMENT_FIELDS:
                values[name] = i18n.moment(value)
        text = PAGE.get(str(template)) if page else None
        return i18n._(text or template.text).format(**values)
    except (ValueError, KeyError, IndexError, AttributeError):
        return kept


def render_all(kept: pd.Series, errors: bool = False) -> pd.Series:
    """:func:`render` over a column, once per distinct cell (``errors``: ``code: message``)."""
    import pandas as pd

    if kept.empty:
        return kept
    codes, distinct = pd.factorize(kept)
    said = []
    for cell in map(str, distinct):
        code, sep, message = cell.partition(": ") if errors else ("", "", cell)
        said.append(code + sep + render(message))
    return pd.Series(pd.array(said, dtype=object)[codes], index=kept.index, dtype=str)
