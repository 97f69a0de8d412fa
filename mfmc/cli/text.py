"""Small wording helpers shared by the commands' output."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 face`, `2 faces` (`many` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
