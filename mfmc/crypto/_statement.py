"""Ed25519-signed statements: canonical JSON bodies with a `kind` for domain separation.

Rule signatures, revocation notices and key-rotation notices share this one format, so that a signature made
for one purpose can never be accepted for another (the `kind` is inside the signed bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nacl.exceptions
import nacl.signing

from mfmc.crypto import _codec

FORMAT = "mfmc.statement"


def sign_statement(key: nacl.signing.SigningKey, signer: str, body: dict[str, Any]) -> bytes:
    """Sign `body` (which must carry `kind`); `signer` is the signer's public-key fingerprint."""
    message = _codec.dumps(body)
    signature = key.sign(message).signature
    return _codec.dumps({"body": body, "format": FORMAT, "signer": signer, "sig": _codec.b64e(signature), "v": 1})


def read_statement(blob: bytes | str, what: str, error: Callable[[str], Exception]) -> tuple[dict[str, Any], str]:
    """Parse without verifying: (body, signer fingerprint); only to pick the key for `verify_statement`."""
    obj = _codec.loads(blob, what, error)
    if obj.get("format") != FORMAT or obj.get("v") != 1 or set(obj) != {"body", "format", "signer", "sig", "v"}:
        raise error(f"{what} is malformed")
    body = _codec.require(obj, "body", dict, what, error)
    signer = _codec.require(obj, "signer", str, what, error)
    return body, signer


def verify_statement(
    blob: bytes | str,
    verify_key: bytes,
    fingerprint: str,
    kind: str,
    what: str,
    error: Callable[[str], Exception],
) -> dict[str, Any]:
    """Verify the signature with `verify_key` and check signer and kind; returns the body."""
    obj = _codec.loads(blob, what, error)
    body, signer = read_statement(blob, what, error)
    signature = _codec.b64d(obj.get("sig"), what, error)
    if signer != fingerprint:
        raise error(f"{what} was signed by another key")
    try:
        nacl.signing.VerifyKey(verify_key).verify(_codec.dumps(body), signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise error(f"{what} has an invalid signature") from None
    if body.get("kind") != kind:
        raise error(f"{what} is not a `{kind}` statement")
    return body
