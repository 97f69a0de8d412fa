"""Static analysis of rules: who could *ever* see a face, who *always* can, which statements do nothing, and
what an edit changes (`mfmc rules analyze`, `mfmc rules diff`).

The context space of one owner's rules is finite: uploader — each graph user, one user outside the graph, no
uploader (and the owner, who may upload too) — times album — each literal the rules test, any other album, no
album. Conditions only test `uploader in AUDIENCE` and `album == "literal"`, so contexts fall into equivalence
classes: uploaders with the same membership in every audience the conditions test behave alike (the owner is a
class of their own: semantics point 6), and every album the rules do not name behaves like no album. The analysis
decides one representative per class — each a real context of the space — and dedupes classes that activate the
same statements, so its cost grows with the number of classes, not with uploaders × viewers.

Viewers are answered for all at once by the engine's reveal vectors (one slot per graph user, one for everyone
else), so `ever` and `always` come back in the exact form of `rules audience --json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mfmc.errors import RuleError
from mfmc.policy.conditions import Context
from mfmc.policy.engine import Audience, Decision, Engine, audience_of
from mfmc.policy.graph import Graph
from mfmc.policy.model import (
    AlbumIs,
    AllOf,
    AnyOf,
    CompiledRule,
    DefaultAudience,
    Level,
    NotP,
    OwnerPolicy,
    PolicySet,
    Predicate,
    Target,
    UploaderIn,
)


@dataclass(frozen=True)
class DeadStatement:
    """One statement of a rule file, by line (in `dead`: one that decides nothing; in `redundant`: one whose
    removal, together with the other redundant ones, changes no decision)."""

    line: int
    text: str

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text}


@dataclass(frozen=True)
class Witness:
    """For one viewer: a context in which they see the real face and one in which they see a fake (either may
    be None when there is none), with the engine's reasons."""

    viewer: str | None
    reveal: Context | None
    fake: Context | None
    reveal_decision: Decision | None
    fake_decision: Decision | None

    def to_dict(self) -> dict[str, object]:
        return {"viewer": self.viewer, "reveal_in": _context_dict(self.reveal), "fake_in": _context_dict(self.fake)}


@dataclass(frozen=True)
class Analysis:
    """What one owner's rules allow over every photo context."""

    face: str
    ever: Audience
    always: Audience
    dead: tuple[DeadStatement, ...]
    redundant: tuple[DeadStatement, ...]
    contexts: tuple[Context, ...]  # one representative per class, in the order witnesses are searched
    witness: Witness | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"ever": self.ever.to_dict(), "always": self.always.to_dict(),
                                  "dead": [d.to_dict() for d in self.dead]}
        if self.witness is not None:
            out["viewer"] = self.witness.to_dict()
        return out


@dataclass(frozen=True)
class Change:
    """What an edit changes for one owner: viewers who see the real face in some context under the new rules
    where the old ones faked it (`gains`), and the reverse (`loses`)."""

    face: str
    gains: Audience
    loses: Audience
    gained: int = field(default=0)  # graph users (the owner aside) in `gains`
    lost: int = field(default=0)
    strangers_gain: bool = field(default=False)  # viewers outside the graph (and anonymous ones) gain
    strangers_lose: bool = field(default=False)

    @property
    def changed(self) -> bool:
        return bool(self.gained or self.lost or self.strangers_gain or self.strangers_lose)

    def to_dict(self) -> dict[str, object]:
        return {"face": self.face, "gains": self.gains.to_dict(), "loses": self.loses.to_dict()}


# ---- context classes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContextSpace:
    """One representative context per equivalence class, and for each the truth of every uploader test."""

    contexts: tuple[Context, ...]
    tests: Mapping[frozenset[Target], int]  # uploader test -> its position in each of `truths`
    truths: tuple[tuple[bool, ...], ...]  # per context: whether each uploader test holds


def context_classes(engine: Engine, owner: str, policies: Sequence[OwnerPolicy | None]) -> ContextSpace:
    """The context classes of `policies` (one owner's rules, one or two versions): uploaders — no uploader first,
    then graph users by graph order, then the owner; albums — none first (it stands for every album the rules do
    not name), then the literals in sorted order."""
    tests: dict[frozenset[Target], None] = {}
    albums: set[str] = set()
    for policy in policies:
        if policy is not None:
            tests.update(dict.fromkeys(policy.uploader_tests()))
            albums |= policy.album_literals()
    order = list(tests)
    uploaders = _uploader_classes(engine, owner, order)
    pairs = [(u, tuple(truth[t] for t in order), a) for u, truth in uploaders for a in [None, *sorted(albums)]]
    return ContextSpace(tuple(Context(uploader=u, album=a) for u, _, a in pairs),
                        {t: k for k, t in enumerate(order)}, tuple(t for _, t, _ in pairs))


def _uploader_classes(engine: Engine, owner: str,
                      tests: list[frozenset[Target]]) -> list[tuple[str | None, dict[frozenset[Target], bool]]]:
    """No uploader (standing for everyone outside the tested audiences, strangers included), one graph user per
    distinct membership signature over `tests`, and the owner (a member of all of them: semantics point 6); each
    with the truth of every test. A test that includes `everyone` holds for every uploader, none included."""
    always = {t: any(target.level is Level.EVERYONE for target in t) for t in tests}
    splitting = [t for t in tests if not always[t]]
    nobody: dict[frozenset[Target], bool] = dict(always)
    if not splitting:
        return [(None, nobody)]
    graph = engine.graph
    n = len(graph)
    members = np.zeros((len(splitting), n), dtype=bool)  # tests × users
    for row, test in enumerate(splitting):
        for target in test:
            members[row] |= engine.target_mask(target, owner)[:n]
    own = graph.index.get(owner)
    if own is not None:
        members[:, own] = False  # the owner is a class of their own
    classes: list[tuple[str | None, dict[frozenset[Target], bool]]] = [(None, nobody)]
    inside = np.flatnonzero(members.any(axis=0))
    if inside.size:
        signatures = np.packbits(members[:, inside], axis=0).T
        _, first = np.unique(signatures, axis=0, return_index=True)
        for i in sorted(inside[first].tolist()):
            column = members[:, i].tolist()
            classes.append((graph.users[i], {**always, **dict(zip(splitting, column, strict=True))}))
    classes.append((owner, dict.fromkeys(tests, True)))
    return classes


def _holds(p: Predicate | None, truth: tuple[bool, ...], album: str | None, tests: Mapping[int, int]) -> bool:
    """A compiled condition in a context class, from the truth of its uploader tests (`tests` maps each
    `UploaderIn` node, by id, to its position in `truth`)."""
    match p:
        case None:
            return True
        case UploaderIn(_, negated):
            return truth[tests[id(p)]] != negated
        case AlbumIs(literal, negated):
            return (album == literal) != negated
        case NotP(operand):
            return not _holds(operand, truth, album, tests)
        case AllOf(operands):
            return all(_holds(o, truth, album, tests) for o in operands)
        case AnyOf(operands):
            return any(_holds(o, truth, album, tests) for o in operands)
    raise RuleError([], f"unknown condition `{p!r}`")


def _test_positions(rules: Sequence[CompiledRule], space: ContextSpace) -> dict[int, int]:
    """id of every `UploaderIn` node of `rules` -> position of its test in the space's truths."""
    found: dict[int, int] = {}
    stack: list[Predicate] = [r.condition for r in rules if r.condition is not None]
    while stack:
        node = stack.pop()
        match node:
            case UploaderIn(targets):
                found[id(node)] = space.tests[frozenset(targets)]
            case NotP(operand):
                stack.append(operand)
            case AllOf(operands) | AnyOf(operands):
                stack.extend(operands)
    return found


class _Vectors:
    """Reveal vectors of one owner's rules per context class, computed once per distinct set of active
    statements (with some statements removed, for the dead-statement search)."""

    def __init__(self, engine: Engine, owner: str, policy: OwnerPolicy | None, space: ContextSpace) -> None:
        self.engine, self.owner, self.policy = engine, owner, policy
        self.rules: tuple[CompiledRule, ...] = policy.rules if policy is not None else ()
        self.default = policy.default if policy is not None else DefaultAudience.NOBODY
        self.active: list[frozenset[int]] = []
        tests = _test_positions(self.rules, space)
        for context, truth in zip(space.contexts, space.truths, strict=True):
            memo: dict[int, bool] = {}  # statements of a comma list share one condition object
            active = []
            for k, rule in enumerate(self.rules):
                key = id(rule.condition)
                if key not in memo:
                    memo[key] = _holds(rule.condition, truth, context.album, tests)
                if memo[key]:
                    active.append(k)
            self.active.append(frozenset(active))
        self._cache: dict[tuple[frozenset[int], DefaultAudience], np.ndarray] = {}

    def vector(self, active: frozenset[int], default: DefaultAudience | None = None) -> np.ndarray:
        key = (active, self.default if default is None else default)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self.engine.vector(self.owner, key[1], [self.rules[k] for k in sorted(active)])
        return found

    def matrix(self) -> np.ndarray:
        """contexts × (graph users + 1) reveal matrix."""
        return np.stack([self.vector(a) for a in self.active]) if self.active else np.zeros((0, 0), dtype=bool)


def _statements(policy: OwnerPolicy) -> tuple[dict[int, tuple[str, frozenset[int]]], int | None]:
    """Rule statements by line (text, compiled rule ids) and the line of a `default` other than `nobody`."""
    by_line: dict[int, tuple[str, frozenset[int]]] = {}
    for k, rule in enumerate(policy.rules):
        source, ids = by_line.get(rule.span.line, (rule.source, frozenset()))
        by_line[rule.span.line] = (source, ids | {k})
    default = policy.default_source
    default_line = default.span.line if default is not None and policy.default is not DefaultAudience.NOBODY else None
    return by_line, default_line


def _listed(policy: OwnerPolicy, lines: Iterable[int]) -> tuple[DeadStatement, ...]:
    by_line, default_line = _statements(policy)
    texts = {line: source for line, (source, _) in by_line.items()}
    if default_line is not None and policy.default_source is not None:
        texts[default_line] = policy.default_source.source
    return tuple(DeadStatement(line, texts[line]) for line in sorted(lines))


def _dead_statements(vectors: _Vectors) -> tuple[DeadStatement, ...]:
    """Statements that decide nothing for any viewer in any context: in no context is one of them among the
    statements a decision is taken by (what `rules explain` gives as reasons) for any viewer but the owner.
    A `default` other than `nobody` is dead when every viewer in its audience is always decided by a statement;
    `default nobody` is never listed (it is what no `default` means)."""
    policy = vectors.policy
    if policy is None:
        return ()
    by_line, default_line = _statements(policy)
    engine, owner = vectors.engine, vectors.owner
    size = len(engine.graph) + 1
    viewers = np.ones(size, dtype=bool)
    own = engine.graph.index.get(owner)
    if own is not None:
        viewers[own] = False  # the owner is never decided by a statement
    deciding: set[int] = set()
    default_decides = False
    default_mask = engine.vector(owner, policy.default, [])
    for active in set(vectors.active):
        undecided = viewers.copy()
        for level in sorted(Level, reverse=True):
            rules = [k for k in active if vectors.rules[k].target.level == level]
            if not rules:
                continue
            masks = {k: engine.target_mask(vectors.rules[k].target, owner) & undecided for k in rules}
            hide = np.zeros(size, dtype=bool)
            for k in rules:
                if vectors.rules[k].hide:
                    hide |= masks[k]
            for k in rules:
                if (masks[k] if vectors.rules[k].hide else masks[k] & ~hide).any():
                    deciding.add(k)
            for k in rules:
                undecided &= ~masks[k]
        if not default_decides and default_line is not None:
            default_decides = bool((default_mask & undecided).any())
    dead = [line for line, (_, ids) in by_line.items() if not ids & deciding]
    if default_line is not None and not default_decides:
        dead.append(default_line)
    return _listed(policy, dead)


def _redundant_statements(vectors: _Vectors) -> tuple[DeadStatement, ...]:
    """Statements whose removal, all together, changes no decision in any context; searched in line order to a
    fixed point, so each statement kept changes some decision when removed from what remains."""
    policy = vectors.policy
    if policy is None:
        return ()
    by_line, default_line = _statements(policy)
    candidates = sorted([*by_line, *([default_line] if default_line is not None else [])])
    removed_rules: frozenset[int] = frozenset()
    removed_default = False
    redundant: set[int] = set()
    while True:
        progress = False
        for line in candidates:
            if line in redundant:
                continue
            if line == default_line:
                trial_rules, trial_default = removed_rules, True
            else:
                trial_rules, trial_default = removed_rules | by_line[line][1], removed_default
            if _equivalent(vectors, trial_rules, trial_default):
                redundant.add(line)
                removed_rules, removed_default, progress = trial_rules, trial_default, True
        if not progress:
            break
    return _listed(policy, redundant)


def _equivalent(vectors: _Vectors, removed: frozenset[int], no_default: bool) -> bool:
    default = DefaultAudience.NOBODY if no_default else None
    for active in set(vectors.active):
        reduced = active - removed
        if reduced == active and not no_default:
            continue
        if not np.array_equal(vectors.vector(reduced, default), vectors.vector(active)):
            return False
    return True


# ---- the library API ---------------------------------------------------------------------------------------


def analyze(policy: PolicySet, graph: Graph, face: str, viewer: str | None = None,
            engine: Engine | None = None) -> Analysis:
    """Analyse `face`'s rules over every photo context: `ever`, `always`, dead statements, and for `viewer`
    one context that reveals and one that fakes. Pass `engine` to reuse its cached masks."""
    engine = engine if engine is not None else Engine(policy, graph)
    owner_policy = policy.get(face)
    space = context_classes(engine, face, [owner_policy])
    contexts = space.contexts
    vectors = _Vectors(engine, face, owner_policy, space)
    matrix = vectors.matrix()
    ever = audience_of(matrix.any(axis=0), graph.users, face)
    always = audience_of(matrix.all(axis=0), graph.users, face)
    witness = None
    if viewer is not None:
        witness = _witness(engine, face, viewer, contexts, matrix)
    return Analysis(face, ever, always, _dead_statements(vectors), _redundant_statements(vectors), tuple(contexts),
                    witness)


def _witness(engine: Engine, face: str, viewer: str, contexts: Sequence[Context], matrix: np.ndarray) -> Witness:
    slot = engine.graph.index.get(viewer, len(engine.graph))
    column = matrix[:, slot] | (viewer == face)
    reveal = next((c for c, seen in zip(contexts, column, strict=True) if seen), None)
    fake = next((c for c, seen in zip(contexts, column, strict=True) if not seen), None)
    return Witness(viewer, reveal, fake,
                   engine.check(viewer, face, reveal) if reveal is not None else None,
                   engine.check(viewer, face, fake) if fake is not None else None)


def diff(old: PolicySet, new: PolicySet, graph: Graph, faces: Iterable[str] | None = None) -> list[Change]:
    """Per owner (every owner with rules in either version, sorted, unless `faces` says which): who gains and
    who loses the real face in some context. Contexts use the album literals of both versions."""
    old_engine, new_engine = Engine(old, graph), Engine(new, graph)
    owners = sorted(set(old.owners) | set(new.owners)) if faces is None else list(faces)
    changes = []
    for owner in owners:
        before, after = old.get(owner), new.get(owner)
        space = context_classes(new_engine, owner, [before, after])
        was = _Vectors(old_engine, owner, before, space).matrix()
        now = _Vectors(new_engine, owner, after, space).matrix()
        gains = (now & ~was).any(axis=0)
        loses = (was & ~now).any(axis=0)
        changes.append(Change(owner, audience_of(gains, graph.users, owner), audience_of(loses, graph.users, owner),
                              _count(gains, graph, owner), _count(loses, graph, owner),
                              bool(gains[-1]), bool(loses[-1])))
    return changes


def _count(vector: np.ndarray, graph: Graph, owner: str) -> int:
    own = graph.index.get(owner)
    return int(vector[:-1].sum()) - (1 if own is not None and vector[own] else 0)


def describe_context(context: Context) -> str:
    """`uploaded by bob, album "wedding"` / `no uploader, no album`."""
    who = f"uploaded by {context.uploader}" if context.uploader is not None else "no uploader"
    album = f'album "{context.album}"' if context.album is not None else "no album (or one the rules do not name)"
    return f"{who}, {album}"


def _context_dict(context: Context | None) -> dict[str, str | None] | None:
    return None if context is None else {"uploader": context.uploader, "album": context.album}
