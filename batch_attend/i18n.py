"""Messages for people in English or Portuguese (pt_BR), through gettext catalogs.

The language comes from ``--lang``, else from ``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` (the
first that is set). Results files never change: their column names and status codes stay
English so scripts do not depend on the locale.

Our catalog is also made the process's gettext domain, in the chosen language: click words its
own messages ("Usage:", its errors) through :func:`gettext.gettext`, so they come out in the
same language as ours.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "batch_attend"
LOCALE_DIR = Path(__file__).parent / "locale"

#: The language in use and its catalog, per thread and asyncio task: the web page serves
#: people in two languages at once, and a run in a thread keeps the language it started with.
_current: contextvars.ContextVar[tuple[str, gettext.NullTranslations]] = contextvars.ContextVar(
    "batch_attend_language", default=("en", gettext.NullTranslations())
)


def language_from(environ: Mapping[str, str]) -> str:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "pt_BR" if value.lower().startswith("pt") else "en"
    return "en"


def normal(lang: str) -> str:
    """``pt``, ``pt-BR``, ``pt_BR`` → ``pt_BR``; anything else → ``en``."""
    return "pt_BR" if lang.lower().startswith("pt") else "en"


@functools.cache
def translation(lang: str) -> gettext.NullTranslations:
    """The catalog of ``lang`` (``en``: none, the English as written)."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def set_language(lang: str | None, environ: Mapping[str, str]) -> str:
    """Choose the language of this process (a command line); returns the language in use."""
    chosen = normal(lang or language_from(environ))
    _current.set((chosen, translation(chosen)))
    os.environ["LANGUAGE"] = chosen  # what gettext.gettext looks at first
    gettext.bindtextdomain(DOMAIN, LOCALE_DIR)
    gettext.textdomain(DOMAIN)
    return chosen


@contextlib.contextmanager
def speaking(lang: str):
    """Messages in ``lang`` inside the block (a results file in its own language, one web
    request), the language before it after."""
    chosen = normal(lang)
    token = _current.set((chosen, translation(chosen)))
    try:
        yield chosen
    finally:
        _current.reset(token)


def language() -> str:
    """The language of messages now (``en`` or ``pt_BR``): what a person reads, so also what
    their spreadsheet program expects."""
    return _current.get()[0]


def _(message: str) -> str:
    """The message in the current language (English when no translation exists)."""
    return _current.get()[1].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The message for ``n`` things, singular or plural as the current language counts."""
    return _current.get()[1].ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it yet (translated where shown)."""
    return message


def number(value: float, digits: int = 0) -> str:
    """A number as the reader writes it (``1,234.5`` in English, ``1.234,5`` in Portuguese),
    with ``digits`` after the decimal mark."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=language())


def moment(iso: str) -> str:
    """A moment kept as ISO 8601 (``2026-12-07T19:14:00-03:00``) as the reader writes a date
    and a time, in this machine's time zone; any other text as it is."""
    import datetime as dt

    from babel.dates import format_datetime

    try:
        when = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    local = when.astimezone().replace(tzinfo=None) if when.tzinfo else when
    return format_datetime(local, format="short", locale=language())
