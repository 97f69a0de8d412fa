"""The decision engine: (viewer, face owner, photo context) → reveal or fake, with reasons.

Semantics (design notes §2), for viewer v, owner o, context c:
1. v == o → reveal.  2. Unknown owner → fake; an owner without rules → `default nobody`.
3. Statements whose condition holds and whose audience contains v; none → reveal iff v in the default audience.
4. Otherwise the most specific matching statements win (named viewer > group > relationship > everyone),
   and among those `hide` beats `reveal`.
5. A viewer unknown to the graph is only ever in `everyone`.
6. In conditions the owner counts as a member of every audience of their own: `uploader in friends` holds when
   the owner uploaded the photo.

Every branch on the policy's vocabulary is exhaustive over its enum; anything else raises `RuleError` (a face
is never revealed by falling through).

`Engine` binds a compiled `PolicySet` to an immutable `Graph`. `check` explains one decision; `decide_many`
answers a photo's faces × many viewers at once with numpy masks (compile once, decide many).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mfmc.errors import RuleError
from mfmc.policy.conditions import Context, holds
from mfmc.policy.graph import Graph
from mfmc.policy.model import CompiledRule, DefaultAudience, Level, OwnerPolicy, PolicySet, Relation, Target


@dataclass(frozen=True)
class Decision:
    reveal: bool
    reasons: tuple[str, ...]

    @property
    def value(self) -> str:
        return "reveal" if self.reveal else "fake"

    def to_dict(self) -> dict[str, object]:
        return {"decision": self.value, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Everyone:
    """Every viewer, including people unknown to the graph, except those listed (the owner aside)."""

    except_: frozenset[str] = frozenset()

    def describe(self) -> str:
        return "everyone" + (f" except {', '.join(sorted(self.except_))}" if self.except_ else "")

    def to_dict(self) -> dict[str, object]:
        return {"audience": "everyone", "except": sorted(self.except_)}


@dataclass(frozen=True)
class Only:
    """Only these users (besides the owner)."""

    users: frozenset[str]

    def describe(self) -> str:
        return "only " + ", ".join(sorted(self.users))

    def to_dict(self) -> dict[str, object]:
        return {"audience": "only", "users": sorted(self.users)}


@dataclass(frozen=True)
class Nobody:
    """No one but the owner."""

    def describe(self) -> str:
        return "nobody (only the owner)"

    def to_dict(self) -> dict[str, object]:
        return {"audience": "nobody"}


Audience = Everyone | Only | Nobody
_LEVELS_HIGH_FIRST = sorted(Level, reverse=True)


def audience_of(vector: np.ndarray, users: Sequence[str], owner: str | None) -> Audience:
    """The audience a reveal vector (one slot per graph user, then one for everyone else) describes."""
    if vector[-1]:
        hidden = {users[i] for i in np.flatnonzero(~vector[:-1]) if users[i] != owner}
        return Everyone(frozenset(hidden))
    seen = {users[i] for i in np.flatnonzero(vector[:-1]) if users[i] != owner}
    return Only(frozenset(seen)) if seen else Nobody()


class Engine:
    """A compiled policy bound to a social graph."""

    def __init__(self, policy: PolicySet, graph: Graph) -> None:
        self.policy = policy
        self.graph = graph
        self._unknown = len(graph)  # vector slot for viewers the graph does not know
        self._relation_masks: dict[tuple[str, Relation], np.ndarray] = {}
        self._user_masks: dict[frozenset[str], np.ndarray] = {}
        # Named viewers outside the graph get their own index past the unknown slot (see `viewer_indices`).
        self._outsiders: dict[str, int] = {}
        self._next_outsider = itertools.count(self._unknown + 1)

    # ---- one decision, explained --------------------------------------------------------------------------

    def check(self, viewer: str | None, owner: str | None, context: Context | None = None) -> Decision:
        context = context or Context()
        if owner is None:
            return Decision(False, ("the face has no known owner, so it is faked for every viewer",))
        if viewer == owner:
            return Decision(True, (f"`{owner}` always sees their own face",))
        policy = self.policy.get(owner)
        if policy is None:
            return Decision(False, (f"`{owner}` has no rules, so the default is `nobody`",))
        known = viewer if viewer in self.graph else None
        matches = [r for r in self.active_rules(policy, context) if self.member(known, r.target, owner)]
        if not matches:
            reveal = self._in_default(known, policy.owner, policy.default)
            who = f"`{viewer}`" if viewer is not None else "an anonymous viewer"
            verdict = "is" if reveal else "is not"
            return Decision(reveal, (f"no statement applies to {who}; {who} {verdict} in the default audience "
                                     f"`{policy.default}` of `{owner}`",))
        top = max(r.target.level for r in matches)
        winners = [r for r in matches if r.target.level == top]
        hides = [r for r in winners if r.hide]
        chosen = hides or winners
        reasons = [f"{r.describe()} applies ({r.target.describe()})" for r in chosen]
        if hides and len(hides) < len(winners):
            reasons.append("hide wins over reveal at the same specificity")
        if len(matches) > len(winners):
            reasons.append(f"less specific statements ({len(matches) - len(winners)}) are overridden")
        return Decision(not hides, tuple(reasons))

    # ---- membership ---------------------------------------------------------------------------------------

    def member(self, user: str | None, target: Target, owner: str) -> bool:
        """Whether viewer `user` (None = anonymous) is in `target`, relative to `owner`."""
        match target.level:
            case Level.EVERYONE:
                return True
            case Level.RELATION:
                return user is not None and target.relation is not None \
                    and user in self.relation(owner, target.relation)
            case Level.GROUP | Level.USER:
                return user is not None and user in self.graph and user in target.users
        raise RuleError([], f"unknown audience level `{target.level}`")

    def uploader_in(self, uploader: str | None, target: Target, owner: str) -> bool:
        """Membership in a condition: the owner counts as a member of every audience of their own (§2.6)."""
        return (uploader is not None and uploader == owner) or self.member(uploader, target, owner)

    def relation(self, owner: str, relation: Relation) -> frozenset[str]:
        """The users in `relation` to `owner` (graph users only)."""
        match relation:
            case Relation.FRIENDS:
                return self.graph.friends(owner)
            case Relation.FOLLOWERS:
                return self.graph.followers(owner)
            case Relation.FRIENDS_OF_FRIENDS:
                return self.graph.friends_of_friends(owner)
        raise RuleError([], f"unknown relationship `{relation}`")

    def _in_default(self, viewer: str | None, owner: str, default: DefaultAudience) -> bool:
        match default:
            case DefaultAudience.EVERYONE:
                return True
            case DefaultAudience.NOBODY:
                return False
            case DefaultAudience.FRIENDS | DefaultAudience.FRIENDS_OF_FRIENDS | DefaultAudience.FOLLOWERS:
                return viewer is not None and viewer in self.relation(owner, Relation(default.value))
        raise RuleError([], f"unknown default level `{default}`")

    def active_rules(self, policy: OwnerPolicy, context: Context) -> list[CompiledRule]:
        """The compiled statements of `policy` whose condition holds in `context`."""
        owner = policy.owner

        def member(user: str | None, target: Target) -> bool:
            return self.uploader_in(user, target, owner)

        return [r for r in policy.rules if holds(r.condition, context, member)]

    # ---- many decisions at once ---------------------------------------------------------------------------

    def viewer_indices(self, viewers: Sequence[str | None]) -> np.ndarray:
        """Indices of viewers, reusable across photos and owners.

        Graph users get their graph index; anonymous viewers (None) the `everyone`-only slot; every other name
        an index of its own past that slot, decided like the `everyone`-only slot except for its own face.
        """
        index, out = self.graph.index, np.empty(len(viewers), dtype=np.intp)
        for k, viewer in enumerate(viewers):
            if viewer is None:
                out[k] = self._unknown
            elif viewer in index:
                out[k] = index[viewer]
            else:
                slot = self._outsiders.get(viewer)
                if slot is None:
                    slot = self._outsiders.setdefault(viewer, next(self._next_outsider))
                out[k] = slot
        return out

    def reveal_vector(self, owner: str | None, context: Context | None = None) -> np.ndarray:
        """Decision for every graph user plus one last slot for unknown viewers (True = reveal)."""
        if owner is None:
            return np.zeros(self._unknown + 1, dtype=bool)
        policy = self.policy.get(owner)
        if policy is None:
            return self.vector(owner, DefaultAudience.NOBODY, [])
        return self.vector(owner, policy.default, self.active_rules(policy, context or Context()))

    def vector(self, owner: str, default: DefaultAudience, active: Sequence[CompiledRule]) -> np.ndarray:
        """The reveal vector given the default audience and the statements active in a context."""
        size = self._unknown + 1
        result = self._default_mask(owner, default).copy()
        decided = np.zeros(size, dtype=bool)
        for level in _LEVELS_HIGH_FIRST:
            rules = [r for r in active if r.target.level == level]
            if not rules:
                continue
            hide = np.zeros(size, dtype=bool)
            reveal = np.zeros(size, dtype=bool)
            for r in rules:
                into = hide if r.hide else reveal
                np.logical_or(into, self.target_mask(r.target, owner), out=into)
            hit = (hide | reveal) & ~decided
            result[hit] = ~hide[hit]
            decided |= hit
        own = self.graph.index.get(owner)
        if own is not None:
            result[own] = True
        return result

    def decide_many(self, owners: Sequence[str | None], viewers: Sequence[str | None] | np.ndarray,
                    context: Context | None = None) -> np.ndarray:
        """Boolean matrix (faces × viewers): True where the viewer sees that face's real owner.

        `viewers` may be names or indices from `viewer_indices` (reuse those across photos): both give the
        same answers as `check`, an owner outside the graph included.
        """
        idx = viewers if isinstance(viewers, np.ndarray) else self.viewer_indices(viewers)
        if idx.size and int(idx.min()) < 0:
            raise RuleError([], "viewer indices must come from `Engine.viewer_indices`")
        slots = np.minimum(idx, self._unknown)
        out = np.empty((len(owners), len(idx)), dtype=bool)
        for row, owner in enumerate(owners):
            out[row] = self.reveal_vector(owner, context)[slots]
            own = self._outsiders.get(owner) if owner is not None and owner not in self.graph else None
            if own is not None:
                out[row] |= idx == own  # an owner outside the graph still sees their own face
        return out

    def audience(self, owner: str, context: Context | None = None) -> Audience:
        """Who sees `owner`'s real face in `context` (the owner always does and is not listed)."""
        return audience_of(self.reveal_vector(owner, context), self.graph.users, owner)

    def _default_mask(self, owner: str, default: DefaultAudience) -> np.ndarray:
        match default:
            case DefaultAudience.EVERYONE:
                return self._everyone_mask()
            case DefaultAudience.NOBODY:
                return np.zeros(self._unknown + 1, dtype=bool)
            case DefaultAudience.FRIENDS | DefaultAudience.FRIENDS_OF_FRIENDS | DefaultAudience.FOLLOWERS:
                return self._relation_mask(owner, Relation(default.value))
        raise RuleError([], f"unknown default level `{default}`")

    def target_mask(self, target: Target, owner: str) -> np.ndarray:
        """Viewers in `target` (relative to `owner`) as a read-only reveal-vector-shaped mask."""
        match target.level:
            case Level.EVERYONE:
                return self._everyone_mask()
            case Level.RELATION if target.relation is not None:
                return self._relation_mask(owner, target.relation)
            case Level.GROUP | Level.USER:
                mask = self._user_masks.get(target.users)
                if mask is None:
                    mask = self._user_masks[target.users] = self._mask_of(target.users)
                return mask
        raise RuleError([], f"unknown audience level `{target.level}`")

    def _everyone_mask(self) -> np.ndarray:
        mask = np.ones(self._unknown + 1, dtype=bool)
        mask.flags.writeable = False
        return mask

    def _relation_mask(self, owner: str, relation: Relation) -> np.ndarray:
        key = (owner, relation)
        mask = self._relation_masks.get(key)
        if mask is None:
            mask = self._relation_masks[key] = self._mask_of(self.relation(owner, relation))
        return mask

    def _mask_of(self, users: frozenset[str]) -> np.ndarray:
        mask = np.zeros(self._unknown + 1, dtype=bool)
        index = self.graph.index
        mask[[index[u] for u in users if u in index]] = True
        mask.flags.writeable = False
        return mask
