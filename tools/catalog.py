"""Keep the message catalogs in step with the code (developers only; needs Babel).

    python tools/catalog.py          # refresh messages.pot, merge into pt_BR, compile the .mo
    python tools/catalog.py --compile  # only compile the .mo from the .po (after translating)
    python tools/catalog.py --check  # fail if a message has no translation or the .mo is stale

Message IDs are the English texts: every ``_("...")`` / ``N_("...")`` literal in batch_attend/
and its web page templates,
every command and option help text, and the few words of click's own that users see.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "batch_attend"
LOCALE = PACKAGE / "locale"
PO = LOCALE / "pt_BR" / "LC_MESSAGES" / "batch_attend.po"
MO = PO.with_suffix(".mo")

# Words click itself shows on our screens: it asks gettext, whose domain i18n makes ours.
CLICK_MESSAGES = [
    "Usage:",
    "Options",
    "Show this message and exit.",
    "Error: {message}",
    "Invalid value for {param_hint}: {message}",
    "Missing argument",
    "No such option: {name}",
    "Try '{command} {option}' for help.",
    "Commands",
    "default: {default}",
    "env var: {var}",
    "required",
    "No such option {name!r}.",
    "No such command {name!r}.",
    "Missing option",
    "Missing parameter: {param_name}",
    "Invalid value: {message}",
    "Aborted!",
    "{name} {filename!r} does not exist.",
    "{name} {filename!r} is a directory.",
    "{value!r} is not a valid {number_type}.",
    "{value} is not in the range {range}.",
    "Choose from:\n\t{choices}",
    "file",
    "path",
    "directory",
    ("Did you mean {possibility}?", "(Did you mean one of: {possibilities}?)"),
    ("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
    ("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    ("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
    ("Takes {nargs} values but 1 was given.", "Takes {nargs} values but {len} were given."),
    "Value must be an iterable.",
    "Missing parameter",
    "Missing {param_type}",
    "Missing command.",
    "Could not open file {filename!r}: {message}",
    "Option {name!r} does not take a value.",
    "Argument {name!r} takes {nargs} values.",
    "{value!r} is not a valid boolean. Recognized values: {states}",
    "{name} {filename!r} is a file.",
    "{name} {filename!r} is not readable.",
    "{name} {filename!r} is not writable.",
    "Show the version and exit.",
    "unknown error",
]


def _literal(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def code_messages() -> dict:
    """msgid → where it was found, from ``_()`` and ``N_()`` calls with a literal string, and
    (singular, plural) → where, from ``ngettext()`` calls with two."""
    found: dict = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
            if node.func.id in ("_", "N_") and node.args and _literal(node.args[0]):
                found.setdefault(node.args[0].value, where)
            elif node.func.id == "ngettext" and all(map(_literal, node.args[:2])):
                found.setdefault((node.args[0].value, node.args[1].value), where)
    return found


#: ``_("...")`` in a web page template: a Jinja2 call with one literal string; and
#: ``ngettext("...", "...", n)``, with two.
_STRING = r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
_TEMPLATE_CALL = re.compile(rf"\b_\(\s*{_STRING}\s*\)")
_TEMPLATE_PLURAL = re.compile(rf"\bngettext\(\s*{_STRING}\s*,\s*{_STRING}\s*,")


def template_messages() -> dict:
    """msgid → where, from the web page templates (Jinja2, whose string literals read as
    Python's)."""
    found: dict[str, str] = {}
    for path in sorted((PACKAGE / "web" / "templates").glob("*.html")):
        text = path.read_text(encoding="utf-8")
        for match in _TEMPLATE_CALL.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.setdefault(ast.literal_eval(match.group(1)), f"{path.name}:{line}")
        for match in _TEMPLATE_PLURAL.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            plural = tuple(ast.literal_eval(match.group(k)) for k in (1, 2))
            found.setdefault(plural, f"{path.name}:{line}")
    return found


def help_messages() -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from batch_attend.cli import cli

    found: dict[str, str] = {}
    for name, command in cli.commands.items():
        if command.help:
            found.setdefault(inspect.cleandoc(command.help), f"command {name}")
        for param in command.params:
            if getattr(param, "help", None):
                found.setdefault(param.help, f"option {param.name} of {name}")
    return found


def all_messages() -> dict[str, str]:
    from batch_attend.outcomes import ErrorCode
    from batch_attend.sentences import label

    messages = {m: "click" for m in CLICK_MESSAGES}
    messages.update({label(code): f"label of {code}" for code in ErrorCode})
    messages.update(help_messages())
    messages.update(code_messages())
    messages.update(template_messages())
    messages.pop("", None)
    return messages


def load_po():
    from babel.messages.pofile import read_po

    with open(PO, "rb") as fh:
        return read_po(fh, locale="pt_BR")


def compiled(catalog) -> bytes:
    from babel.messages.mofile import write_mo

    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def update() -> None:
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = Catalog(project="batch-attend", domain="batch_attend")
    for message, where in all_messages().items():
        template.add(
            message,
            locations=[(where, 0)],
            flags=("python-brace-format",) if "{" in str(message) else (),
        )
    with open(LOCALE / "messages.pot", "wb") as fh:
        write_po(fh, template, omit_header=False, sort_output=True, width=100)
    catalog = load_po() if PO.exists() else Catalog(locale="pt_BR", domain="batch_attend")
    catalog.update(template, no_fuzzy_matching=True)
    catalog.project, catalog.fuzzy = "batch-attend", False
    catalog.language_team = "batch-attend"
    PO.parent.mkdir(parents=True, exist_ok=True)
    with open(PO, "wb") as fh:
        write_po(fh, catalog, sort_output=True, width=100, ignore_obsolete=True)
    MO.write_bytes(compiled(load_po()))


def problems() -> list[str]:
    catalog = load_po()
    out = []
    for message in all_messages():
        entry = catalog.get(message)
        strings = entry.string if entry is not None else ""
        if isinstance(strings, str):
            strings = (strings,)
        if entry is None or not all(strings):
            out.append(f"no translation: {message!r}")
        elif entry.fuzzy:
            out.append(f"fuzzy translation: {message!r}")
    if not MO.exists() or MO.read_bytes() != compiled(catalog):
        out.append(f"{MO.name} is not compiled from {PO.name}: run python tools/catalog.py")
    return out


def compile_only() -> None:
    MO.write_bytes(compiled(load_po()))


if __name__ == "__main__":
    if "--compile" in sys.argv:
        compile_only()
        sys.exit(0)
    if "--check" in sys.argv:
        found = problems()
        print("\n".join(found) or "catalog complete")
        sys.exit(1 if found else 0)
    update()
    print(f"updated {PO.relative_to(REPO)} and {MO.relative_to(REPO)}")
