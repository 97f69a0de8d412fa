"""Diagnostics: one error or warning about a rule file, rendered like a compiler message.

    rules/alice.mfmc:3:1: error: unknown keyword `revael`
      3 | revael to bob
        | ^^^^^^
      help: did you mean `reveal`?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from mfmc.policy.ast import Span


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    span: Span
    source_line: str | None = None
    help: str | None = None
    width: int = 1

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def render(self) -> str:
        lines = [f"{self.span}: {self.severity.value}: {self.message}"]
        if self.source_line is not None:
            number = str(self.span.line)
            pad = " " * len(number)
            shown = self.source_line.replace("\t", " ")
            lines.append(f"  {number} | {shown}")
            lines.append(f"  {pad} | {' ' * (self.span.column - 1)}{'^' * max(1, self.width)}")
        if self.help:
            lines.append(f"  help: {self.help}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "message": self.message,
            "path": self.span.path,
            "line": self.span.line,
            "column": self.span.column,
            "help": self.help,
        }


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A help line naming the closest choice, when one is close enough."""
    match = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean `{match[0]}`?" if match else None


def line_of(text: str, line: int) -> str | None:
    """The 1-based `line` of `text`, or None when out of range."""
    lines = text.splitlines()
    return lines[line - 1] if 1 <= line <= len(lines) else None
