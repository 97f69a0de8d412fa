"""Embedding envelopes: round trips, tampering, wrong keys, replays, reflection, staleness, `nobody`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mfmc.crypto import (
    CryptoError,
    EmbeddingSet,
    KeyPair,
    SharingRefusedError,
    StaleVersionError,
    TamperedError,
    WrongKeyError,
    WrongRecipientError,
    _codec,
    contains_secret,
    envelope_header,
    may_share,
    open_envelope,
    seal_embeddings,
)
from mfmc.errors import InvalidInputError
from tests.crypto.helpers import vectors

ALICE, BOB, CAROL = KeyPair.generate("alice"), KeyPair.generate("bob"), KeyPair.generate("carol")
EMB = EmbeddingSet("alice", 3, vectors(1))


def seal(emb: EmbeddingSet = EMB, sender: KeyPair = ALICE, to: KeyPair = BOB, **kw) -> bytes:
    return seal_embeddings(emb, sender, to.public, level=kw.pop("level", "friends"), **kw)


def relabel(envelope: bytes, **changes) -> bytes:
    """What a malicious server can do: rewrite the public header and re-encode canonically."""
    obj = json.loads(envelope)
    obj["header"].update(changes)
    return _codec.dumps(obj)


def test_round_trip_is_bit_exact():
    env = seal()
    got = open_envelope(env, BOB, ALICE.public)
    assert got == EMB and got.owner == "alice" and got.version == 3
    assert got.get("dlib").shape == (2, 4) and got.get("arcface").shape == (1, 8)
    h = envelope_header(env)
    assert (h.owner, h.recipient, h.version) == ("alice", "bob", 3)
    assert (h.owner_key, h.recipient_key) == (ALICE.fingerprint, BOB.fingerprint)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arr=arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 16)),
        elements=st.floats(-1e6, 1e6, width=32, allow_nan=False),
    ),
    version=st.integers(1, 2**40),
)
def test_round_trip_any_embedding(arr, version):
    emb = EmbeddingSet("alice", version, {"r": arr})
    env = seal(emb)
    got = open_envelope(env, BOB, ALICE.public)
    assert got.version == version and np.array_equal(got.get("r"), arr.reshape(len(arr), -1))
    assert not contains_secret(env, [emb, ALICE, BOB])


def test_every_flipped_byte_of_an_envelope_is_rejected():
    env = seal()
    for i in range(len(env)):
        bad = bytearray(env)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            open_envelope(bytes(bad), BOB, ALICE.public)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_random_corruption_is_rejected(data):
    original = seal()
    env = bytearray(original)
    i = data.draw(st.integers(0, len(env) - 1))
    env[i] ^= data.draw(st.integers(1, 255))
    truncated = original[: data.draw(st.integers(0, len(original) - 1))]
    for bad in (bytes(env), truncated):
        with pytest.raises(CryptoError):
            open_envelope(bad, BOB, ALICE.public)


def test_ciphertext_body_flips_fail_authentication():
    obj = json.loads(seal())
    box = bytearray(_codec.b64d(obj["box"], "box"))
    for i in range(len(box)):
        flipped = bytearray(box)
        flipped[i] ^= 0x80
        obj["box"] = _codec.b64e(bytes(flipped))
        with pytest.raises(TamperedError, match="failed authentication"):
            open_envelope(_codec.dumps(obj), BOB, ALICE.public)


def test_wrong_recipient_cannot_open():
    env = seal()
    with pytest.raises(WrongRecipientError, match="addressed to `bob`, not `carol`"):
        open_envelope(env, CAROL, ALICE.public)


def test_replay_to_another_recipient_is_rejected():
    # The server relabels bob's envelope for carol (even with carol's fingerprint): carol cannot open it.
    env = relabel(seal(), recipient="carol", recipient_key=CAROL.fingerprint)
    with pytest.raises(TamperedError):
        open_envelope(env, CAROL, ALICE.public)


def test_reflection_to_the_owner_is_rejected():
    # Box(alice_sk, bob_pk) == Box(bob_sk, alice_pk): without the bound header alice would accept her own
    # envelope as "bob's embedding".
    env = relabel(seal(), owner="bob", owner_key=BOB.fingerprint, recipient="alice", recipient_key=ALICE.fingerprint)
    with pytest.raises(TamperedError, match="does not match"):
        open_envelope(env, ALICE, BOB.public)


def test_wrong_sender_key_is_rejected():
    env = seal()
    with pytest.raises(WrongKeyError, match="from `alice`, not `carol`"):
        open_envelope(env, BOB, CAROL.public)
    impostor = KeyPair.generate("alice")  # mallory registers keys under alice's name
    with pytest.raises(WrongKeyError, match="another key of `alice`"):
        open_envelope(env, BOB, impostor.public)
    forged = seal(EmbeddingSet("alice", 3, vectors(9)), sender=impostor)
    with pytest.raises(WrongKeyError):
        open_envelope(forged, BOB, ALICE.public)
    forged = relabel(forged, owner_key=ALICE.fingerprint)
    with pytest.raises(TamperedError, match="failed authentication"):
        open_envelope(forged, BOB, ALICE.public)


def test_envelope_to_an_old_recipient_key_is_rejected():
    env = seal()
    new_bob = KeyPair.generate("bob")
    with pytest.raises(WrongKeyError, match="another key of `bob`"):
        open_envelope(env, new_bob, ALICE.public)


def test_version_is_bound_and_stale_versions_are_refused():
    env = seal()
    with pytest.raises(TamperedError):
        open_envelope(relabel(env, version=4), BOB, ALICE.public)
    with pytest.raises(StaleVersionError, match="version 3, older than 4"):
        open_envelope(env, BOB, ALICE.public, min_version=4)
    assert open_envelope(env, BOB, ALICE.public, min_version=3).version == 3


def test_nobody_is_never_shared():
    assert not may_share("nobody")
    for level in ("friends", "public", "everyone", "friends_of_friends", "followers"):
        assert may_share(level)
    with pytest.raises(InvalidInputError, match="unknown default level `frends`"):
        may_share("frends")
    with pytest.raises(SharingRefusedError, match="`alice` has level `nobody`"):
        seal(level="nobody")


def test_cannot_share_someone_elses_embedding_or_with_oneself():
    with pytest.raises(WrongKeyError):
        seal(EmbeddingSet("carol", 1, vectors(3)))
    with pytest.raises(CryptoError):
        seal(to=ALICE)


def test_embedding_set_validation_and_repr():
    with pytest.raises(CryptoError):
        EmbeddingSet("alice", 0, vectors(1))
    with pytest.raises(CryptoError):
        EmbeddingSet("alice", 1, {"r": np.array([np.nan, 1.0])})
    with pytest.raises(CryptoError):
        EmbeddingSet("alice", 1, {})
    text = repr(EMB) + str(EMB)
    assert "arcface(8,)" in text and "<hidden>" in text
    assert not contains_secret(text, [EMB])
    with pytest.raises(ValueError):
        EMB.get("dlib")[0, 0] = 1.0  # read-only views: holders cannot be mutated behind the keyring's back
