"""The sentences of the results' ``error`` column: each written once, here, in English.

A row's sentence is made and kept in English, the contract's language: the journal, a results
file given back as input and the scripts reading it all see the same words. Another language is
derived where the sentence is shown (``check``, ``--results-lang``): :func:`say` finds the
template below that made it and says it again, with the same values, in the translation. So a
sentence from a journal written months ago reads in Portuguese too. A sentence no template
explains is shown as it came.

Templates have plain ``{name}`` fields only (values arrive formatted), so that the values can be
read back out of a sentence.
"""

from __future__ import annotations

import functools
import re
import string
from typing import TYPE_CHECKING

from batch_attend import i18n
from batch_attend.i18n import N_, language

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

#: Every template above (the upper-case names of this module).
TEMPLATES = tuple(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str))
#: What a field may hold where it is not any text: so that the values read back out of a
#: sentence are the ones that went in, and a sentence of someone else's is not taken for ours.
FIELD_PATTERNS = {
    "status": r"[0-9]{3}",
    "count": r"[0-9,]+",
    "least": r"[0-9]+",
    "most": r"[0-9]+",
    "limit": r"[0-9,]+",
    "row": r"[0-9]+",
    "size": r"[0-9,]+",
    "seconds": r"[0-9.,]+",
    "char": r".",
    "when": r"\S+",
}
#: The fields that hold a sentence of this module, said again in the language too (it must be
#: one, or the whole is not taken for ours); the others hold a person's data, shown as it is.
SENTENCE_FIELDS = frozenset({"done"})
_DEPTH = 2  # STARTED_BEFORE in DONE_AT in NOT_RESENT
_FORMATTER = string.Formatter()


def _fields(template: str) -> list[tuple[str, str | None]]:
    return [(literal, field) for literal, field, _spec, _conv in _FORMATTER.parse(template)]


def fill(template: str, **values: pd.Series | str) -> pd.Series | str:
    """``template`` with its fields filled from Series (one sentence per row, a column at a
    time) or plain strings."""
    out: pd.Series | str = ""
    for literal, field in _fields(template):
        out = out + literal
        if field is not None:
            value = values[field]
            out = out + (value.astype(str) if hasattr(value, "astype") else str(value))
    return out


def _words(template: str, lang: str) -> str:
    """``template`` as ``lang`` words it."""
    return template if lang == "en" else i18n.translation(lang).gettext(template)


@functools.cache
def _exact(source: str, target: str) -> dict[str, str]:
    """The sentences without fields, from ``source`` to ``target``."""
    plain = (t for t in TEMPLATES if all(f is None for _lit, f in _fields(t)))
    return {_words(t, source): _words(t, target) for t in plain}


@functools.cache
def _patterns(lang: str) -> list[tuple[str, str, re.Pattern]]:
    """(longest literal, template, pattern) for every template with fields as ``lang`` words
    it; the one that says most in its own words first."""
    found = []
    for template in TEMPLATES:
        parts = _fields(_words(template, lang))
        if all(field is None for _literal, field in parts):
            continue
        regex = "".join(
            re.escape(literal)
            + ("" if field is None else f"(?P<{field}>{FIELD_PATTERNS.get(field, '.*?')})")
            for literal, field in parts
        )
        literals = [literal for literal, _field in parts]
        said = sum(map(len, literals))
        found.append((said, max(literals, key=len), template, re.compile(regex, re.DOTALL)))
    found.sort(key=lambda item: -item[0])
    return [item[1:] for item in found]


def _convert(sentence: str, source: str, target: str, depth: int = 0) -> str | None:
    """``sentence`` as ``source`` words it, in ``target``; None when no template made it."""
    exact = _exact(source, target).get(sentence)
    if exact is not None or depth > _DEPTH:
        return exact
    for literal, template, pattern in _patterns(source):
        match = pattern.fullmatch(sentence) if literal in sentence else None
        if match is None:
            continue
        values = match.groupdict()
        for field in SENTENCE_FIELDS & values.keys():
            values[field] = _convert(values[field], source, target, depth + 1)
        if None not in values.values():
            return _words(template, target).format(**values)
    return None


@functools.lru_cache(maxsize=65536)
def _converted(sentence: str, source: str, target: str) -> str:
    return _convert(sentence, source, target) or sentence


def say(sentence: str) -> str:
    """``sentence`` (English, as kept) in the current language; as it came when no template
    made it."""
    if language() == "en" or not sentence:
        return sentence
    return _converted(sentence, "en", language())


def unsay(sentence: str) -> str:
    """``sentence`` in English, as kept, when ``--results-lang`` wrote it in another language
    (a results file given back as input); as it came otherwise."""
    return _converted(sentence, "pt_BR", "en") if sentence else sentence


def say_error(cell: str) -> str:
    """An ``error`` cell (``code: sentence``) with its sentence in the current language."""
    code, sep, sentence = cell.partition(": ")
    return code + sep + say(sentence)


def say_all(sentences: pd.Series) -> pd.Series:
    """:func:`say` for a column, once per distinct sentence."""
    if language() == "en" or sentences.empty:
        return sentences
    import pandas as pd

    codes, distinct = pd.factorize(sentences)
    said = [say(str(sentence)) for sentence in distinct]
    return pd.Series(pd.array(said, dtype=object)[codes], index=sentences.index, dtype=str)
