"""Messages for people in English or Portuguese (pt_BR), through gettext catalogs. Results files
keep English column names and codes, so scripts do not depend on the locale. Our catalog is also
the process's gettext domain, so click's own messages come out in the same language."""

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

#: Per thread and task: the page serves two languages at once, a run keeps its own.
_current: contextvars.ContextVar[tuple[str, gettext.NullTranslations]] = contextvars.ContextVar(
    "batch_attend_language", default=("en", gettext.NullTranslations())
)


def language_from(environ: Mapping[str, str]) -> str:
    """The language of ``LC_ALL``, ``LC_MESSAGES`` or ``LANG``, the first that is set."""
    names = ("LC_ALL", "LC_MESSAGES", "LANG")
    return normal(next((environ[n] for n in names if environ.get(n)), "en"))


def normal(lang: str) -> str:
    """``pt``, ``pt-BR``, ``pt_BR`` → ``pt_BR``; anything else → ``en``."""
    return "pt_BR" if lang.lower().startswith("pt") else "en"


@functools.cache
def _catalog(lang: str) -> tuple[str, gettext.NullTranslations]:
    chosen = normal(lang)
    return chosen, gettext.translation(DOMAIN, LOCALE_DIR, languages=[chosen], fallback=True)


def set_language(lang: str | None, environ: Mapping[str, str]) -> None:
    """Choose the language of this process (``--lang``, else the locale)."""
    _current.set(_catalog(lang or language_from(environ)))
    os.environ["LANGUAGE"] = language()  # what gettext.gettext looks at first
    gettext.bindtextdomain(DOMAIN, LOCALE_DIR)
    gettext.textdomain(DOMAIN)


@contextlib.contextmanager
def speaking(lang: str):
    """Messages in ``lang`` inside the block (a results file, one web request)."""
    token = _current.set(_catalog(lang))
    try:
        yield language()
    finally:
        _current.reset(token)


def language() -> str:
    """``en`` or ``pt_BR``: what a person reads, so also what their spreadsheet expects."""
    return _current.get()[0]


def _(message: str) -> str:
    return _current.get()[1].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.get()[1].ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where shown."""
    return message


def number(value: float, digits: int = 0) -> str:
    """``1,234.5`` in English, ``1.234,5`` in Portuguese."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=language())


def moment(iso: str) -> str:
    """An ISO 8601 moment as the reader writes it, in this machine's time zone; other text as is."""
    import datetime as dt

    from babel.dates import format_datetime

    try:
        when = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso
    local = when.astimezone().replace(tzinfo=None) if when.tzinfo else when
    return format_datetime(local, format="short", locale=language())
