"""The client-side keyring: the user's sealed private keys and the friends' embeddings they decrypted.

Layout of the directory (0700; files 0600, each replaced atomically):

- `identity.sealed`: the key pair and a random storage key, sealed under the passphrase (argon2id +
  SecretBox);
- `state.box`: own enrollment, pinned friend keys, friends' embeddings and revocation tombstones,
  encrypted with the storage key (so a copied disk or backup reveals no embedding without the passphrase).

Every mutation builds the complete new state, then replaces the file once: a failed import, a forged notice or
a crash leaves the previous keyring intact. Friend keys are pinned on first use; later keys are accepted only
through a rotation notice signed by the pinned key, so the server cannot substitute keys silently.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
import nacl.utils
import numpy as np

from mfmc.crypto import _codec, _statement
from mfmc.crypto.errors import (
    CryptoError,
    ForgedSignatureError,
    KeyringError,
    MissingKeyError,
    RevokedError,
    StaleVersionError,
    TamperedError,
    WrongKeyError,
    WrongRecipientError,
)
from mfmc.crypto.keys import KdfParams, KeyPair, PublicKeys, seal_secret, unseal_secret, verify_rotation
from mfmc.crypto.sharing import EmbeddingSet, envelope_header, open_envelope, seal_embeddings
from mfmc.crypto.signing import sign_revocation, verify_revocation

__all__ = ["Keyring"]

IDENTITY = "identity.sealed"
STATE = "state.box"
STATE_FORMAT = "mfmc.keyring-state"


class Keyring:
    """A user's unlocked keyring. Create once with `create`, then `open` with the passphrase."""

    __slots__ = ("_keys", "_state", "_storage", "path")

    def __init__(self, path: Path, keys: KeyPair, storage: bytes, state: dict[str, Any]) -> None:
        self.path = path
        self._keys = keys
        self._storage = storage
        self._state = state

    def __repr__(self) -> str:
        return f"Keyring(path={str(self.path)!r}, user={self.user!r}, friends={len(self.known())})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("Keyring cannot be pickled")

    # -- lifecycle -----------------------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | os.PathLike[str], user: str, passphrase: str, *, kdf: KdfParams = KdfParams.MODERATE
    ) -> Keyring:
        """Generate the user's keys and a new keyring directory; refuses to overwrite an existing keyring."""
        root = Path(path)
        if (root / IDENTITY).exists():  # a lone state file is a leftover of an interrupted create
            raise KeyringError(f"a keyring already exists at `{root}`", help="open it, or choose another folder")
        keys = KeyPair.generate(user)
        storage = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
        sealed = seal_secret({**keys._secret_fields(), "storage": _codec.b64e(storage)}, passphrase, user=user, kdf=kdf)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        ring = cls(
            root,
            keys,
            storage,
            {"format": STATE_FORMAT, "friends": {}, "last_issued": 0, "own": None, "user": user, "v": 1},
        )
        ring._save(ring._state)
        _codec.atomic_write(root / IDENTITY, sealed)
        return ring

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str) -> Keyring:
        """Unlock an existing keyring. Wrong passphrase -> `WrongPassphraseError`; files are only read."""
        root = Path(path)
        keys, storage = cls._unseal_identity(root, passphrase)
        try:
            blob = (root / STATE).read_bytes()
        except FileNotFoundError:
            raise KeyringError(f"keyring at `{root}` has no state file", help="it was damaged; restore it") from None
        try:
            plain = nacl.secret.SecretBox(storage).decrypt(blob)
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError):
            raise TamperedError(
                f"keyring state at `{root}` failed authentication",
                help="it was modified; restore it from a backup",
            ) from None
        state = _codec.loads(plain, "keyring state")
        if state.get("format") != STATE_FORMAT or state.get("v") != 1 or state.get("user") != keys.user:
            raise TamperedError(f"keyring state at `{root}` is inconsistent")
        return cls(root, keys, storage, state)

    @staticmethod
    def _unseal_identity(root: Path, passphrase: str) -> tuple[KeyPair, bytes]:
        try:
            sealed = (root / IDENTITY).read_bytes()
        except FileNotFoundError:
            raise MissingKeyError(f"no keyring at `{root}`", help="create one first (Keyring.create)") from None
        user, payload = unseal_secret(sealed, passphrase)
        keys = KeyPair._from_secret_fields(payload, "sealed key")
        storage = _codec.b64d(payload.get("storage"), "sealed key")
        if keys.user != user or len(storage) != nacl.secret.SecretBox.KEY_SIZE:
            raise TamperedError("sealed key file is inconsistent", help="it was modified")
        return keys, storage

    def change_passphrase(self, old: str, new: str, *, kdf: KdfParams = KdfParams.MODERATE) -> None:
        """Reseal the keys under `new` after checking `old`; the state file is untouched."""
        keys, storage = self._unseal_identity(self.path, old)
        sealed = seal_secret({**keys._secret_fields(), "storage": _codec.b64e(storage)}, new, user=self.user, kdf=kdf)
        _codec.atomic_write(self.path / IDENTITY, sealed)

    def rotate_keys(self, passphrase: str, *, kdf: KdfParams = KdfParams.MODERATE) -> bytes:
        """Replace the key pair; returns the rotation notice (signed by the old key) to publish to friends.

        Afterwards the platform stores `self.public`, friends call `accept_rotation`, and this client
        re-shares (`share_with`) with every friend because old envelopes name the old key.
        """
        self._unseal_identity(self.path, passphrase)
        issued = self._peek_issued()
        new, notice = self._keys.rotate(issued=issued)
        sealed = seal_secret(
            {**new._secret_fields(), "storage": _codec.b64e(self._storage)},
            passphrase,
            user=self.user,
            kdf=kdf,
        )
        state = self._copy()
        state["last_issued"] = issued
        self._save(state)
        _codec.atomic_write(self.path / IDENTITY, sealed)
        self._state, self._keys = state, new
        return notice

    # -- own identity ----------------------------------------------------------------------------------
    @property
    def user(self) -> str:
        return self._keys.user

    @property
    def keys(self) -> KeyPair:
        return self._keys

    @property
    def public(self) -> PublicKeys:
        """Upload this to the server (the only key material that leaves the client)."""
        return self._keys.public

    @property
    def own(self) -> EmbeddingSet | None:
        own = self._state["own"]
        return (
            None
            if own is None
            else EmbeddingSet._from_obj(self.user, own["version"], own["embeddings"], "keyring state")
        )

    def enroll(self, vectors: Mapping[str, Any]) -> EmbeddingSet:
        """Store (re-)enrolled own embeddings under the next version, which supersedes the old at friends."""
        own = self._state["own"]
        emb = EmbeddingSet(self.user, 1 if own is None else own["version"] + 1, vectors)
        state = self._copy()
        state["own"] = {"embeddings": emb._to_obj(), "version": emb.version}
        self._commit(state)
        return emb

    def share_with(self, friend: PublicKeys, *, level: str) -> bytes:
        """Envelope of the current own enrollment for `friend` (pins `friend`'s key on first use)."""
        own = self.own
        if own is None:
            raise MissingKeyError(f"`{self.user}` has no enrolled embedding to share", help="enroll first")
        state = self._copy()
        self._pin(state, friend)
        issued = self._peek_issued()
        envelope = seal_embeddings(own, self._keys, friend, level=level, issued=issued)
        state["last_issued"] = issued
        self._commit(state)
        return envelope

    def revoke(self, friend: str) -> bytes:
        """Signed notice for `friend`'s client to drop our embeddings (the server deletes the envelope)."""
        issued = self._peek_issued()
        notice = sign_revocation(self._keys, friend, issued=issued)
        state = self._copy()
        state["last_issued"] = issued
        self._commit(state)
        return notice

    # -- friends -------------------------------------------------------------------------------------
    def trust(self, friend: PublicKeys) -> None:
        """Pin a friend's public keys (trust on first use). A different key later raises `WrongKeyError`."""
        state = self._copy()
        if self._pin(state, friend):
            self._commit(state)

    def pinned(self, user: str) -> PublicKeys | None:
        rec = self._state["friends"].get(user)
        return None if rec is None else PublicKeys._from_body(rec["keys"])

    def _pinned_signer(self, notice: bytes | str, kind: str, field: str, missing_help: str) -> PublicKeys:
        """The pinned key of the user a signed notice names in `field` (the notice is verified by the caller)."""
        body, _ = _statement.read_statement(
            notice, kind, lambda m: ForgedSignatureError(m, help="the notice is ignored")
        )
        name = body.get(field)
        pinned = self.pinned(name) if isinstance(name, str) else None
        if pinned is None:
            raise MissingKeyError(f"no pinned key for `{name}`" if isinstance(name, str) else "no pinned key",
                                  help=missing_help)
        return pinned

    def accept_rotation(self, notice: bytes | str) -> PublicKeys:
        """Move the pin of a friend to their new keys, if the notice is signed by the pinned key."""
        pinned = self._pinned_signer(notice, "key rotation notice", "user",
                                     "a rotation can only be checked against a key trusted before")
        new = verify_rotation(notice, pinned)
        state = self._copy()
        state["friends"][pinned.user]["keys"] = new._body()
        self._commit(state)
        return new

    def import_envelope(self, envelope: bytes | str, sender: PublicKeys | None = None) -> EmbeddingSet:
        """Verify, decrypt and store a friend's envelope; returns the stored `EmbeddingSet`.

        `sender` is the owner's public key from the server; it must match the pinned key if one exists.
        Refuses other recipients, other keys, tampering, versions older than the one held
        (`StaleVersionError`) and envelopes issued before the owner's revocation (`RevokedError`).
        On any error nothing changes.
        """
        header = envelope_header(envelope)
        if header.recipient != self.user:
            raise WrongRecipientError(
                f"envelope is addressed to `{header.recipient}`, not `{self.user}`",
                help="the server delivered another user's envelope; nothing was decrypted",
            )
        state = self._copy()
        pinned = self.pinned(header.owner)
        if sender is None and pinned is None:
            raise MissingKeyError(
                f"no public key known for `{header.owner}`",
                help=f"fetch the public keys of `{header.owner}` and pass them as `sender`",
            )
        if sender is not None:
            self._pin(state, sender)
        key = pinned or sender
        assert key is not None
        emb = open_envelope(envelope, self._keys, key)
        rec = state["friends"][header.owner]
        if rec.get("revoked") is not None and header.issued <= rec["revoked"]:
            raise RevokedError(
                f"`{header.owner}` revoked your access to their embedding",
                help=f"this envelope predates the revocation; ask `{header.owner}` to share again",
            )
        if rec.get("version") is not None:
            held = (rec["version"], rec["issued"])
            if header.version < held[0] or (header.version == held[0] and header.issued < held[1]):
                raise StaleVersionError(
                    f"envelope from `{header.owner}` (version {header.version}) is older than the one held"
                    f" (version {held[0]})",
                    help="a replay or rollback was refused; the newer copy is kept",
                )
        rec.update({"embeddings": emb._to_obj(), "issued": header.issued, "revoked": None, "version": header.version})
        self._commit(state)
        return emb

    def apply_revocation(self, notice: bytes | str) -> bool:
        """Drop a friend's embeddings on a notice signed by that friend; True if something was dropped.

        A notice older than the envelope held (the owner shared again later) is ignored and returns False.
        """
        pinned = self._pinned_signer(notice, "revocation notice", "owner", "nothing of theirs is held")
        rev = verify_revocation(notice, pinned, friend=self.user)
        state = self._copy()
        rec = state["friends"][rev.owner]
        if (rec.get("issued") is not None and rec["issued"] > rev.issued) or (
            rec.get("revoked") is not None and rec["revoked"] >= rev.issued
        ):
            return False
        dropped = rec.get("embeddings") is not None
        rec.update({"embeddings": None, "issued": None, "revoked": rev.issued, "version": None})
        self._commit(state)
        return dropped

    def drop(self, owner: str) -> bool:
        """Forget a friend's embeddings locally (e.g. this user unfriended them); keeps the pinned key."""
        rec = self._state["friends"].get(owner)
        if rec is None or rec.get("embeddings") is None:
            return False
        state = self._copy()
        state["friends"][owner].update({"embeddings": None, "issued": None, "version": None})
        self._commit(state)
        return True

    def get(self, owner: str) -> EmbeddingSet | None:
        rec = self._state["friends"].get(owner)
        if rec is None or rec.get("embeddings") is None:
            return None
        return EmbeddingSet._from_obj(owner, rec["version"], rec["embeddings"], "keyring state")

    def known(self) -> dict[str, EmbeddingSet]:
        """Friends' embeddings this client may use for identification, by owner."""
        out = {}
        for owner in sorted(self._state["friends"]):
            emb = self.get(owner)
            if emb is not None:
                out[owner] = emb
        return out

    def gallery(self, recognizer: str, *, include_self: bool = True) -> tuple[list[str], np.ndarray]:
        """Identification gallery for one recognizer: owner per row and the (N, D) float32 rows."""
        sets = list(self.known().values())
        own = self.own
        if include_self and own is not None:
            sets.insert(0, own)
        names: list[str] = []
        rows: list[np.ndarray] = []
        for emb in sets:
            if recognizer in emb.recognizers:
                block = emb.get(recognizer)
                names.extend([emb.owner] * len(block))
                rows.append(block)
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        dims = {r.shape[1] for r in rows}
        if len(dims) != 1:
            raise CryptoError(f"embeddings for `{recognizer}` have different sizes")
        return names, np.concatenate(rows).astype(np.float32)

    # -- internals -------------------------------------------------------------------------------------
    def _pin(self, state: dict[str, Any], friend: PublicKeys) -> bool:
        if friend.user == self.user:
            raise WrongKeyError(f"`{self.user}` cannot pin their own key as a friend")
        rec = state["friends"].get(friend.user)
        if rec is None:
            state["friends"][friend.user] = {
                "embeddings": None,
                "issued": None,
                "keys": friend._body(),
                "revoked": None,
                "version": None,
            }
            return True
        if rec["keys"] != friend._body():
            raise WrongKeyError(
                f"public key of `{friend.user}` differs from the one pinned",
                help=(f"if `{friend.user}` rotated keys, apply their rotation notice; otherwise the key was swapped"),
            )
        return False

    def _peek_issued(self) -> int:
        return max(time.time_ns(), int(self._state["last_issued"]) + 1)

    def _copy(self) -> dict[str, Any]:
        return _codec.loads(_codec.dumps(self._state), "keyring state")

    def _save(self, state: dict[str, Any]) -> None:
        box = nacl.secret.SecretBox(self._storage).encrypt(_codec.dumps(state))
        _codec.atomic_write(self.path / STATE, bytes(box))

    def _commit(self, state: dict[str, Any]) -> None:
        self._save(state)
        self._state = state
