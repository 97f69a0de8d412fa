"""Key rotation and re-enrollment through the platform: friends keep identifying the user, nothing under the
rotated-out key remains on the server or is accepted from it, and the server still holds no secret."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfmc.client.client import PENDING_ROTATION
from mfmc.crypto import EmbeddingSet, envelope_header, seal_embeddings, sign_rules
from mfmc.crypto.errors import (
    CryptoError,
    MissingKeyError,
    StaleVersionError,
    WrongKeyError,
    WrongPassphraseError,
)
from mfmc.crypto.keys import KdfParams
from mfmc.crypto.scan import find_secrets, scan_paths
from mfmc.errors import StoreError
from mfmc.service import Platform
from mfmc.service.testing import GridBackend, grid_photo
from mfmc.store import Tx
from tests.platform.conftest import passphrase, social
from tests.platform.test_crypto_integration import _rows

NAMES = ["alice", "bob", "carol", "dan"]
FRIENDS = [("alice", "bob"), ("alice", "carol"), ("bob", "carol")]


def _envelopes(p: Platform) -> list[tuple[str, str, bytes]]:
    with p.store.read() as tx:
        return sorted((e.owner, e.recipient, e.ciphertext) for u in p.users() for e in tx.shared_embeddings_from(u))


def _server_fingerprint(p: Platform, name: str) -> str | None:
    with p.store.read() as tx:
        return tx.user(name).key_fingerprint


def test_rotation_rekeys_everything_and_leaks_nothing(platform: Platform) -> None:
    p = platform
    social(p, NAMES, FRIENDS)
    p.client_sync("bob")
    old = p.keyring("alice").keys
    res = p.rotate_keys("alice")
    new = p.keyring("alice").public
    assert res.old_fingerprint == old.fingerprint != res.new_fingerprint == new.fingerprint
    assert (res.reshared, res.rules_version, res.synced, res.pending) == (("bob", "carol"), 2, ("bob", "carol"), ())
    assert _server_fingerprint(p, "alice") == new.fingerprint
    # every envelope, both directions, is sealed with or to the current keys only
    pairs = [(o, r) for o, r, _ in _envelopes(p)]
    assert pairs == sorted([(a, b) for a, b in FRIENDS] + [(b, a) for a, b in FRIENDS])
    for _, _, blob in _envelopes(p):
        head = envelope_header(blob)
        assert old.fingerprint not in (head.owner_key, head.recipient_key)
    assert p.keyring("bob").pinned("alice") == new and p.keyring("carol").pinned("alice") == new
    # friends still identify alice, and alice (new keys) still identifies them
    image = grid_photo([0, 1, 2], seed=31)
    assert [f.owner for f in p.upload(image, "bob").faces] == ["alice", "bob", "carol"]
    assert sorted(p.client_sync("alice", strict=True)["imported"]) == ["bob", "carol"]
    assert [f.owner for f in p.upload(image, "alice").faces] == ["alice", "bob", "carol"]
    # the re-signed rules are enforced: friends see alice, dan (no friend) does not, nothing is refused
    res_photo = p.upload(image, "carol")
    for viewer, real in (("bob", True), ("dan", False)):
        d = p.decide(res_photo.photo_id, viewer)[0]
        assert d.reveal is real and not any("refused" in r for r in d.reasons)
    # the server holds no private key (old or new) and no plaintext embedding
    secrets: list[object] = [old]
    for name in NAMES:
        ring = p.keyring(name)
        secrets.extend([ring.keys, ring.own, *ring.known().values()])
    assert find_secrets(_rows(p), secrets) == []
    assert scan_paths([p.server_dir], secrets) == []


def test_forgeries_with_the_rotated_out_key_are_refused(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, FRIENDS)
    p.client_sync("bob")
    old = p.keyring("alice").keys
    before = {o: blob for o, r, blob in _envelopes(p) if r == "bob"}["alice"]
    with p.store.read() as tx:
        old_rules_sig = tx.rules("alice").signature
    p.rotate_keys("alice")
    held = p.keyring("bob").get("alice")
    assert held is not None
    bob_pub = p.keyring("bob").public

    def serve(blob: bytes) -> None:
        with p.store.tx() as tx:
            tx.put_shared_embedding("alice", "bob", blob)

    # an envelope sealed with the old key (fresh, or the pre-rotation one replayed) is refused
    forged = seal_embeddings(EmbeddingSet("alice", 99, {"grid": np.ones(3)}), old, bob_pub, level="friends")
    for blob in (forged, before):
        serve(blob)
        with pytest.raises(WrongKeyError):
            p.client_sync("bob", strict=True)
        assert p.keyring("bob").get("alice") == held  # nothing lost
    # rules signed with the old key, or the old signature, are refused: alice falls back to `default nobody`
    text = "face alice\ndefault public\n"
    photo = p.upload(grid_photo([0, 1], seed=32), "bob")
    for sig in (sign_rules(text, old, version=99), old_rules_sig):
        p.store_unsigned_rules("alice", text, signature=sig)
        d = p.decide(photo.photo_id, "dan")[0]
        assert d.reveal is False and any("refused" in r for r in d.reasons)
    # the rotation notice replayed after it was applied is refused and the pin stays on the new key
    pinned = p.keyring("bob").pinned("alice")
    with p.store.tx() as tx:
        notice = old._sign_statement({"kind": "mfmc.key-rotation", "user": "alice", "old": old.fingerprint,
                                      "new": old.public._body(), "issued": 1})
        tx.post_notice("alice", "bob", "rotation", notice)
    assert "alice" in p.client_sync("bob")["refused"]
    assert p.keyring("bob").pinned("alice") == pinned


def test_rotation_needs_the_passphrase_and_changes_nothing_without_it(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with Platform(root, backend=GridBackend(), passphrase=passphrase, kdf=KdfParams.FAST_INSECURE,
                  create=True) as p:
        social(p, NAMES, FRIENDS)
        fingerprint, envelopes = _server_fingerprint(p, "alice"), _envelopes(p)
    files = {f: f.read_bytes() for f in (root / "clients" / "alice").iterdir()}
    with Platform(root, backend=GridBackend(), passphrase=lambda _: "wrong", kdf=KdfParams.FAST_INSECURE) as p:
        with pytest.raises(WrongPassphraseError):
            p.rotate_keys("alice")
        assert _server_fingerprint(p, "alice") == fingerprint and _envelopes(p) == envelopes
    assert {f: f.read_bytes() for f in (root / "clients" / "alice").iterdir()} == files


def test_a_friend_offline_at_rotation_catches_up_on_their_next_sync(tmp_path: Path) -> None:
    root = tmp_path / "data"
    with Platform(root, backend=GridBackend(), passphrase=passphrase, kdf=KdfParams.FAST_INSECURE,
                  create=True) as p:
        social(p, NAMES, FRIENDS)

    def only_alice_and_carol(name: str) -> str:
        if name == "bob":
            raise MissingKeyError("no passphrase for the keyring of `bob`")
        return passphrase(name)

    with Platform(root, backend=GridBackend(), passphrase=only_alice_and_carol,
                  kdf=KdfParams.FAST_INSECURE) as p:
        res = p.rotate_keys("alice")
        assert (res.synced, res.pending) == (("carol",), ("bob",))
        old = res.old_fingerprint
        assert [(o, r) for o, r, _ in _envelopes(p) if "alice" in (o, r)] == [
            ("alice", "bob"), ("alice", "carol"), ("carol", "alice")]  # bob's envelope to the old key is gone
    with Platform(root, backend=GridBackend(), passphrase=passphrase, kdf=KdfParams.FAST_INSECURE) as p:
        done = p.client_sync("bob", strict=True)
        assert done["rotated"] == ["alice"] and "alice" in done["imported"]
        assert [f.owner for f in p.upload(grid_photo([0, 1], seed=33), "bob").faces] == ["alice", "bob"]
        for _, _, blob in _envelopes(p):
            head = envelope_header(blob)
            assert old not in (head.owner_key, head.recipient_key)
        assert sorted(p.client_sync("alice", strict=True)["imported"]) == ["bob", "carol"]


def test_an_interrupted_rotation_is_finished_by_running_it_again(sqlite_platform: Platform,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    p = sqlite_platform
    social(p, NAMES, FRIENDS)
    real = Tx.set_user_keys

    def crash(self: Tx, name: str, **kw: str) -> None:
        raise OSError("the server went away")

    monkeypatch.setattr(Tx, "set_user_keys", crash)
    old = _server_fingerprint(p, "alice")
    with pytest.raises(StoreError, match="the server went away"):
        p.rotate_keys("alice")
    client = p.keyring("alice").public.fingerprint
    assert _server_fingerprint(p, "alice") == old != client
    assert (p.clients_dir / "alice" / PENDING_ROTATION).exists()
    monkeypatch.setattr(Tx, "set_user_keys", real)
    res = p.rotate_keys("alice")  # finishes the same rotation instead of starting another
    assert (res.old_fingerprint, res.new_fingerprint) == (old, client)
    assert not (p.clients_dir / "alice" / PENDING_ROTATION).exists()
    assert p.keyring("bob").pinned("alice") == p.keyring("alice").public
    assert [f.owner for f in p.upload(grid_photo([0, 1], seed=34), "bob").faces] == ["alice", "bob"]
    assert p.rotate_keys("alice").old_fingerprint == client  # and a later run is a new rotation


def test_reenrollment_rotates_what_friends_hold(platform: Platform) -> None:
    p = platform
    social(p, NAMES, FRIENDS)
    p.client_sync("bob")
    v1 = {o: blob for o, r, blob in _envelopes(p) if r == "bob"}["alice"]
    assert p.keyring("bob").get("alice").version == 1
    p.enroll("alice", [grid_photo([0], seed=777)])
    own = p.keyring("alice").own
    assert own.version == 2
    for r in ("bob", "carol"):
        blob = {(o, rr): b for o, rr, b in _envelopes(p)}[("alice", r)]
        assert envelope_header(blob).version == 2
    assert sorted(p.client_sync("bob", strict=True)["imported"]) == ["alice", "carol"]
    assert p.keyring("bob").get("alice") == own  # the friend holds exactly the new enrollment
    with p.store.tx() as tx:  # the server replays the superseded envelope
        tx.put_shared_embedding("alice", "bob", v1)
    with pytest.raises(StaleVersionError):
        p.client_sync("bob", strict=True)
    assert p.keyring("bob").get("alice") == own
    assert [f.owner for f in p.upload(grid_photo([0, 1], seed=35), "bob").faces] == ["alice", "bob"]
    secrets: list[object] = []
    for name in NAMES:
        ring = p.keyring(name)
        secrets.extend([ring.keys, ring.own, *ring.known().values()])
    assert find_secrets(_rows(p), secrets) == []


def test_a_crypto_error_subclass_is_raised_by_strict_sync_only(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, FRIENDS)
    with p.store.tx() as tx:
        row = next(e for e in tx.shared_embeddings_for("bob") if e.owner == "alice")
        row.ciphertext = row.ciphertext.replace(b'"box":"', b'"box":"A', 1)
        tx.save(row)
    assert p.client_sync("bob")["refused"] == ["alice"]
    with pytest.raises(CryptoError):
        p.client_sync("bob", strict=True)


def test_rotation_never_re_signs_rules_the_server_altered(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, FRIENDS)
    p.store_unsigned_rules("alice", "face alice\ndefault public\n", signature=None)  # altered before rotation
    res = p.rotate_keys("alice")
    assert res.rules_version is None
    with p.store.read() as tx:
        assert tx.rules("alice").signature is None
    photo = p.upload(grid_photo([0, 1], seed=36), "bob")
    d = p.decide(photo.photo_id, "dan")[0]
    # bob's client cannot verify alice's (server-altered) rules, so her face never leaves it real
    assert d.reveal is False and photo.faces[0].state == "client_faked"
