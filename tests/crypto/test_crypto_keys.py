"""Key pairs and passphrase-sealed private keys."""

from __future__ import annotations

import copy
import inspect
import pickle

import nacl.pwhash
import pytest

from mfmc.crypto import (
    CryptoError,
    KdfParams,
    KeyPair,
    Keyring,
    KeyringError,
    MissingKeyError,
    PublicKeys,
    TamperedError,
    WrongPassphraseError,
    contains_secret,
)
from mfmc.crypto import keys as keys_module
from mfmc.errors import MfmcError
from tests.crypto.helpers import FAST, snapshot


def test_seal_round_trip_and_public_json():
    keys = KeyPair.generate("alice")
    sealed = keys.seal("correct horse", kdf=FAST)
    again = KeyPair.unseal(sealed, "correct horse")
    assert again.public == keys.public
    assert PublicKeys.from_json(keys.public.to_json()) == keys.public
    assert len(keys.fingerprint) == 32
    assert not contains_secret(sealed, [keys, "correct horse"])
    assert not contains_secret(keys.public.to_json(), [keys])


def test_passphrase_is_unicode_normalised():
    keys = KeyPair.generate("alice")
    sealed = keys.seal("caf\u00e9", kdf=FAST)
    assert KeyPair.unseal(sealed, "cafe\u0301").public == keys.public


def test_wrong_passphrase_is_clear_and_leaves_file_unchanged(ring, tmp_path):
    alice = ring("alice", "right one")
    before = snapshot(tmp_path / "alice")
    with pytest.raises(WrongPassphraseError) as info:
        Keyring.open(tmp_path / "alice", "wrong one")
    err = info.value
    assert err.exit_code == 1
    assert err.message == "wrong passphrase for the key of `alice`"
    assert "unchanged" in (err.help or "")
    assert "wrong one" not in err.render() and not contains_secret(err.render(), [alice.keys])
    assert err.__cause__ is None and err.__suppress_context__
    assert snapshot(tmp_path / "alice") == before
    assert Keyring.open(tmp_path / "alice", "right one").public == alice.public


def test_every_flipped_byte_of_a_sealed_key_is_rejected():
    keys = KeyPair.generate("alice")
    sealed = keys.seal("pw", kdf=FAST)
    for i in range(len(sealed)):
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            KeyPair.unseal(bytes(bad), "pw")


def test_forged_argon_parameters_are_bounded():
    keys = KeyPair.generate("alice")
    sealed = keys.seal("pw", kdf=FAST)
    huge = sealed.replace(b'"mem":8192', b'"mem":%d' % (1 << 40))
    with pytest.raises(TamperedError, match="out of range"):
        KeyPair.unseal(huge, "pw")
    with pytest.raises(TamperedError):
        keys.seal("pw", kdf=KdfParams(1, 10))


def test_production_default_is_moderate():
    argon = nacl.pwhash.argon2id
    moderate = KdfParams.MODERATE
    assert (moderate.opslimit, moderate.memlimit) == (argon.OPSLIMIT_MODERATE, argon.MEMLIMIT_MODERATE)
    for fn in (KeyPair.seal, Keyring.create, Keyring.change_passphrase, Keyring.rotate_keys, keys_module.seal_secret):
        assert inspect.signature(fn).parameters["kdf"].default is KdfParams.MODERATE


def test_empty_passphrase_and_bad_user_are_refused():
    with pytest.raises(WrongPassphraseError, match="empty"):
        KeyPair.generate("alice").seal("", kdf=FAST)
    for bad in ["", " alice", "a\nb", "x" * 200]:
        with pytest.raises(CryptoError):
            KeyPair.generate(bad)


def test_secret_holders_never_show_key_material(alice):
    keys = alice.keys
    texts = [repr(keys), str(keys), f"{keys}", repr(alice), str(alice), repr(keys.public), repr(alice.own)]
    for text in texts:
        assert not contains_secret(text, [keys, alice.own]), text
    assert "<hidden>" in repr(keys)
    with pytest.raises(TypeError):
        pickle.dumps(keys)
    with pytest.raises(TypeError):
        pickle.dumps(alice)
    assert copy.deepcopy(keys) is keys


def test_change_passphrase(ring, tmp_path):
    alice = ring("alice", "old")
    with pytest.raises(WrongPassphraseError):
        alice.change_passphrase("not old", "new", kdf=FAST)
    alice.change_passphrase("old", "new", kdf=FAST)
    with pytest.raises(WrongPassphraseError):
        Keyring.open(tmp_path / "alice", "old")
    assert Keyring.open(tmp_path / "alice", "new").public == alice.public


def test_keyring_create_twice_and_missing(ring, tmp_path):
    ring("alice")
    with pytest.raises(KeyringError, match="already exists"):
        Keyring.create(tmp_path / "alice", "alice", "pw", kdf=FAST)
    with pytest.raises(MissingKeyError, match="no keyring"):
        Keyring.open(tmp_path / "nobody-here", "pw")


def test_errors_are_in_the_project_tree():
    for name in (
        "WrongPassphraseError",
        "TamperedError",
        "WrongKeyError",
        "RevokedError",
        "MissingKeyError",
        "UnsignedRulesError",
        "ForgedSignatureError",
        "StaleVersionError",
        "SharingRefusedError",
    ):
        cls = getattr(__import__("mfmc.crypto", fromlist=[name]), name)
        assert issubclass(cls, CryptoError) and issubclass(cls, MfmcError)
