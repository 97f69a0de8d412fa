"""End-to-end encrypted friend embeddings ("envelopes").

A face embedding is biometric data, so only the owner's friends' clients may hold it in plaintext. The owner's
client seals its `EmbeddingSet` for one friend with `Box(owner_sk, friend_pk)`; the server stores and routes
the envelope by its public header but cannot read it. The header (owner, recipient, both key fingerprints,
enrollment version, issue time) is repeated inside the ciphertext and compared on open, which binds it: an
envelope replayed to another recipient, reflected back to its owner (Box keys are symmetric) or relabelled as
another version is refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.public
import numpy as np

from mfmc.crypto import _codec
from mfmc.crypto.errors import (
    CryptoError,
    SharingRefusedError,
    StaleVersionError,
    TamperedError,
    WrongKeyError,
    WrongRecipientError,
)
from mfmc.crypto.keys import KeyPair, PublicKeys, check_user
from mfmc.vocabulary import DefaultAudience

__all__ = [
    "EmbeddingSet",
    "EnvelopeHeader",
    "envelope_header",
    "may_share",
    "open_envelope",
    "seal_embeddings",
]

ENVELOPE_FORMAT = "mfmc.envelope"
PAYLOAD_FORMAT = "mfmc.embeddings"


def may_share(default_level: DefaultAudience | str) -> bool:
    """Whether an owner with this `default` level may share embeddings with friends at all.

    A `nobody` user is always faked on the uploader's client and never identified, so nobody may hold the
    embedding (paper Fig. 2). Every other level needs friends' clients to recognise the face at upload time.
    """
    return DefaultAudience.parse(str(default_level)) is not DefaultAudience.NOBODY


class EmbeddingSet:
    """One owner's enrolled embeddings, per recognizer name, as float32 arrays (D,) or (K, D).

    `repr` shows names and shapes only; values never appear in messages, logs or tracebacks.
    """

    __slots__ = ("_vectors", "owner", "version")

    def __init__(self, owner: str, version: int, vectors: Mapping[str, Any]) -> None:
        self.owner = check_user(owner)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CryptoError("enrollment version must be a positive integer")
        self.version = version
        if not vectors:
            raise CryptoError(f"no embeddings given for `{owner}`")
        out: dict[str, np.ndarray] = {}
        for name, value in vectors.items():
            if not isinstance(name, str) or not name or not name.isprintable():
                raise CryptoError("invalid recognizer name in embeddings")
            arr = np.array(value, dtype=np.float32, copy=True)
            if arr.ndim not in (1, 2) or arr.size == 0 or not np.all(np.isfinite(arr)):
                raise CryptoError(f"embedding `{name}` of `{owner}` must be a finite (D,) or (K, D) array")
            arr.setflags(write=False)
            out[name] = arr
        self._vectors = dict(sorted(out.items()))

    @property
    def recognizers(self) -> tuple[str, ...]:
        return tuple(self._vectors)

    def get(self, recognizer: str) -> np.ndarray:
        """Read-only (K, D) float32 rows for one recognizer; KeyError if not enrolled for it."""
        arr = self._vectors[recognizer]
        return arr.reshape(1, -1) if arr.ndim == 1 else arr

    def items(self) -> list[tuple[str, np.ndarray]]:
        return list(self._vectors.items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmbeddingSet):
            return NotImplemented
        return (self.owner, self.version, self.recognizers) == (
            other.owner,
            other.version,
            other.recognizers,
        ) and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(self._vectors.values(), other._vectors.values(), strict=True)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self._vectors.items())
        return f"EmbeddingSet(owner={self.owner!r}, version={self.version}, recognizers=[{shapes}], values=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("EmbeddingSet cannot be pickled: embeddings are only stored encrypted")

    def with_version(self, version: int) -> EmbeddingSet:
        return EmbeddingSet(self.owner, version, self._vectors)

    def _to_obj(self) -> dict[str, Any]:
        return {
            name: {"data": _codec.b64e(arr.astype("<f4").tobytes()), "dtype": "<f4", "shape": list(arr.shape)}
            for name, arr in self._vectors.items()
        }

    @classmethod
    def _from_obj(cls, owner: str, version: int, obj: Any, what: str) -> EmbeddingSet:
        if not isinstance(obj, dict) or not obj:
            raise TamperedError(f"{what} is malformed")
        vectors = {}
        for name, item in obj.items():
            if not isinstance(item, dict) or item.get("dtype") != "<f4":
                raise TamperedError(f"{what} is malformed")
            shape = item.get("shape")
            if (
                not isinstance(shape, list)
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
                or len(shape) not in (1, 2)
            ):
                raise TamperedError(f"{what} is malformed")
            data = _codec.b64d(item.get("data"), what)
            if len(data) != 4 * int(np.prod(shape)):
                raise TamperedError(f"{what} is malformed")
            vectors[name] = np.frombuffer(data, dtype="<f4").reshape(shape)
        try:
            return cls(owner, version, vectors)
        except CryptoError:
            raise TamperedError(f"{what} is malformed") from None

    def _secret_arrays(self) -> list[tuple[str, np.ndarray]]:
        return [(f"embedding `{self.owner}`/{k}", v) for k, v in self._vectors.items()]


@dataclass(frozen=True)
class EnvelopeHeader:
    """The public, routable part of an envelope; the server indexes and deletes by it."""

    owner: str
    recipient: str
    version: int
    issued: int
    owner_key: str
    recipient_key: str

    def _obj(self) -> dict[str, Any]:
        return {
            "issued": self.issued,
            "owner": self.owner,
            "owner_key": self.owner_key,
            "recipient": self.recipient,
            "recipient_key": self.recipient_key,
            "version": self.version,
        }


def _parse_header(obj: Any, what: str) -> EnvelopeHeader:
    if not isinstance(obj, dict) or set(obj) != {
        "issued",
        "owner",
        "owner_key",
        "recipient",
        "recipient_key",
        "version",
    }:
        raise TamperedError(f"{what} is malformed")
    h = EnvelopeHeader(
        owner=_codec.require(obj, "owner", str, what),
        recipient=_codec.require(obj, "recipient", str, what),
        version=_codec.require(obj, "version", int, what),
        issued=_codec.require(obj, "issued", int, what),
        owner_key=_codec.require(obj, "owner_key", str, what),
        recipient_key=_codec.require(obj, "recipient_key", str, what),
    )
    if h.version < 1 or h.issued < 0:
        raise TamperedError(f"{what} is malformed")
    return h


def _outer(blob: bytes | str) -> tuple[EnvelopeHeader, bytes]:
    what = "envelope"
    obj = _codec.loads(blob, what)
    if obj.get("format") != ENVELOPE_FORMAT or obj.get("v") != 1 or set(obj) != {"box", "format", "header", "v"}:
        raise TamperedError("envelope is malformed", help="unsupported format or modified in storage")
    return _parse_header(obj["header"], what), _codec.b64d(obj.get("box"), what)


def envelope_header(blob: bytes | str) -> EnvelopeHeader:
    """Read the routing header without any key (server side). Not authenticated until `open_envelope`."""
    return _outer(blob)[0]


def seal_embeddings(
    embeddings: EmbeddingSet, sender: KeyPair, recipient: PublicKeys, *, level: str, issued: int | None = None
) -> bytes:
    """Encrypt the owner's embeddings for one friend. Refuses a `nobody` owner (`SharingRefusedError`).

    `level` is the owner's `default` level from their rules; `issued` orders envelopes of the same version
    (defaults to the clock in ns; the keyring passes a monotonic counter).
    """
    if not may_share(level):
        raise SharingRefusedError(
            f"`{sender.user}` has level `nobody`: the embedding is never shared",
            help="only users with another default level share with friends",
        )
    if embeddings.owner != sender.user:
        raise WrongKeyError(f"embeddings of `{embeddings.owner}` cannot be shared with the key of `{sender.user}`")
    if recipient.user == sender.user:
        raise CryptoError(f"`{sender.user}` cannot share with themself")
    header = EnvelopeHeader(
        owner=sender.user,
        recipient=recipient.user,
        version=embeddings.version,
        issued=issued if issued is not None else time.time_ns(),
        owner_key=sender.fingerprint,
        recipient_key=recipient.fingerprint,
    )
    plain = _codec.dumps(
        {"embeddings": embeddings._to_obj(), "format": PAYLOAD_FORMAT, "header": header._obj(), "v": 1}
    )
    box = nacl.public.Box(sender._box, nacl.public.PublicKey(recipient.box)).encrypt(plain)
    return _codec.dumps({"box": _codec.b64e(bytes(box)), "format": ENVELOPE_FORMAT, "header": header._obj(), "v": 1})


def open_envelope(
    blob: bytes | str, recipient: KeyPair, sender: PublicKeys, *, min_version: int | None = None
) -> EmbeddingSet:
    """Verify and decrypt an envelope on the friend's client.

    Raises `WrongRecipientError` if it is addressed to someone else, `WrongKeyError` if sealed with/to other
    keys than `sender`/`recipient`, `TamperedError` on any modification, `StaleVersionError` below
    `min_version`. Stateless: the `Keyring` adds replay, rollback and revocation checks.
    """
    header, box = _outer(blob)
    if header.recipient != recipient.user:
        raise WrongRecipientError(
            f"envelope is addressed to `{header.recipient}`, not `{recipient.user}`",
            help="the server delivered another user's envelope; nothing was decrypted",
        )
    if header.owner != sender.user:
        raise WrongKeyError(f"envelope is from `{header.owner}`, not `{sender.user}`")
    if header.recipient_key != recipient.fingerprint:
        raise WrongKeyError(
            f"envelope was sealed to another key of `{recipient.user}`",
            help=f"ask `{header.owner}` to share again with your current key",
        )
    if header.owner_key != sender.fingerprint:
        raise WrongKeyError(
            f"envelope was sealed with another key of `{sender.user}`",
            help=f"check the current public key of `{sender.user}`",
        )
    try:
        plain = nacl.public.Box(recipient._box, nacl.public.PublicKey(sender.box)).decrypt(box)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise TamperedError(
            f"envelope from `{sender.user}` failed authentication",
            help=f"it was modified, or not sealed by `{sender.user}` for you",
        ) from None
    inner = _codec.loads(plain, "envelope payload")
    if inner.get("format") != PAYLOAD_FORMAT or inner.get("v") != 1 or inner.get("header") != header._obj():
        raise TamperedError(
            f"envelope from `{sender.user}` has a header that does not match its contents",
            help="it was relabelled or replayed",
        )
    if min_version is not None and header.version < min_version:
        raise StaleVersionError(
            f"envelope from `{sender.user}` has version {header.version}, older than {min_version}",
            help="a newer enrollment exists; the old one is refused",
        )
    return EmbeddingSet._from_obj(header.owner, header.version, inner.get("embeddings"), "envelope payload")
