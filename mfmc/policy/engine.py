"""The decision engine: (viewer, face owner, photo context) → reveal or fake, with reasons.

Semantics (design notes §2), for viewer v, owner o, context c:
1. v == o → reveal.  2. Unknown owner → fake; an owner without rules → `default nobody`.
3. Statements whose condition holds and whose audience contains v; none → reveal iff v in the default audience.
4. Otherwise the most specific matching statements win (named viewer > group > relationship > everyone),
   and among those `hide` beats `reveal`.
5. A viewer unknown to the graph is only ever in `everyone`.

`Engine` binds a compiled `PolicySet` to an immutable `Graph`. `check` explains one decision; `decide_many`
answers a photo's faces × many viewers at once with numpy masks (compile once, decide many).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mfmc.policy.conditions import Context, holds
from mfmc.policy.graph import Graph
from mfmc.policy.model import EVERYONE_WORDS, CompiledRule, Level, OwnerPolicy, PolicySet, Target


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


class Engine:
    """A compiled policy bound to a social graph."""

    def __init__(self, policy: PolicySet, graph: Graph) -> None:
        self.policy = policy
        self.graph = graph
        self._unknown = len(graph)  # vector slot for viewers the graph does not know
        self._relation_masks: dict[tuple[str, str], np.ndarray] = {}
        self._user_masks: dict[frozenset[str], np.ndarray] = {}

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
        matches = [r for r in self._active(policy, context) if self.member(known, r.target, owner)]
        if not matches:
            reveal = self._in_default(known, policy)
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
        """Whether `user` (None = unknown to the graph) is in `target`, relative to `owner`."""
        if target.level is Level.EVERYONE:
            return True
        if user is None or user not in self.graph:
            return False
        if target.level is Level.RELATION:
            return user in self._relation(owner, target.relation or "")
        return user in target.users

    def _relation(self, owner: str, relation: str) -> frozenset[str]:
        if relation == "friends":
            return self.graph.friends(owner)
        if relation == "followers":
            return self.graph.followers(owner)
        return self.graph.friends_of_friends(owner)

    def _in_default(self, viewer: str | None, policy: OwnerPolicy) -> bool:
        level = policy.default
        if level in EVERYONE_WORDS:
            return True
        if level == "nobody" or viewer is None:
            return False
        return viewer in self._relation(policy.owner, level)

    def _active(self, policy: OwnerPolicy, context: Context) -> list[CompiledRule]:
        owner = policy.owner

        def member(user: str | None, target: Target) -> bool:
            return self.member(user, target, owner)

        return [r for r in policy.rules if holds(r.condition, context, policy.groups, member)]

    # ---- many decisions at once ---------------------------------------------------------------------------

    def viewer_indices(self, viewers: Sequence[str | None]) -> np.ndarray:
        """Graph indices of viewers; unknown and anonymous viewers map to the `everyone`-only slot."""
        index, unknown = self.graph.index, self._unknown
        return np.fromiter((index.get(v, unknown) if v is not None else unknown for v in viewers),
                           dtype=np.intp, count=len(viewers))

    def reveal_vector(self, owner: str | None, context: Context | None = None) -> np.ndarray:
        """Decision for every graph user plus one last slot for unknown viewers (True = reveal)."""
        context = context or Context()
        size = self._unknown + 1
        result = np.zeros(size, dtype=bool)
        if owner is None:
            return result
        policy = self.policy.get(owner)
        if policy is not None:
            result = self._default_mask(policy).copy()
            decided = np.zeros(size, dtype=bool)
            active = self._active(policy, context)
            for level in _LEVELS_HIGH_FIRST:
                rules = [r for r in active if r.target.level == level]
                if not rules:
                    continue
                hide = np.zeros(size, dtype=bool)
                reveal = np.zeros(size, dtype=bool)
                for r in rules:
                    into = hide if r.hide else reveal
                    np.logical_or(into, self._target_mask(r.target, owner), out=into)
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

        `viewers` may be names or indices from `viewer_indices` (reuse those across photos).
        """
        names = None if isinstance(viewers, np.ndarray) else list(viewers)
        idx = viewers if names is None else self.viewer_indices(names)
        out = np.empty((len(owners), len(idx)), dtype=bool)
        for row, owner in enumerate(owners):
            out[row] = self.reveal_vector(owner, context)[idx]
            if names is not None and owner is not None and owner not in self.graph:
                # An owner outside the graph has no slot of their own but still sees their face.
                out[row] |= np.fromiter((v == owner for v in names), dtype=bool, count=len(names))
        return out

    def audience(self, owner: str, context: Context | None = None) -> Audience:
        """Who sees `owner`'s real face in `context` (the owner always does and is not listed)."""
        vector = self.reveal_vector(owner, context)
        users = self.graph.users
        if vector[self._unknown]:
            hidden = {users[i] for i in np.flatnonzero(~vector[:-1]) if users[i] != owner}
            return Everyone(frozenset(hidden))
        seen = {users[i] for i in np.flatnonzero(vector[:-1]) if users[i] != owner}
        return Only(frozenset(seen)) if seen else Nobody()

    def _default_mask(self, policy: OwnerPolicy) -> np.ndarray:
        level = policy.default
        if level in EVERYONE_WORDS:
            return np.ones(self._unknown + 1, dtype=bool)
        if level == "nobody":
            return np.zeros(self._unknown + 1, dtype=bool)
        return self._relation_mask(policy.owner, level)

    def _target_mask(self, target: Target, owner: str) -> np.ndarray:
        if target.level is Level.EVERYONE:
            return np.ones(self._unknown + 1, dtype=bool)
        if target.level is Level.RELATION:
            return self._relation_mask(owner, target.relation or "")
        mask = self._user_masks.get(target.users)
        if mask is None:
            mask = self._mask_of(target.users)
            self._user_masks[target.users] = mask
        return mask

    def _relation_mask(self, owner: str, relation: str) -> np.ndarray:
        key = (owner, relation)
        mask = self._relation_masks.get(key)
        if mask is None:
            mask = self._relation_masks[key] = self._mask_of(self._relation(owner, relation))
        return mask

    def _mask_of(self, users: frozenset[str]) -> np.ndarray:
        mask = np.zeros(self._unknown + 1, dtype=bool)
        index = self.graph.index
        mask[[index[u] for u in users if u in index]] = True
        mask.flags.writeable = False
        return mask
