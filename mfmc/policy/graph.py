"""The social graph: users, symmetric friendships, and follows.

    users = ["alice", "bob"]
    friends = [["alice", "bob"]]     # symmetric pairs
    follows = [["erin", "alice"]]    # erin follows alice

Loaded from TOML or JSON with those keys. Relationship sets are computed once per user and cached: a `Graph`
is immutable.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from mfmc.errors import GraphError, InvalidInputError, UnknownUserError
from mfmc.files import read_regular_file
from mfmc.policy.diagnostics import did_you_mean

MAX_GRAPH_BYTES = 64 * 2**20  # a graph file larger than this is refused before reading


class Graph:
    """An immutable social graph with indexed users."""

    def __init__(
        self,
        users: Iterable[str] = (),
        friends: Iterable[tuple[str, str] | list[str]] = (),
        follows: Iterable[tuple[str, str] | list[str]] = (),
    ) -> None:
        self.users: tuple[str, ...] = tuple(dict.fromkeys(users))
        self.index: Mapping[str, int] = {u: i for i, u in enumerate(self.users)}
        adjacency: dict[str, set[str]] = {u: set() for u in self.users}
        followers: dict[str, set[str]] = {u: set() for u in self.users}
        for a, b in self._pairs(friends, "friends"):
            adjacency[a].add(b)
            adjacency[b].add(a)
        for follower, followee in self._pairs(follows, "follows"):
            followers[followee].add(follower)
        self._friends = {u: frozenset(s) for u, s in adjacency.items()}
        self._followers = {u: frozenset(s) for u, s in followers.items()}
        self._fof: dict[str, frozenset[str]] = {}

    def _pairs(self, pairs: Iterable, key: str) -> Iterable[tuple[str, str]]:
        for pair in pairs:
            if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
                raise GraphError(f"`{key}` entries must be pairs of user names, got `{pair!r}`")
            a, b = pair
            for name in (a, b):
                self.require(name)
            if a == b:
                raise GraphError(f"`{key}` pairs a user with themselves: `{a}`")
            yield a, b

    # ---- queries ------------------------------------------------------------------------------------------

    def __contains__(self, user: object) -> bool:
        return user in self.index

    def __len__(self) -> int:
        return len(self.users)

    def require(self, user: str) -> str:
        """Return `user` if known, else raise `UnknownUserError` with a did-you-mean help line."""
        if user not in self.index:
            raise UnknownUserError(f"unknown user `{user}`", help=did_you_mean(user, self.users))
        return user

    def friends(self, user: str) -> frozenset[str]:
        return self._friends.get(user, frozenset())

    def followers(self, user: str) -> frozenset[str]:
        """Users who follow `user`."""
        return self._followers.get(user, frozenset())

    def friends_of_friends(self, user: str) -> frozenset[str]:
        """Friends and their friends, without `user` (cached: the graph is immutable)."""
        cached = self._fof.get(user)
        if cached is None:
            direct = self.friends(user)
            reach = set(direct)
            for friend in direct:
                reach |= self.friends(friend)
            reach.discard(user)
            cached = self._fof[user] = frozenset(reach)
        return cached

    def friend_pairs(self) -> list[tuple[str, str]]:
        return sorted({tuple(sorted((a, b))) for a, fs in self._friends.items() for b in fs})  # type: ignore[misc]

    def follow_pairs(self) -> list[tuple[str, str]]:
        return sorted((f, u) for u, fs in self._followers.items() for f in fs)

    # ---- files --------------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, object], source: str = "graph") -> Graph:
        if not isinstance(data, Mapping):
            raise GraphError(f"`{source}` must be a table with `users`, `friends` and `follows`")
        unknown = set(data) - {"users", "friends", "follows"}
        if unknown:
            key = sorted(unknown)[0]
            raise GraphError(f"unknown key `{key}` in `{source}`",
                             help=did_you_mean(key, ["users", "friends", "follows"]))
        users, friends, follows = data.get("users", []), data.get("friends", []), data.get("follows", [])
        for key, value in (("users", users), ("friends", friends), ("follows", follows)):
            if not isinstance(value, list):
                raise GraphError(f"`{key}` in `{source}` must be a list")
        if not all(isinstance(u, str) and u for u in users):  # type: ignore[union-attr]
            raise GraphError(f"`users` in `{source}` must be non-empty strings")
        return cls(users, friends, follows)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        """Load a graph from a `.toml` or `.json` file."""
        p = Path(path)
        try:  # regular files only: `/dev/zero` or a FIFO is refused before reading
            text = read_regular_file(p, max_bytes=MAX_GRAPH_BYTES).decode("utf-8")
        except InvalidInputError as err:
            raise GraphError(f"cannot read graph `{p}`: {err.message}", help=err.help) from None
        except UnicodeDecodeError as err:
            raise GraphError(f"cannot read graph `{p}`: {err}") from None
        try:
            data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
            raise GraphError(f"`{p}` is not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {err}") from None
        return cls.from_dict(data, str(p))

    def to_dict(self) -> dict[str, list]:
        return {
            "users": list(self.users),
            "friends": [list(p) for p in self.friend_pairs()],
            "follows": [list(p) for p in self.follow_pairs()],
        }
