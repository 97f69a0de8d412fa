"""Rule-file signatures: the platform refuses unsigned, forged, re-targeted and rolled-back rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmc.crypto import (
    ForgedSignatureError,
    KeyPair,
    SignatureError,
    StaleVersionError,
    UnsignedRulesError,
    WrongKeyError,
    canonical_rules,
    sign_revocation,
    sign_rules,
    verify_revocation,
    verify_rules,
)

ALICE, BOB = KeyPair.generate("alice"), KeyPair.generate("bob")
RULES = 'face alice\ndefault friends\nhide from bob\nreveal to friends_of_friends when album == "wedding"\n'


def test_round_trip_and_what_it_vouches_for():
    sig = sign_rules(RULES, ALICE, version=2)
    got = verify_rules(RULES, sig, ALICE.public, owner="alice", min_version=2)
    assert (got.owner, got.version, got.signer) == ("alice", 2, ALICE.fingerprint)
    assert verify_rules(RULES.encode(), sig, ALICE.public).sha256 == got.sha256


def test_encoding_noise_is_canonicalised_but_edits_are_not():
    sig = sign_rules(RULES, ALICE, version=1)
    noisy = "\ufeff" + RULES.replace("\n", "  \r\n") + "\n\n"
    assert canonical_rules(noisy) == canonical_rules(RULES)
    verify_rules(noisy, sig, ALICE.public)
    for edit in (
        RULES.replace("hide from bob", "reveal to bob"),
        RULES + "reveal to everyone\n",
        RULES.replace("wedding", "Wedding"),
        RULES.replace("friends\n", "public\n", 1),
    ):
        with pytest.raises(ForgedSignatureError, match="does not match the rule text"):
            verify_rules(edit, sig, ALICE.public)


def test_unsigned_rules_are_refused():
    for missing in (None, b"", ""):
        with pytest.raises(UnsignedRulesError, match="rules of `alice` are not signed"):
            verify_rules(RULES, missing, ALICE.public)


def test_every_flipped_byte_of_a_signature_is_rejected():
    sig = sign_rules(RULES, ALICE, version=1)
    for i in range(len(sig)):
        bad = bytearray(sig)
        bad[i] ^= 0x01
        with pytest.raises(SignatureError):
            verify_rules(RULES, bytes(bad), ALICE.public)


def test_every_flipped_byte_of_the_rule_text_is_rejected():
    sig = sign_rules(RULES, ALICE, version=1)
    raw = RULES.encode()
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        with pytest.raises(SignatureError):
            verify_rules(bytes(bad), sig, ALICE.public)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_signature_corruption_is_rejected(data):
    sig = bytearray(sign_rules(RULES, ALICE, version=1))
    i = data.draw(st.integers(0, len(sig) - 1))
    sig[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SignatureError):
        verify_rules(RULES, bytes(sig), ALICE.public)


def test_signature_by_someone_else_is_forged():
    sig = sign_rules(RULES, BOB, version=1)  # bob signs text that claims `face alice`
    with pytest.raises(ForgedSignatureError, match="signed by another key"):
        verify_rules(RULES, sig, ALICE.public)
    impostor = KeyPair.generate("alice")
    with pytest.raises(ForgedSignatureError):
        verify_rules(RULES, sign_rules(RULES, impostor, version=1), ALICE.public)
    with pytest.raises(WrongKeyError):
        verify_rules(RULES, sign_rules(RULES, ALICE, version=1), ALICE.public, owner="bob")


def test_rollback_to_older_rules_is_refused():
    old = sign_rules(RULES, ALICE, version=1)
    with pytest.raises(StaleVersionError, match="version 1, older than 2"):
        verify_rules(RULES, old, ALICE.public, min_version=2)


def test_signatures_are_not_interchangeable_between_purposes():
    rules_sig = sign_rules(RULES, ALICE, version=1)
    with pytest.raises(ForgedSignatureError, match=r"not a `mfmc\.revocation` statement"):
        verify_revocation(rules_sig, ALICE.public, friend="bob")
    notice = sign_revocation(ALICE, "bob")
    with pytest.raises(ForgedSignatureError):
        verify_rules(RULES, notice, ALICE.public)
    assert verify_revocation(notice, ALICE.public, friend="bob").owner == "alice"
    with pytest.raises(WrongKeyError, match="addressed to `bob`, not `carol`"):
        verify_revocation(notice, ALICE.public, friend="carol")
