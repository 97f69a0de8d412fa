"""The compiled policy: what each owner's rules mean, independent of syntax.

Audience names resolve to a `Target` with a specificity level; the engine only ever sees these types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from mfmc.policy import ast
from mfmc.policy.diagnostics import Diagnostic

if TYPE_CHECKING:
    from mfmc.policy.graph import Graph


class Level(IntEnum):
    """Specificity of a statement's audience: higher wins."""

    EVERYONE = 0
    RELATION = 1
    GROUP = 2
    USER = 3


RELATIONS = ("friends", "friends_of_friends", "followers")
EVERYONE_WORDS = ("everyone", "public")
DEFAULT_LEVELS = ("public", "everyone", "friends", "friends_of_friends", "followers", "nobody")
FAKES_MODES = ("per_viewer", "per_photo")
RESERVED = frozenset((*RELATIONS, *EVERYONE_WORDS, "nobody"))


@dataclass(frozen=True)
class Target:
    """Who one audience item covers: named users, a group's members, a relationship, or everyone."""

    level: Level
    users: frozenset[str] = frozenset()
    relation: str | None = None
    label: str = ""

    def describe(self) -> str:
        kind = {Level.USER: "named viewer", Level.GROUP: "group", Level.RELATION: "relationship",
                Level.EVERYONE: "everyone"}[self.level]
        return f"{kind} `{self.label}`" if self.level is not Level.EVERYONE else "everyone"


def resolve(name: str, groups: Mapping[str, frozenset[str]]) -> Target:
    """The target an audience name denotes, given the groups defined so far."""
    if name in EVERYONE_WORDS:
        return Target(Level.EVERYONE, label=name)
    if name in RELATIONS:
        return Target(Level.RELATION, relation=name, label=name)
    if name in groups:
        return Target(Level.GROUP, users=groups[name], label=name)
    return Target(Level.USER, users=frozenset((name,)), label=name)


@dataclass(frozen=True)
class CompiledRule:
    """One audience item of one statement (a comma list compiles to one rule per item)."""

    hide: bool
    target: Target
    condition: ast.Condition | None
    source: str  # the statement as written, for reasons
    span: ast.Span

    def describe(self) -> str:
        return f"{self.span}: `{self.source}`"


@dataclass(frozen=True)
class OwnerPolicy:
    """Everything one owner's file says."""

    owner: str
    default: str
    rules: tuple[CompiledRule, ...]
    groups: Mapping[str, frozenset[str]]
    fakes_per_viewer: bool
    path: str


@dataclass(frozen=True)
class PolicySet:
    """Immutable set of compiled owner policies, indexed by owner, plus the warnings found compiling them."""

    owners: Mapping[str, OwnerPolicy]
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False)

    def __contains__(self, owner: object) -> bool:
        return owner in self.owners

    def __iter__(self) -> Iterator[OwnerPolicy]:
        return iter(self.owners.values())

    def __len__(self) -> int:
        return len(self.owners)

    def get(self, owner: str | None) -> OwnerPolicy | None:
        return self.owners.get(owner) if owner is not None else None

    def fakes_per_viewer(self, owner: str | None) -> bool:
        policy = self.get(owner)
        return bool(policy and policy.fakes_per_viewer)

    @classmethod
    def from_sources(cls, sources: Iterable[tuple[str, str]], graph: Graph | None = None) -> PolicySet:
        """Compile `(text, path)` pairs; see `mfmc.policy.compiler.compile_sources`."""
        from mfmc.policy.compiler import compile_sources

        return compile_sources(sources, graph=graph)
