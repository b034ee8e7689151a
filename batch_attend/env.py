"""The process environment handed to the library, so tests can inject every stream.

Nothing in the library reads ``sys.stdout`` or ``os.environ`` directly: it asks the ``Env`` it
was given. An ``Env`` is built per call, never at import time.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Env:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stderr_isatty: bool | None = None

    def __post_init__(self) -> None:
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)

    def log(self, message: str) -> None:
        """One line for a person, on stderr."""
        print(message, file=self.stderr, flush=True)
