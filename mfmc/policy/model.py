"""The compiled policy: what each owner's rules mean, independent of syntax.

Every word of the language is resolved here, at compile time, into a closed vocabulary of `StrEnum`s: fakes modes
(owned by this package), default audiences and relationships (owned by `mfmc.vocabulary`, the lowest layer that
uses them: `mfmc.crypto` reads them too). Audience names resolve to a `Target` with a specificity level and `when`
conditions to a `Predicate` tree over targets, so the engine never looks at a string it would have to guess the
meaning of. Constructors check their fields: a policy built by hand with an unknown word raises `RuleError`
instead of being evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING

from mfmc.errors import RuleError
from mfmc.policy import ast
from mfmc.policy.diagnostics import Diagnostic
from mfmc.vocabulary import EVERYONE_WORDS, DefaultAudience, Relation

if TYPE_CHECKING:
    from mfmc.policy.graph import Graph


class Level(IntEnum):
    """Specificity of a statement's audience: higher wins."""

    EVERYONE = 0
    RELATION = 1
    GROUP = 2
    USER = 3


class FakesMode(StrEnum):
    """One fake per photo (every viewer sees the same fake) or one per viewer."""

    PER_PHOTO = "per_photo"
    PER_VIEWER = "per_viewer"

    @classmethod
    def parse(cls, word: str) -> FakesMode:
        try:
            return cls(word)
        except ValueError:
            raise RuleError([], f"unknown fakes mode `{word}`") from None


RELATIONS = tuple(r.value for r in Relation)
DEFAULT_LEVELS = ("public", *(d.value for d in DefaultAudience))
FAKES_MODES = tuple(m.value for m in FakesMode)
RESERVED = frozenset((*RELATIONS, *EVERYONE_WORDS, "nobody"))


@dataclass(frozen=True)
class Target:
    """Who one audience item covers: named users, a group's members, a relationship, or everyone."""

    level: Level
    users: frozenset[str] = frozenset()
    relation: Relation | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.level, Level):
            raise RuleError([], f"unknown audience level `{self.level}`")
        if (self.level is Level.RELATION) != isinstance(self.relation, Relation):
            raise RuleError([], f"audience `{self.label}` has an unknown relationship `{self.relation}`")

    def describe(self) -> str:
        match self.level:
            case Level.USER:
                return f"named viewer `{self.label}`"
            case Level.GROUP:
                return f"group `{self.label}`"
            case Level.RELATION:
                return f"relationship `{self.label}`"
            case Level.EVERYONE:
                return "everyone"
        raise RuleError([], f"unknown audience level `{self.level}`")


def resolve(name: str, groups: Mapping[str, frozenset[str]]) -> Target:
    """The target an audience name denotes, given the groups defined so far."""
    if name in EVERYONE_WORDS:
        return Target(Level.EVERYONE, label=name)
    if name in RELATIONS:
        return Target(Level.RELATION, relation=Relation(name), label=name)
    if name in groups:
        return Target(Level.GROUP, users=groups[name], label=name)
    return Target(Level.USER, users=frozenset((name,)), label=name)


# ---- compiled conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploaderIn:
    """`uploader in A, B`: the uploader is in one of `targets` (the owner counts as in all of them)."""

    targets: tuple[Target, ...]
    negated: bool = False


@dataclass(frozen=True)
class AlbumIs:
    """`album == "x"`: an unknown album equals no name."""

    album: str
    negated: bool = False


@dataclass(frozen=True)
class NotP:
    operand: Predicate


@dataclass(frozen=True)
class AllOf:
    operands: tuple[Predicate, ...]


@dataclass(frozen=True)
class AnyOf:
    operands: tuple[Predicate, ...]


Predicate = UploaderIn | AlbumIs | NotP | AllOf | AnyOf


def compile_condition(condition: ast.Condition, groups: Mapping[str, frozenset[str]]) -> Predicate:
    """Resolve every audience name of a `when` condition against the groups defined so far."""
    match condition:
        case ast.UploaderIn(audience, negated):
            return UploaderIn(tuple(resolve(n.value, groups) for n in audience), negated)
        case ast.AlbumIs(album, negated):
            return AlbumIs(album, negated)
        case ast.Not(operand):
            return NotP(compile_condition(operand, groups))
        case ast.And(operands):
            return AllOf(tuple(compile_condition(o, groups) for o in operands))
        case ast.Or(operands):
            return AnyOf(tuple(compile_condition(o, groups) for o in operands))
    raise RuleError([], f"unknown condition `{condition!r}`")


def predicate_parts(p: Predicate) -> tuple[list[tuple[Target, ...]], list[str]]:
    """Every uploader test (the targets of one `uploader in A, B`) and every album literal in `p`."""
    atoms: list[tuple[Target, ...]] = []
    albums: list[str] = []
    stack: list[Predicate] = [p]
    while stack:
        match stack.pop():
            case UploaderIn(targets):
                atoms.append(targets)
            case AlbumIs(album):
                albums.append(album)
            case NotP(operand):
                stack.append(operand)
            case AllOf(operands) | AnyOf(operands):
                stack.extend(operands)
            case other:
                raise RuleError([], f"unknown condition `{other!r}`")
    return atoms, albums


@dataclass(frozen=True)
class CompiledRule:
    """One audience item of one statement (a comma list compiles to one rule per item)."""

    hide: bool
    target: Target
    condition: Predicate | None
    source: str  # the statement as written, for reasons
    span: ast.Span

    def __post_init__(self) -> None:
        if not isinstance(self.hide, bool) or not isinstance(self.target, Target):
            raise RuleError([], f"malformed compiled statement `{self.source}`")

    def describe(self) -> str:
        return f"{self.span}: `{self.source}`"


@dataclass(frozen=True)
class DefaultSource:
    """Where the `default` statement is, for analysis output."""

    span: ast.Span
    source: str


@dataclass(frozen=True)
class OwnerPolicy:
    """Everything one owner's file says."""

    owner: str
    default: DefaultAudience
    rules: tuple[CompiledRule, ...]
    groups: Mapping[str, frozenset[str]]
    fakes: FakesMode
    path: str
    default_source: DefaultSource | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.default, DefaultAudience):
            raise RuleError([], f"unknown default level `{self.default}` for `{self.owner}`")
        if not isinstance(self.fakes, FakesMode):
            raise RuleError([], f"unknown fakes mode `{self.fakes}` for `{self.owner}`")

    @property
    def fakes_per_viewer(self) -> bool:
        return self.fakes is FakesMode.PER_VIEWER

    def album_literals(self) -> set[str]:
        """Every album name a condition of these rules tests."""
        return {a for r in self.rules if r.condition is not None for a in predicate_parts(r.condition)[1]}

    def uploader_tests(self) -> list[frozenset[Target]]:
        """Every distinct audience (the union of an `uploader in A, B`'s targets) a condition tests the uploader
        against: whether a condition holds depends on the uploader only through membership in these."""
        found: dict[frozenset[Target], None] = {}
        for r in self.rules:
            if r.condition is not None:
                found.update(dict.fromkeys(frozenset(atom) for atom in predicate_parts(r.condition)[0]))
        return list(found)


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
