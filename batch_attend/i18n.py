"""Messages for people in English or Portuguese (pt_BR), through gettext catalogs.

The language comes from ``--lang``, else from ``LC_ALL`` / ``LC_MESSAGES`` / ``LANG`` (the
first that is set). Results files never change: their column names and status codes stay
English so scripts do not depend on the locale.

Our catalog is also made the process's gettext domain, in the chosen language: click words its
own messages ("Usage:", its errors) through :func:`gettext.gettext`, so they come out in the
same language as ours.
"""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping
from pathlib import Path

DOMAIN = "batch_attend"
LOCALE_DIR = Path(__file__).parent / "locale"

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def language_from(environ: Mapping[str, str]) -> str:
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "pt_BR" if value.lower().startswith("pt") else "en"
    return "en"


def set_language(lang: str | None, environ: Mapping[str, str]) -> str:
    """Choose the catalog for this process; returns the language in use."""
    global _translation, _language
    chosen = lang or language_from(environ)
    chosen = _language = "pt_BR" if chosen.lower().startswith("pt") else "en"
    _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[chosen], fallback=True)
    os.environ["LANGUAGE"] = chosen  # what gettext.gettext looks at first
    gettext.bindtextdomain(DOMAIN, LOCALE_DIR)
    gettext.textdomain(DOMAIN)
    return chosen


def language() -> str:
    """The language of messages now (``en`` or ``pt_BR``): what a person reads, so also what
    their spreadsheet program expects."""
    return _language


def _(message: str) -> str:
    """The message in the current language (English when no translation exists)."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The message for ``n`` things, singular or plural as the current language counts."""
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it yet (translated where shown)."""
    return message
