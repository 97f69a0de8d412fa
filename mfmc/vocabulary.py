"""Words shared by several layers (the lowest layer that uses them): the swap generator, the store, the service.

- `Fallback`: how a faked face was produced (the swap generator's outcomes and the service's fail-closed block).
- `DefaultAudience` and `Relation`: the rule language's audiences, resolved by `mfmc.policy` at compile time and
  read by `mfmc.crypto` (an owner whose default is `nobody` never shares an embedding).
- User names: the rule language's identifier syntax (`face NAME`, `reveal to NAME`), at most 64 characters,
  never a reserved word of the language, unique case-insensitively (see `check_user_name`).
"""

from __future__ import annotations

import re
from enum import StrEnum

from mfmc.errors import InvalidInputError, RuleError


class Fallback(StrEnum):
    """How a faked face was produced. The swap generator's outcomes are all verified; `block` is the service's
    last resort when the generator failed or returned an unverified fake (a hatched block, no face left)."""

    NONE = "none"  # a swap passed verification
    ALPHA = "alpha"  # a full-geometry swap with partial blending passed
    OBFUSCATE = "obfuscate"  # pixelation passed verification
    FILL = "fill"  # the face area painted one colour (verified by construction)
    BLOCK = "block"  # the service's fail-closed block: generation raised or was not verified

    @property
    def is_failure(self) -> bool:
        """A fallback the service had to apply because the generator could not deliver (logged and counted)."""
        return self is Fallback.BLOCK


class Relation(StrEnum):
    """A relationship of the social graph, relative to the face's owner."""

    FRIENDS = "friends"
    FRIENDS_OF_FRIENDS = "friends_of_friends"
    FOLLOWERS = "followers"


EVERYONE_WORDS = ("everyone", "public")


class DefaultAudience(StrEnum):
    """Who sees the face when no statement applies. `public` is written for `everyone` too."""

    EVERYONE = "everyone"
    FRIENDS = "friends"
    FRIENDS_OF_FRIENDS = "friends_of_friends"
    FOLLOWERS = "followers"
    NOBODY = "nobody"

    @classmethod
    def parse(cls, word: str) -> DefaultAudience:
        """The audience a `default` word denotes; unknown words raise `RuleError` (exit 2)."""
        if word in EVERYONE_WORDS:
            return cls.EVERYONE
        try:
            return cls(word)
        except ValueError:
            raise RuleError([], f"unknown default level `{word}`") from None

    @property
    def relation(self) -> Relation | None:
        """The relationship this default reveals to, if it is one."""
        return None if self in (DefaultAudience.EVERYONE, DefaultAudience.NOBODY) else Relation(self.value)


# The identifier shape of the rule language's NAME token (grammar.lark), capped at the store's column size.
USER_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,63}")

# Words a rule file reads as something other than a user: audiences, keywords, `fakes` modes.
RESERVED_NAMES = frozenset({
    *EVERYONE_WORDS, *(audience.value for audience in DefaultAudience),  # every audience word
    "face", "default", "group", "reveal", "to", "hide", "from", "fakes", "when", "and", "or", "not", "in",
    "uploader", "album", "per_viewer", "per_photo",
})


def check_user_name(name: str) -> str:
    """Return `name` if it can be a user (and be named in rules); `InvalidInputError` (exit 2) otherwise."""
    if not isinstance(name, str) or not USER_NAME_RE.fullmatch(name):
        raise InvalidInputError(
            f"invalid user name `{name}`",
            help="use 1-64 letters, digits, `_` or `-`, starting with a letter or `_` (rule files name users so)")
    if name.lower() in RESERVED_NAMES:
        raise InvalidInputError(f"`{name}` is a reserved word of the rule language and cannot be a user name",
                                help="pick another name")
    return name
