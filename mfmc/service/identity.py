"""Identity and sharing: users and their client keyrings, enrollment, the graph, encrypted embedding sharing,
key rotation and signed rules (issue 7).

The client of a user is their keyring directory `<data dir>/clients/<name>/`; the server only ever receives
public keys, envelopes sealed to one friend, signed notices between clients and signed rule files.

Key rotation (`rotate_keys`): the user's client replaces its key pair and signs a rotation notice with the old
key. In one server transaction the platform stores the new public keys, re-signs the rules under the new key
(only if they verify under the old one, so text the server altered is never laundered), relays the notice to
every other user's client and deletes the envelopes addressed to the user (they were sealed to the old key).
The user's client then re-seals its embedding for every friend; each friend's client, on its next sync, moves
its pin with `accept_rotation` and re-seals its own embedding to the new key. Rules are re-signed rather than
kept valid under a key history, so the platform verifies every rule file against the one current key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfmc.crypto.errors import CryptoError, KeyringError, MissingKeyError, WrongKeyError
from mfmc.crypto.keyring import Keyring
from mfmc.crypto.keys import PublicKeys, verify_rotation
from mfmc.crypto.sharing import EmbeddingSet, envelope_header, may_share
from mfmc.crypto.signing import canonical_rules, sign_rules, verify_rules
from mfmc.errors import InvalidInputError, MfmcError, NoFaceError
from mfmc.policy import PolicySet
from mfmc.service.base import PlatformBase
from mfmc.service.imaging import load_upload
from mfmc.service.records import RotationResult
from mfmc.vocabulary import check_user_name

ROTATION = "rotation"
REVOCATION = "revocation"
PENDING_ROTATION = "rotation.pending"  # the notice of a rotation the server has not stored yet (crash recovery)
SyncReport = dict[str, list[str]]


class IdentityMixin(PlatformBase):
    """Users, enrollment, friendships and follows, embedding sharing, client sync, key rotation, signed rules."""

    # ------------------------------------------------------------------ users and enrollment
    def add_user(self, name: str) -> bool:
        """Create the user's client keyring (keys sealed under their passphrase) and register the public keys.

        Idempotent: an existing user is left unchanged and False is returned.
        """
        check_user_name(name)  # the rule language's identifier syntax, no reserved word (exit 2)
        with self.store.read() as tx:
            if tx.find_user(name) is not None:
                return False
            tx.check_name_free(name)  # unique regardless of case: keyring folders live on such disks too
        path = self._ring_path(name)
        if (path / "identity.sealed").exists():
            ring = self.keyring(name)  # a previous run crashed after creating the keyring: reuse it
        else:
            ring = Keyring.create(path, name, self._passphrase(name), kdf=self._kdf_params())
            self._rings[name] = ring
        with self.store.tx() as tx:
            _, created = tx.add_user(name, public_keys=ring.public.to_json(), fingerprint=ring.public.fingerprint)
            tx.audit(name, "user.add")
        return created

    def enroll(self, name: str, images: Sequence[object]) -> int:
        """Compute the user's embedding on their client from photos of them (largest face of each).

        The embedding stays in the user's keyring; the server only learns that the user is enrolled, and gets
        ciphertexts for the user's friends if the user's rules allow sharing. Returns the faces used.
        """
        self._require_users(name)
        if not images:
            raise InvalidInputError("enroll needs at least one image")
        vectors = []
        for src in images:
            image = load_upload(src)
            faces = [f for f in self.backend.detect(image) if f.embedding is not None]
            if not faces:
                label = src if isinstance(src, str | Path) else "an image"
                raise NoFaceError(f"no face found in `{label}`", help="use a photo where the face is clearly visible")
            largest = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            vectors.append(np.asarray(largest.embedding, dtype=np.float32))
        ring = self.keyring(name)
        ring.enroll({self.backend.recognizer: np.stack(vectors)})
        with self.store.tx() as tx:
            tx.mark_enrolled(name)
            tx.audit(name, "enroll", detail={"images": len(vectors)})
        self.sync_shares(name)
        return len(vectors)

    # ------------------------------------------------------------------ graph
    def friend(self, a: str, b: str) -> bool:
        return self._set_friendship(a, b, True)

    def unfriend(self, a: str, b: str) -> bool:
        """Remove the friendship; both ciphertexts are deleted and each ex-friend's client drops its copy."""
        return self._set_friendship(a, b, False)

    def _set_friendship(self, a: str, b: str, on: bool) -> bool:
        with self.store.tx() as tx:
            changed = tx.add_friendship(a, b) if on else tx.remove_friendship(a, b)
            tx.audit(a, "friend" if on else "unfriend", detail={"with": b})
        self.sync_shares(a)
        self.sync_shares(b)
        return changed

    def follow(self, follower: str, followee: str) -> bool:
        return self._set_follow(follower, followee, True)

    def unfollow(self, follower: str, followee: str) -> bool:
        return self._set_follow(follower, followee, False)

    def _set_follow(self, follower: str, followee: str, on: bool) -> bool:
        with self.store.tx() as tx:
            changed = tx.add_follow(follower, followee) if on else tx.remove_follow(follower, followee)
            tx.audit(follower, "follow" if on else "unfollow", detail={"followee": followee})
        return changed

    # ------------------------------------------------------------------ embedding sharing
    def sync_shares(self, owner: str) -> None:
        """Make the server hold exactly the envelopes `owner`'s rules and friendships call for.

        Shares (owner's client seals to each friend) when the owner is enrolled and their level allows it;
        otherwise deletes the envelopes and relays a signed revocation so the ex-recipient's client drops its
        copy. An envelope is current only if it carries the current enrollment and both current keys, so
        re-enrollment and key rotation (of either side) re-seal it. A friend whose server key differs from the
        pinned one without a signed rotation is not shared with. Runs on enroll, friend, unfriend, rules
        changes and rotations.
        """
        with self.store.read() as tx:
            user = tx.user(owner)
            rules = tx.rules(owner)
            level = rules.level if rules is not None else "nobody"
            friends = set(tx.friends_of(owner))
            existing = {row.recipient: row.ciphertext for row in tx.shared_embeddings_from(owner)}
            rows = {u.name: u for u in tx.users() if u.name in friends}
        wanted = friends if (user.enrolled and may_share(level)) else set()
        stale = sorted(set(existing) - wanted)
        missing: list[tuple[str, PublicKeys]] = []
        if wanted:
            ring = self.keyring(owner)
            for friend in sorted(wanted):
                pub = self._public_keys(rows[friend])
                if not _is_current(existing.get(friend), ring.own, ring.public, pub):
                    missing.append((friend, pub))
        if not missing and not stale:
            return
        ring = self.keyring(owner)
        if missing:  # a friend's relayed key rotation must move the pin before sealing to their new key
            self._receive_notices(owner, _report(), [])
        envelopes: list[tuple[str, bytes]] = []
        refused: list[str] = []
        for friend, pub in missing:
            try:
                envelopes.append((friend, ring.share_with(pub, level=_share_level(level))))
            except WrongKeyError:
                refused.append(friend)
        notices = [(friend, ring.revoke(friend)) for friend in stale]
        with self.store.tx() as tx:
            for friend, blob in envelopes:
                tx.put_shared_embedding(owner, friend, blob)
            for friend, notice in notices:
                tx.delete_shared_embedding(owner, friend)
                tx.post_notice(owner, friend, REVOCATION, notice)
            tx.audit(owner, "share", detail={"shared": [f for f, _ in envelopes], "revoked": [f for f, _ in notices],
                                             "refused": refused})
        for other in list(ring.known()):  # the owner's client forgets users who are no longer friends
            if other not in friends:
                ring.drop(other)

    def client_sync(self, name: str, *, strict: bool = False) -> SyncReport:
        """On `name`'s client: apply relayed notices (revocations, key rotations), import envelopes for `name`.

        Envelopes and notices that fail verification are refused (their owner stays unknown, so their face is
        faked); everything valid is applied. If a friend rotated keys, this client re-seals its own embedding
        to the new key. Returns who was imported, refused, revoked and rotated; with `strict`, the first
        refusal is raised afterwards (a `CryptoError` subclass naming what was wrong).
        """
        ring = self.keyring(name)
        done = _report()
        errors: list[CryptoError] = []
        self._receive_notices(name, done, errors)
        with self.store.read() as tx:
            envelopes = [(e.owner, e.ciphertext) for e in tx.shared_embeddings_for(name)]
            friends = set(tx.friends_of(name))
            users = {u.name: u for u in tx.users()}
        for owner, blob in envelopes:
            if owner not in friends or owner not in users:
                continue
            try:
                ring.import_envelope(blob, self._public_keys(users[owner]))
                done["imported"].append(owner)
            except CryptoError as err:
                done["refused"].append(owner)
                errors.append(err)
        for other in list(ring.known()):
            if other not in friends:
                ring.drop(other)
        if done["rotated"]:
            self.sync_shares(name)
        if strict and errors:
            raise errors[0]
        return done

    def _receive_notices(self, name: str, done: SyncReport, errors: list[CryptoError]) -> None:
        """Apply, in order, the signed notices relayed to `name`'s client, then delete them from the server.

        A rotation notice for a user this client never pinned is ignored: their current server key will be
        trusted on first use. Notices that fail verification change nothing.
        """
        ring = self.keyring(name)
        with self.store.read() as tx:
            notices = [(n.id, n.sender, n.kind, n.blob) for n in tx.notices_for(name)]
        if not notices:
            return
        for _, sender, kind, blob in notices:
            try:
                if kind == ROTATION:
                    ring.accept_rotation(blob)
                    done["rotated"].append(sender)
                elif ring.apply_revocation(blob):
                    done["revoked"].append(sender)
            except MissingKeyError as err:
                if kind != ROTATION:
                    done["refused"].append(sender)
                    errors.append(err)
            except CryptoError as err:
                done["refused"].append(sender)
                errors.append(err)
        with self.store.tx() as tx:
            for nid, *_ in notices:
                tx.delete_notice(nid)

    # ------------------------------------------------------------------ key rotation
    def rotate_keys(self, name: str) -> RotationResult:
        """Replace `name`'s key pair on their client and re-key everything that used the old one.

        See the module docstring for the steps. A wrong or missing passphrase raises before anything changes.
        If the process stops after the client rotated but before the server stored the new keys, running it
        again finishes that rotation (the signed notice waits in the client directory).
        """
        with self.store.read() as tx:
            old = self._public_keys(tx.user(name))
            rules = tx.rules(name)
            friends = tx.friends_of(name)
        ring = self.keyring(name)
        pending = self._ring_path(name) / PENDING_ROTATION
        if pending.exists() and old == ring.public:
            pending.unlink()  # that rotation reached the server; this is a new one
        if pending.exists():
            notice = pending.read_bytes()
            if verify_rotation(notice, old) != ring.public:
                raise KeyringError(f"the unfinished key rotation of `{name}` does not match their keyring",
                                   help="restore the keyring from a backup")
        elif old != ring.public:
            raise WrongKeyError(f"the server holds another public key for `{name}` than their client",
                                help="compare fingerprints out of band; the server's copy may have been replaced")
        else:
            notice = ring.rotate_keys(self._passphrase(name), kdf=self._kdf_params())
            _write_atomic(pending, notice)
        new = ring.public
        resigned: tuple[str, bytes, int] | None = None
        if rules is not None:
            try:
                verify_rules(rules.text, rules.signature, old, owner=name)
            except CryptoError:
                pass  # refused rules stay refused: the client never signs text the server may have altered
            else:
                resigned = (rules.text, sign_rules(rules.text, ring.keys, version=rules.version + 1),
                            rules.version + 1)
        with self.store.tx() as tx:
            tx.set_user_keys(name, public_keys=new.to_json(), fingerprint=new.fingerprint)
            if resigned is not None and rules is not None:
                text, signature, version = resigned
                tx.set_rules(name, rules.name, text, signature=signature, level=rules.level, version=version)
            for other in tx.users():
                if other.name != name:
                    tx.post_notice(name, other.name, ROTATION, notice)
            tx.delete_shared_embeddings_to(name)
            tx.bump_revision()
            tx.audit(name, "keys.rotate", detail={"old": old.fingerprint, "new": new.fingerprint})
        pending.unlink(missing_ok=True)
        self.sync_shares(name)
        with self.store.read() as tx:
            reshared = tuple(sorted(e.recipient for e in tx.shared_embeddings_from(name)))
        synced: list[str] = []
        waiting: list[str] = []
        for friend in friends:
            try:
                self.client_sync(friend)
                synced.append(friend)
            except MfmcError:  # e.g. their keyring cannot be unlocked here; they catch up on their next sync
                waiting.append(friend)
        return RotationResult(name, old.fingerprint, new.fingerprint, reshared,
                              resigned[2] if resigned else None, tuple(synced), tuple(waiting))

    # ------------------------------------------------------------------ rules (signed by the owner's client)
    def set_rules(self, text: str, name: str = "<rules>") -> str:
        """Validate a `.mfmc` file, have its owner's client sign it, and store it; returns the owner."""
        graph = self.graph()
        compiled = PolicySet.from_sources([(text, name)], graph=graph)  # raises RuleError (exit 2)
        owners = [p.owner for p in compiled]
        if len(owners) != 1:
            raise InvalidInputError(f"`{name}` must govern exactly one face", help="one `face NAME` per file")
        owner = owners[0]
        self._require_users(owner)
        level = _level(next(iter(compiled)))
        canonical = canonical_rules(text).decode("utf-8")
        with self.store.read() as tx:
            row = tx.rules(owner)
            version = (row.version + 1) if row is not None else 1
        signature = sign_rules(canonical, self.keyring(owner).keys, version=version)
        with self.store.tx() as tx:
            tx.set_rules(owner, name, canonical, signature=signature, level=level, version=version)
            tx.audit(owner, "rules.set", detail={"file": name, "version": version, "level": level})
        self.sync_shares(owner)
        return owner

    def store_unsigned_rules(self, owner: str, text: str, *, signature: bytes | None = None) -> None:
        """What a compromised server could write: rules it did not get from the owner's client (for tests)."""
        with self.store.tx() as tx:
            row = tx.rules(owner)
            tx.set_rules(owner, "<server>", text, signature=signature, level="public",
                         version=row.version if row else 1)


def _write_atomic(path: Path, data: bytes) -> None:
    """The notice is public (signed), but a torn file would block the recovery of an unfinished rotation."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def _report() -> SyncReport:
    return {"imported": [], "refused": [], "revoked": [], "rotated": []}


def _is_current(blob: bytes | None, own: EmbeddingSet | None, owner: PublicKeys, friend: PublicKeys) -> bool:
    """Whether a stored envelope already carries the owner's enrollment and both parties' current keys."""
    if blob is None or own is None:
        return False
    head = envelope_header(blob)
    return (head.version == own.version and head.owner_key == owner.fingerprint
            and head.recipient_key == friend.fingerprint)


def _share_level(level: str) -> str:
    return level if level in ("public", "everyone", "friends", "friends_of_friends", "followers", "nobody") \
        else "friends"


def _level(owner_policy: Any) -> str:
    """Sharing level of an owner: `nobody` iff the default is nobody and no statement can reveal."""
    default = str(owner_policy.default)
    if default != "nobody":
        return default
    if any(not rule.hide for rule in owner_policy.rules):
        return "friends"
    return "nobody"
