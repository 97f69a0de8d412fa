"""Proof of key possession for logging in to the server: the client signs the server's challenge.

The server issues an opaque challenge; the user's client signs a statement binding the challenge, the user name
and the server's origin with its Ed25519 key (`kind` = `mfmc.auth`, so a login signature can never pass for a rule
signature or a notice, and vice versa). The server verifies it against the user's stored public key.
"""

from __future__ import annotations

from mfmc.crypto import _statement
from mfmc.crypto.errors import ForgedSignatureError
from mfmc.crypto.keys import KeyPair, PublicKeys

AUTH_KIND = "mfmc.auth"

__all__ = ["AUTH_KIND", "sign_challenge", "verify_challenge"]


def sign_challenge(keys: KeyPair, challenge: str, *, audience: str) -> bytes:
    """Client side: a signed answer to `challenge` for the server named `audience`."""
    return keys._sign_statement({"audience": audience, "challenge": challenge, "kind": AUTH_KIND, "user": keys.user})


def verify_challenge(answer: bytes | str, keys: PublicKeys, challenge: str, *, audience: str) -> None:
    """Server side: raises `ForgedSignatureError` unless `answer` is `keys.user`'s signature of `challenge`."""

    def err(msg: str) -> Exception:
        return ForgedSignatureError(msg, help="log in again with the user's own keyring")

    what = f"login of `{keys.user}`"
    body = _statement.verify_statement(answer, keys.sign, keys.fingerprint, AUTH_KIND, what, err)
    if body.get("user") != keys.user or body.get("challenge") != challenge or body.get("audience") != audience:
        raise err(f"{what} answers another challenge")
