"""Ed25519 signatures over rule files, and signed revocation notices.

The owner's client signs the canonical bytes of its `.mfmc` file together with the owner name and a rule
version; the platform verifies against the owner's stored public key and refuses unsigned or forged rules, and
a lower version than the one it holds (rollback). Canonical bytes only normalise encoding noise (BOM, line
endings, trailing spaces), so a signature survives a round trip through a web form but not a semantic edit.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from mfmc.crypto import _statement
from mfmc.crypto.errors import (
    CryptoError,
    ForgedSignatureError,
    StaleVersionError,
    UnsignedRulesError,
    WrongKeyError,
)
from mfmc.crypto.keys import KeyPair, PublicKeys

__all__ = [
    "Revocation",
    "RuleSignature",
    "canonical_rules",
    "sign_revocation",
    "sign_rules",
    "verify_revocation",
    "verify_rules",
]

RULES_KIND = "mfmc.rules"
REVOCATION_KIND = "mfmc.revocation"


def canonical_rules(text: str | bytes) -> bytes:
    """UTF-8, no BOM, LF line endings, no trailing spaces, exactly one final newline."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ForgedSignatureError("rules are not valid UTF-8") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    return ("\n".join(lines).rstrip("\n") + "\n").encode("utf-8")


@dataclass(frozen=True)
class RuleSignature:
    """What a verified signature vouches for."""

    owner: str
    version: int
    sha256: str
    signer: str


def sign_rules(text: str | bytes, keys: KeyPair, *, version: int) -> bytes:
    """Detached signature of the owner's rules (owner = `keys.user`); store it beside the rule file."""
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CryptoError("rule version must be a positive integer")
    digest = hashlib.sha256(canonical_rules(text)).hexdigest()
    return keys._sign_statement({"kind": RULES_KIND, "owner": keys.user, "sha256": digest, "version": version})


def verify_rules(
    text: str | bytes,
    signature: bytes | str | None,
    owner_keys: PublicKeys,
    *,
    owner: str | None = None,
    min_version: int | None = None,
) -> RuleSignature:
    """Verify `signature` over `text` for `owner_keys.user` (and `owner`); returns what it vouches for.

    Raises `UnsignedRulesError` without a signature, `ForgedSignatureError` if it does not verify or names
    another owner or text, `StaleVersionError` if its version is below `min_version` (a rollback).
    """
    who = owner_keys.user
    if owner is not None and owner != who:
        raise WrongKeyError(f"rules of `{owner}` cannot be checked with the key of `{who}`")
    if signature is None or len(signature) == 0:
        raise UnsignedRulesError(
            f"rules of `{who}` are not signed", help=f"`{who}` must sign them on their client (`sign_rules`)"
        )

    def err(msg: str) -> Exception:
        return ForgedSignatureError(msg, help=f"refusing these rules; ask `{who}` to sign them again")

    what = f"signature on the rules of `{who}`"
    body = _statement.verify_statement(signature, owner_keys.sign, owner_keys.fingerprint, RULES_KIND, what, err)
    version = body.get("version")
    if body.get("owner") != who or not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise err(f"{what} is for another owner")
    digest = hashlib.sha256(canonical_rules(text)).hexdigest()
    if body.get("sha256") != digest:
        raise err(f"{what} does not match the rule text")
    if min_version is not None and version < min_version:
        raise StaleVersionError(
            f"rules of `{who}` have version {version}, older than {min_version}",
            help="refusing a rollback to older rules",
        )
    return RuleSignature(owner=who, version=version, sha256=digest, signer=owner_keys.fingerprint)


@dataclass(frozen=True)
class Revocation:
    owner: str
    friend: str
    issued: int


def sign_revocation(keys: KeyPair, friend: str, *, issued: int | None = None) -> bytes:
    """Notice from the owner telling `friend`'s client to drop the owner's embeddings (sent on unfriend)."""
    body = {
        "friend": friend,
        "issued": issued if issued is not None else time.time_ns(),
        "kind": REVOCATION_KIND,
        "owner": keys.user,
    }
    return keys._sign_statement(body)


def verify_revocation(blob: bytes | str, owner_keys: PublicKeys, *, friend: str) -> Revocation:
    """Verify a revocation notice from `owner_keys.user` addressed to `friend`."""

    def err(msg: str) -> Exception:
        return ForgedSignatureError(msg, help="the notice is ignored; nothing was dropped")

    what = f"revocation notice from `{owner_keys.user}`"
    body = _statement.verify_statement(blob, owner_keys.sign, owner_keys.fingerprint, REVOCATION_KIND, what, err)
    issued = body.get("issued")
    if body.get("owner") != owner_keys.user or not isinstance(issued, int) or isinstance(issued, bool):
        raise err(f"{what} is malformed")
    if body.get("friend") != friend:
        raise WrongKeyError(f"{what} is addressed to `{body.get('friend')}`, not `{friend}`")
    return Revocation(owner=owner_keys.user, friend=friend, issued=issued)
