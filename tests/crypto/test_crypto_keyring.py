"""The client keyring: import, re-enrollment, revocation, key rotation, pinning, and "nothing lost"."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from mfmc.crypto import (
    CryptoError,
    ForgedSignatureError,
    KeyPair,
    Keyring,
    MissingKeyError,
    RevokedError,
    SharingRefusedError,
    StaleVersionError,
    TamperedError,
    WrongKeyError,
    WrongRecipientError,
    find_secrets,
    sign_revocation,
)
from tests.crypto.helpers import FAST, snapshot, vectors


def test_share_import_and_gallery(alice, bob, carol, tmp_path):
    bob.import_envelope(alice.share_with(bob.public, level="friends"), sender=alice.public)
    bob.import_envelope(carol.share_with(bob.public, level="public"), sender=carol.public)
    assert set(bob.known()) == {"alice", "carol"} and bob.get("alice") == alice.own
    owners, rows = bob.gallery("dlib")
    assert owners == ["bob", "bob", "alice", "alice", "carol", "carol"] and rows.shape == (6, 4)
    assert rows.dtype == np.float32 and np.array_equal(rows[2:4], alice.own.get("dlib"))
    assert bob.gallery("dlib", include_self=False)[0] == ["alice", "alice", "carol", "carol"]
    names, empty = bob.gallery("unknown")
    assert names == [] and empty.shape == (0, 0)
    reopened = Keyring.open(tmp_path / "bob", "bob passphrase")
    assert reopened.known() == bob.known() and reopened.own == bob.own


def test_files_are_private_and_encrypted_at_rest(alice, bob, tmp_path):
    bob.import_envelope(alice.share_with(bob.public, level="friends"), sender=alice.public)
    root = tmp_path / "bob"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    files = snapshot(root)
    assert set(files) == {"identity.sealed", "state.box"}  # no temp files left behind
    for name, blob in files.items():
        assert stat.S_IMODE((root / name).stat().st_mode) == 0o600
        assert find_secrets(blob, [bob.keys, bob.own, alice.own, "bob passphrase"]) == [], name


def test_failed_imports_change_nothing(alice, bob, carol, tmp_path):
    env = alice.share_with(bob.public, level="friends")
    bob.trust(alice.public)
    before = snapshot(tmp_path / "bob")
    for i in range(0, len(env)):
        bad = bytearray(env)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            bob.import_envelope(bytes(bad))
    with pytest.raises(WrongRecipientError):
        carol.import_envelope(env, sender=alice.public)
    with pytest.raises(WrongKeyError, match="differs from the one pinned"):
        bob.import_envelope(env, sender=KeyPair.generate("alice").public)  # server swaps alice's key
    assert snapshot(tmp_path / "bob") == before and bob.known() == {}
    assert bob.import_envelope(env) == alice.own


def test_missing_sender_key(alice, bob):
    with pytest.raises(MissingKeyError, match="no public key known for `alice`"):
        bob.import_envelope(alice.share_with(bob.public, level="friends"))


def test_reenrollment_supersedes_and_old_versions_are_refused(alice, bob):
    v1 = alice.share_with(bob.public, level="friends")
    bob.import_envelope(v1, sender=alice.public)
    new = alice.enroll(vectors(11))
    assert new.version == 2
    v2 = alice.share_with(bob.public, level="friends")
    assert bob.import_envelope(v2).version == 2 and bob.get("alice") == new
    with pytest.raises(StaleVersionError, match=r"version 1\) is older than the one held \(version 2\)"):
        bob.import_envelope(v1)
    again = alice.share_with(bob.public, level="friends")  # same version, later issue: accepted
    assert bob.import_envelope(again) == new
    with pytest.raises(StaleVersionError):
        bob.import_envelope(v2)
    assert bob.get("alice") == new


def test_revocation_drops_and_refuses_old_envelopes(alice, bob, tmp_path):
    env = alice.share_with(bob.public, level="friends")
    bob.import_envelope(env, sender=alice.public)
    notice = alice.revoke("bob")
    assert bob.apply_revocation(notice) is True
    assert bob.get("alice") is None and "alice" not in bob.gallery("dlib")[0]
    assert Keyring.open(tmp_path / "bob", "bob passphrase").get("alice") is None
    assert find_secrets(b"".join(snapshot(tmp_path / "bob").values()), [alice.own]) == []
    with pytest.raises(RevokedError, match="`alice` revoked your access"):
        bob.import_envelope(env)  # the server (or an attacker) replays the old envelope
    assert bob.apply_revocation(notice) is False  # idempotent
    # re-friending: a fresh envelope is accepted, and the stale notice cannot drop it again
    bob.import_envelope(alice.share_with(bob.public, level="friends"))
    assert bob.get("alice") == alice.own
    assert bob.apply_revocation(notice) is False and bob.get("alice") == alice.own


def test_forged_or_misaddressed_revocations_drop_nothing(alice, bob, carol, tmp_path):
    bob.import_envelope(alice.share_with(bob.public, level="friends"), sender=alice.public)
    before = snapshot(tmp_path / "bob")
    mallory = KeyPair.generate("alice")
    with pytest.raises(ForgedSignatureError):
        bob.apply_revocation(sign_revocation(mallory, "bob"))
    with pytest.raises(WrongKeyError, match="addressed to `carol`, not `bob`"):
        bob.apply_revocation(alice.revoke("carol"))
    with pytest.raises(MissingKeyError):
        bob.apply_revocation(carol.revoke("bob"))
    notice = bytearray(alice.revoke("bob"))
    for i in range(len(notice)):
        bad = bytearray(notice)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            bob.apply_revocation(bytes(bad))
    assert snapshot(tmp_path / "bob") == before and bob.get("alice") == alice.own


def test_owner_key_rotation(alice, bob, tmp_path):
    old_env = alice.share_with(bob.public, level="friends")
    bob.import_envelope(old_env, sender=alice.public)
    old_public = alice.public
    notice = alice.rotate_keys("alice passphrase", kdf=FAST)
    assert alice.public != old_public
    assert Keyring.open(tmp_path / "alice", "alice passphrase").public == alice.public
    new_env = alice.share_with(bob.public, level="friends")
    with pytest.raises(WrongKeyError, match="differs from the one pinned"):
        bob.import_envelope(new_env, sender=alice.public)  # not before the signed rotation notice
    forged = KeyPair.generate("alice").rotate()[1]
    with pytest.raises(ForgedSignatureError):
        bob.accept_rotation(forged)
    assert bob.accept_rotation(notice) == alice.public
    assert bob.import_envelope(new_env) == alice.own
    with pytest.raises(WrongKeyError, match="another key of `alice`"):
        bob.import_envelope(old_env)


def test_recipient_key_rotation_needs_a_fresh_share(alice, bob):
    env = alice.share_with(bob.public, level="friends")
    notice = bob.rotate_keys("bob passphrase", kdf=FAST)
    with pytest.raises(WrongKeyError, match="another key of `bob`"):
        bob.import_envelope(env, sender=alice.public)
    with pytest.raises(WrongKeyError, match="differs from the one pinned"):
        alice.share_with(bob.public, level="friends")  # alice pinned bob's old key when she shared
    alice.accept_rotation(notice)
    assert bob.import_envelope(alice.share_with(bob.public, level="friends"), sender=alice.public) == alice.own


def test_rotation_requires_the_passphrase(alice, tmp_path):
    before = snapshot(tmp_path / "alice")
    with pytest.raises(CryptoError):
        alice.rotate_keys("wrong", kdf=FAST)
    assert snapshot(tmp_path / "alice") == before


def test_nobody_user_shares_nothing(ring, bob, tmp_path):
    nobody = ring("nora")
    nobody.enroll(vectors(5))
    before = snapshot(tmp_path / "nora")
    with pytest.raises(SharingRefusedError, match="never shared"):
        nobody.share_with(bob.public, level="nobody")
    assert snapshot(tmp_path / "nora") == before


def test_share_without_enrollment_and_local_drop(ring, alice, bob):
    empty = ring("erin")
    with pytest.raises(MissingKeyError, match="no enrolled embedding"):
        empty.share_with(bob.public, level="friends")
    bob.import_envelope(alice.share_with(bob.public, level="friends"), sender=alice.public)
    assert bob.drop("alice") is True and bob.drop("alice") is False and bob.get("alice") is None


def test_tampered_state_file_is_detected(alice, tmp_path):
    path = tmp_path / "alice" / "state.box"
    blob = bytearray(path.read_bytes())
    blob[40] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(TamperedError, match="failed authentication"):
        Keyring.open(tmp_path / "alice", "alice passphrase")
