"""The syntax tree of a `.mfmc` file: frozen dataclasses that carry source spans.

Spans and comments are excluded from equality, so `parse(format(x)) == x` compares meaning, not layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Span:
    """Where a node came from: 1-based line and column in `path`."""

    path: str
    line: int
    column: int
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


NO_SPAN = Span("<memory>", 1, 1)


@dataclass(frozen=True)
class Name:
    """An identifier as written: a user, a group or a relationship keyword."""

    value: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


# ---- conditions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploaderIn:
    """`uploader in A, B` (or `not in` when `negated`)."""

    audience: tuple[Name, ...]
    negated: bool = False
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class AlbumIs:
    """`album == "x"` (or `!=` when `negated`)."""

    album: str
    negated: bool = False
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Not:
    operand: Condition
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


Condition = UploaderIn | AlbumIs | Not | And | Or


# ---- statements -------------------------------------------------------------------------------------------


class Effect(Enum):
    REVEAL = "reveal"
    HIDE = "hide"


@dataclass(frozen=True)
class Comments:
    """Comment lines written above a statement, and the comment at the end of its line."""

    above: tuple[str, ...] = ()
    trailing: str | None = None


@dataclass(frozen=True)
class FaceDecl:
    owner: Name
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    comments: Comments = field(default=Comments(), compare=False, repr=False)


@dataclass(frozen=True)
class DefaultDecl:
    level: Name
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    comments: Comments = field(default=Comments(), compare=False, repr=False)


@dataclass(frozen=True)
class GroupDecl:
    name: Name
    members: tuple[Name, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    comments: Comments = field(default=Comments(), compare=False, repr=False)


@dataclass(frozen=True)
class Rule:
    """`reveal to …` or `hide from …`, with an optional `when` condition."""

    effect: Effect
    audience: tuple[Name, ...]
    condition: Condition | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    comments: Comments = field(default=Comments(), compare=False, repr=False)


@dataclass(frozen=True)
class FakesDecl:
    """`fakes per_viewer` or `fakes per_photo`."""

    mode: Name
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    comments: Comments = field(default=Comments(), compare=False, repr=False)


Statement = FaceDecl | DefaultDecl | GroupDecl | Rule | FakesDecl


@dataclass(frozen=True)
class RuleFile:
    """One parsed `.mfmc` file, statements in source order."""

    path: str
    statements: tuple[Statement, ...]
    trailing_comments: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def of_type(self, kind: type[T]) -> list[T]:
        return [s for s in self.statements if isinstance(s, kind)]
