"""Per-user key pairs and passphrase-sealed private keys.

Each user has an X25519 key (embedding envelopes, `nacl.public.Box`) and an Ed25519 key (rule files,
revocation and rotation notices). Only `PublicKeys` ever leaves the client; the private half lives on the
client, sealed at rest with a key derived from the passphrase by argon2id (`nacl.pwhash`) under `nacl.secret.SecretBox`.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import Any, ClassVar

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from mfmc.crypto import _codec, _statement
from mfmc.crypto.errors import (
    CryptoError,
    ForgedSignatureError,
    TamperedError,
    WrongKeyError,
    WrongPassphraseError,
)

__all__ = [
    "KdfParams",
    "KeyPair",
    "PublicKeys",
    "check_user",
    "seal_secret",
    "unseal_secret",
    "verify_rotation",
]

_argon = nacl.pwhash.argon2id
SEALED_FORMAT = "mfmc.sealed-key"
ROTATION_KIND = "mfmc.key-rotation"


def check_user(user: object) -> str:
    """User names are bound into every ciphertext and signature, so they must be plain, printable text."""
    if not isinstance(user, str) or not (1 <= len(user) <= 128) or not user.isprintable() or user != user.strip():
        raise CryptoError(
            "invalid user name for a key", help="use the platform user name, 1 to 128 printable characters"
        )
    return user


@dataclass(frozen=True)
class KdfParams:
    """argon2id cost. Production uses `MODERATE`; tests pass `FAST_INSECURE` explicitly to stay fast."""

    opslimit: int
    memlimit: int

    MODERATE: ClassVar[KdfParams]
    FAST_INSECURE: ClassVar[KdfParams]

    def check(self) -> None:
        """Bounded on both sides: too low is weak, too high lets a forged file exhaust memory."""
        if not (_argon.OPSLIMIT_MIN <= self.opslimit <= _argon.OPSLIMIT_SENSITIVE) or not (
            _argon.MEMLIMIT_MIN <= self.memlimit <= _argon.MEMLIMIT_SENSITIVE
        ):
            raise TamperedError("argon2id parameters are out of range", help="the sealed key file was modified")


KdfParams.MODERATE = KdfParams(_argon.OPSLIMIT_MODERATE, _argon.MEMLIMIT_MODERATE)
KdfParams.FAST_INSECURE = KdfParams(_argon.OPSLIMIT_MIN, _argon.MEMLIMIT_MIN)


def _fingerprint(box: bytes, sign: bytes) -> str:
    return nacl.hash.blake2b(
        box + sign, digest_size=16, person=b"mfmc-pubkey-fp", encoder=nacl.encoding.HexEncoder
    ).decode("ascii")


@dataclass(frozen=True)
class PublicKeys:
    """What the server stores for a user: the X25519 and Ed25519 public keys, bound to the user name."""

    user: str
    box: bytes
    sign: bytes

    def __post_init__(self) -> None:
        check_user(self.user)
        if not isinstance(self.box, bytes) or len(self.box) != 32:
            raise CryptoError(f"invalid encryption public key for `{self.user}`")
        if not isinstance(self.sign, bytes) or len(self.sign) != 32:
            raise CryptoError(f"invalid signing public key for `{self.user}`")

    @property
    def fingerprint(self) -> str:
        """Short stable id (32 hex chars) users can compare out of band."""
        return _fingerprint(self.box, self.sign)

    def to_json(self) -> str:
        """Canonical JSON the server stores (public data only)."""
        return _codec.dumps(self._body()).decode("ascii")

    def _body(self) -> dict[str, Any]:
        return {
            "box": _codec.b64e(self.box),
            "format": "mfmc.public-keys",
            "sign": _codec.b64e(self.sign),
            "user": self.user,
            "v": 1,
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> PublicKeys:
        obj = _codec.loads(text, "public keys")
        if obj.get("format") != "mfmc.public-keys" or obj.get("v") != 1:
            raise TamperedError("public keys are malformed")
        return cls._from_body(obj)

    @classmethod
    def _from_body(cls, obj: dict[str, Any]) -> PublicKeys:
        user = _codec.require(obj, "user", str, "public keys")
        return cls(
            user=user,
            box=_codec.b64d(obj.get("box"), "public keys"),
            sign=_codec.b64d(obj.get("sign"), "public keys"),
        )

    def __repr__(self) -> str:
        return f"PublicKeys(user={self.user!r}, fingerprint={self.fingerprint!r})"


class KeyPair:
    """A user's private keys. Never printed, pickled or logged: `repr` shows the user and fingerprint only."""

    __slots__ = ("_box", "_sign", "user")

    def __init__(self, user: str, box: nacl.public.PrivateKey, sign: nacl.signing.SigningKey) -> None:
        self.user = check_user(user)
        self._box = box
        self._sign = sign

    @classmethod
    def generate(cls, user: str) -> KeyPair:
        return cls(user, nacl.public.PrivateKey.generate(), nacl.signing.SigningKey.generate())

    @property
    def public(self) -> PublicKeys:
        return PublicKeys(self.user, bytes(self._box.public_key), bytes(self._sign.verify_key))

    @property
    def fingerprint(self) -> str:
        return self.public.fingerprint

    def __repr__(self) -> str:
        return f"KeyPair(user={self.user!r}, fingerprint={self.fingerprint!r}, private=<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("KeyPair cannot be pickled: private keys are only stored sealed (KeyPair.seal)")

    def __copy__(self) -> KeyPair:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> KeyPair:
        return self

    # -- secret material, for this package only -------------------------------------------------
    def _secret_fields(self) -> dict[str, str]:
        return {
            "box_sk": _codec.b64e(bytes(self._box)),
            "sign_seed": _codec.b64e(bytes(self._sign)),
            "user": self.user,
        }

    @classmethod
    def _from_secret_fields(cls, obj: dict[str, Any], what: str) -> KeyPair:
        user = _codec.require(obj, "user", str, what)
        box = _codec.b64d(obj.get("box_sk"), what)
        seed = _codec.b64d(obj.get("sign_seed"), what)
        if len(box) != 32 or len(seed) != 32:
            raise TamperedError(f"{what} is malformed")
        return cls(user, nacl.public.PrivateKey(box), nacl.signing.SigningKey(seed))

    def _secret_bytes(self) -> list[tuple[str, bytes]]:
        """Raw private material (for `mfmc.crypto.scan` leak checks only)."""
        sk = self._sign
        return [
            ("x25519 private key", bytes(self._box)),
            ("ed25519 seed", bytes(sk)),
            ("ed25519 expanded key", bytes(sk._signing_key)),
        ]

    # -- sealing -----------------------------------------------------------------------------------
    def seal(self, passphrase: str, *, kdf: KdfParams = KdfParams.MODERATE) -> bytes:
        """Encrypt the private keys under `passphrase` (argon2id + SecretBox); safe to write to disk."""
        return seal_secret(self._secret_fields(), passphrase, user=self.user, kdf=kdf)

    @classmethod
    def unseal(cls, blob: bytes, passphrase: str) -> KeyPair:
        """Inverse of `seal`. A wrong passphrase raises `WrongPassphraseError`; `blob` is never modified."""
        user, payload = unseal_secret(blob, passphrase)
        keys = cls._from_secret_fields(payload, "sealed key")
        if keys.user != user:
            raise TamperedError("sealed key file is inconsistent", help="it was modified")
        return keys

    # -- rotation ----------------------------------------------------------------------------------
    def rotate(self, *, issued: int | None = None) -> tuple[KeyPair, bytes]:
        """New keys plus a notice signed by the old signing key, so friends can move their pin safely."""
        new = KeyPair.generate(self.user)
        pub = new.public
        body = {
            "issued": issued if issued is not None else time.time_ns(),
            "kind": ROTATION_KIND,
            "new": pub._body(),
            "old": self.fingerprint,
            "user": self.user,
        }
        return new, _statement.sign_statement(self._sign, self.fingerprint, body)

    def _sign_statement(self, body: dict[str, Any]) -> bytes:
        return _statement.sign_statement(self._sign, self.fingerprint, body)


def verify_rotation(blob: bytes, pinned: PublicKeys) -> PublicKeys:
    """Check a rotation notice against the keys we trust for its user; returns the new public keys."""

    def err(msg: str) -> Exception:
        return ForgedSignatureError(msg, help=f"keep trusting the current key of `{pinned.user}`")

    body = _statement.verify_statement(
        blob, pinned.sign, pinned.fingerprint, ROTATION_KIND, f"key rotation notice for `{pinned.user}`", err
    )
    if body.get("user") != pinned.user or body.get("old") != pinned.fingerprint:
        raise WrongKeyError(f"key rotation notice is not for `{pinned.user}`")
    new = body.get("new")
    if not isinstance(new, dict):
        raise err("key rotation notice is malformed")
    try:
        pub = PublicKeys._from_body(new)
    except CryptoError:
        raise err("key rotation notice is malformed") from None
    if pub.user != pinned.user:
        raise WrongKeyError(f"key rotation notice is not for `{pinned.user}`")
    return pub


# -- generic passphrase sealing ---------------------------------------------------------------------
def _pw(passphrase: str) -> bytes:
    if not isinstance(passphrase, str) or not passphrase:
        raise WrongPassphraseError("the passphrase is empty", help="choose a non-empty passphrase")
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def seal_secret(
    payload: dict[str, Any],
    passphrase: str,
    *,
    user: str,
    kdf: KdfParams = KdfParams.MODERATE,
) -> bytes:
    """Seal a JSON payload under a passphrase; the user name is bound inside and outside."""
    kdf.check()
    salt = nacl.utils.random(_argon.SALTBYTES)
    key = _argon.kdf(
        nacl.secret.SecretBox.KEY_SIZE, _pw(passphrase), salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit
    )
    header = _sealed_header(user, kdf, salt)
    # The whole public header is repeated inside: argon2id ignores memlimit below 1 KiB granularity, so a
    # relabelled parameter could otherwise still decrypt.
    box = nacl.secret.SecretBox(key).encrypt(_codec.dumps({"header": header, "payload": payload}))
    return _codec.dumps({**header, "box": _codec.b64e(bytes(box))})


def _sealed_header(user: str, kdf: KdfParams, salt: bytes) -> dict[str, Any]:
    return {
        "format": SEALED_FORMAT,
        "kdf": "argon2id",
        "mem": kdf.memlimit,
        "ops": kdf.opslimit,
        "salt": _codec.b64e(salt),
        "user": user,
        "v": 1,
    }


def unseal_secret(blob: bytes, passphrase: str) -> tuple[str, dict[str, Any]]:
    """Open `seal_secret` output: (user, payload). Wrong passphrase or any modification -> CryptoError."""
    what = "sealed key file"
    obj = _codec.loads(blob, what)
    if obj.get("format") != SEALED_FORMAT or obj.get("v") != 1 or obj.get("kdf") != "argon2id" or len(obj) != 8:
        raise TamperedError(f"{what} is malformed")
    user = _codec.require(obj, "user", str, what)
    kdf = KdfParams(_codec.require(obj, "ops", int, what), _codec.require(obj, "mem", int, what))
    kdf.check()
    salt = _codec.b64d(obj.get("salt"), what)
    box = _codec.b64d(obj.get("box"), what)
    if len(salt) != _argon.SALTBYTES:
        raise TamperedError(f"{what} is malformed")
    key = _argon.kdf(
        nacl.secret.SecretBox.KEY_SIZE, _pw(passphrase), salt, opslimit=kdf.opslimit, memlimit=kdf.memlimit
    )
    try:
        plain = nacl.secret.SecretBox(key).decrypt(box)
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise WrongPassphraseError(
            f"wrong passphrase for the key of `{user}`",
            help="the key file is unchanged; try again (if the passphrase is right, the file was modified)",
        ) from None
    inner = _codec.loads(plain, what)
    if inner.get("header") != _sealed_header(user, kdf, salt) or not isinstance(inner.get("payload"), dict):
        raise TamperedError(f"{what} is inconsistent", help="it was modified")
    return user, inner["payload"]
