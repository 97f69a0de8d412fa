"""The leak scanner finds secrets in every common encoding, has no false positives on ciphertexts, and a
simulated server database holds no plaintext embedding and no private key after a full scenario."""

from __future__ import annotations

import base64
import json
import sqlite3
import traceback

import numpy as np
import pytest

from mfmc.crypto import (
    CryptoError,
    EmbeddingSet,
    KeyPair,
    Keyring,
    contains_secret,
    envelope_header,
    find_secrets,
    scan_paths,
    sign_rules,
    verify_rules,
)
from tests.crypto.helpers import FAST, vectors

EMB = EmbeddingSet("alice", 1, {"arcface": np.random.default_rng(7).normal(size=512).astype(np.float32)})
ROW = EMB.get("arcface")[0]
KEYS = KeyPair.generate("alice")
NOISE = np.random.default_rng(8).bytes(4096)


@pytest.mark.parametrize(
    "leak",
    [
        ROW.tobytes(),
        ROW.astype(">f4").tobytes(),
        ROW.astype(np.float64).tobytes(),
        ROW[100:110].tobytes(),  # a partial run of components
        ROW.tobytes().hex().encode(),
        base64.b64encode(ROW.tobytes()),
        base64.b64encode(b"x" + ROW.tobytes()),  # base64 at another alignment
        base64.b64encode(b"xy" + ROW.tobytes()),
        json.dumps(ROW.tolist()).encode(),
        json.dumps({"embedding": [round(float(x), 8) for x in ROW]}).encode(),
        str(ROW).encode(),
        str(list(ROW)).encode(),
        np.array2string(ROW[:12]).encode(),
    ],
)
def test_embedding_leaks_are_found(leak):
    assert contains_secret(NOISE + leak + NOISE, [EMB])
    assert contains_secret(leak, [ROW])


@pytest.mark.parametrize(
    "encode", [bytes, bytes.hex, lambda b: base64.b64encode(b).decode(), lambda b: base64.urlsafe_b64encode(b).decode()]
)
def test_private_key_leaks_are_found(encode):
    for _, raw in KEYS._secret_bytes():
        text = encode(raw)
        blob = text if isinstance(text, bytes) else text.encode()
        assert contains_secret(NOISE[:100] + blob + NOISE[:7], [KEYS])


def test_no_false_positives_and_labels_reveal_nothing():
    other = EmbeddingSet("bob", 1, {"arcface": np.random.default_rng(9).normal(size=512).astype(np.float32)})
    assert not contains_secret(NOISE, [EMB, KEYS])
    assert not contains_secret(json.dumps(other.get("arcface")[0].tolist()), [EMB])
    assert not contains_secret(KEYS.public.to_json(), [KEYS])
    labels = find_secrets(ROW.tobytes() + bytes(KEYS._secret_bytes()[0][1]), [EMB, KEYS])
    assert labels == ["x25519 private key of `alice` (raw)", "embedding `alice`/arcface row 0 (float32 raw)"]
    assert not contains_secret("\n".join(labels), [EMB, KEYS])
    with pytest.raises(TypeError):
        contains_secret(b"", [object()])


def test_errors_and_tracebacks_reveal_no_secret(tmp_path):
    # passphrases come from variables: a traceback quotes source lines, and those must not be the "leak"
    pa, pb, wrong = (base64.b64encode(np.random.default_rng(i).bytes(12)).decode() for i in range(3))
    alice = Keyring.create(tmp_path / "a", "alice", pa, kdf=FAST)
    bob = Keyring.create(tmp_path / "b", "bob", pb, kdf=FAST)
    alice.enroll(vectors(1))
    env = bytearray(alice.share_with(bob.public, level="friends"))
    env[-10] ^= 1
    failures = []
    for op in (
        lambda: bob.import_envelope(bytes(env), sender=alice.public),
        lambda: Keyring.open(tmp_path / "a", wrong),
        lambda: verify_rules("face alice\n", b"{}", alice.public),
    ):
        with pytest.raises(CryptoError) as info:
            op()
        failures.append(info.value.render() + "".join(traceback.format_exception(info.value)))
    assert find_secrets("\n".join(failures), [alice, bob, pa, pb, wrong]) == []


def test_server_database_holds_no_plaintext_after_a_full_scenario(tmp_path):
    """A miniature server (SQLite) sees exactly what the platform will store; the scan finds nothing."""
    users = {n: Keyring.create(tmp_path / "clients" / n, n, f"{n}-pw", kdf=FAST) for n in ("alice", "bob", "carol")}
    for i, ring in enumerate(users.values()):
        ring.enroll(vectors(20 + i, dims=(128,)))
    db = sqlite3.connect(tmp_path / "server.db")
    db.executescript("""create table users(name text primary key, public_keys text, fingerprint text);
                        create table envelopes(owner text, recipient text, version int, blob blob);
                        create table rules(owner text, text text, signature blob);
                        create table notices(recipient text, blob blob);""")
    for name, ring in users.items():
        db.execute("insert into users values (?, ?, ?)", (name, ring.public.to_json(), ring.public.fingerprint))

    def share(owner: str, friend: str) -> None:
        env = users[owner].share_with(users[friend].public, level="friends")
        h = envelope_header(env)
        db.execute("delete from envelopes where owner=? and recipient=?", (h.owner, h.recipient))
        db.execute("insert into envelopes values (?, ?, ?, ?)", (h.owner, h.recipient, h.version, env))

    for a, b in [("alice", "bob"), ("bob", "alice"), ("alice", "carol"), ("carol", "alice")]:
        share(a, b)
    rules = "face alice\ndefault friends\nhide from carol\n"
    sig = sign_rules(rules, users["alice"].keys, version=1)
    verify_rules(rules, sig, users["alice"].public)
    db.execute("insert into rules values (?, ?, ?)", ("alice", rules, sig))
    users["alice"].enroll(vectors(30, dims=(128,)))  # re-enrollment rotates what friends hold
    share("alice", "bob")
    share("alice", "carol")
    db.execute("delete from envelopes where owner='alice' and recipient='carol'")  # unfriend
    db.execute("insert into notices values (?, ?)", ("carol", users["alice"].revoke("carol")))
    db.commit()
    # friends' clients fetch and decrypt; carol applies the revocation
    for owner, recipient, blob in db.execute("select owner, recipient, blob from envelopes"):
        users[recipient].import_envelope(blob, sender=users[owner].public)
    for recipient, blob in db.execute("select recipient, blob from notices"):
        users[recipient].apply_revocation(blob)
    db.close()

    assert users["bob"].get("alice") == users["alice"].own and users["carol"].get("alice") is None
    all_secrets = [*users.values(), *(f"{n}-pw" for n in users)]
    all_secrets += [EmbeddingSet("alice", 1, vectors(20, dims=(128,)))]  # the superseded enrollment too
    assert scan_paths([tmp_path / "server.db"], all_secrets) == []
    # positive control: the same scan catches a plaintext embedding written by a careless server
    db = sqlite3.connect(tmp_path / "server.db")
    db.execute("insert into notices values (?, ?)", ("bob", json.dumps(users["alice"].own.get("arcface").tolist())))
    db.commit()
    db.close()
    assert scan_paths([tmp_path], all_secrets)
