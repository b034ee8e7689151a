"""The process environment handed to the library, so tests can inject every stream: nothing in
the library reads ``sys.stdout`` or ``os.environ``. An ``Env`` is built per call, never at import."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Env:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stderr_isatty: bool | None = None

    def __post_init__(self) -> None:
        if self.stderr_isatty is None:
            try:
                self.stderr_isatty = self.stderr.isatty()
            except (AttributeError, ValueError):  # a stand-in without isatty, or a closed stream
                self.stderr_isatty = False

    def log(self, message: str) -> None:
        """One line for a person, on stderr."""
        print(message, file=self.stderr, flush=True)
