"""Issue 7 on the platform: the server never holds a plaintext embedding or a private key; rules are enforced
only when their owner signed them; ciphertexts are revoked on unfriending; tampering reveals nothing."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from mfmc.crypto.scan import find_secrets, scan_paths
from mfmc.service import Platform
from mfmc.service.testing import grid_photo
from tests.platform.conftest import crop, social

NAMES = ["alice", "bob", "carol", "dan"]


def _rows(p: Platform) -> bytes:
    out = []
    with p.store.engine.connect() as conn:
        for table in ("users", "friendships", "follows", "rule_files", "photos", "faces", "rendered_fakes",
                      "audit_log", "shared_embeddings", "notices", "meta", "schema_version"):
            for row in conn.execute(text(f"select * from {table}")):
                for value in row:
                    out.append(bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode())
    return b"\n".join(out)


def test_server_holds_no_plaintext_embedding_or_private_key(platform: Platform) -> None:
    social(platform, NAMES, [("alice", "bob"), ("bob", "carol"), ("alice", "dan")])
    image = grid_photo([0, 1, 2, 3], seed=21)
    for model in ("rules", "explicit", "proxy"):
        res = platform.upload(image, "alice", model=model)
        for viewer in NAMES:
            platform.render(res.photo_id, viewer)
    secrets = []
    for name in NAMES:
        ring = platform.keyring(name)
        secrets.append(ring.keys)
        secrets.append(ring.own)
        secrets.extend(ring.known().values())
    with platform.store.read() as tx:
        assert tx.count(__import__("mfmc.store", fromlist=["SharedEmbedding"]).SharedEmbedding) == 6
    assert find_secrets(_rows(platform), secrets) == []
    assert scan_paths([platform.server_dir], secrets) == []


def test_unsigned_or_forged_rules_are_refused_and_the_face_is_faked(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")])
    image = grid_photo([0, 1], seed=22)
    res = p.upload(image, "alice")
    assert [d.reveal for d in p.decide(res.photo_id, "bob")] == [True, True]
    # the server (or an attacker with database access) rewrites bob's rules to reveal him to everyone
    with p.store.read() as tx:
        sig = tx.rules("bob").signature
    p.store_unsigned_rules("bob", "face bob\ndefault public\n", signature=sig)  # a signature over other text
    decisions = p.decide(res.photo_id, "dan")
    assert decisions[1].reveal is False
    assert any("refused" in r for r in decisions[1].reasons)
    p.store_unsigned_rules("bob", "face bob\ndefault public\n", signature=None)
    view = p.render(res.photo_id, "dan")
    assert not np.array_equal(crop(view.image, res.faces[1].box), crop(image, res.faces[1].box))
    # bob's own client signs: accepted again
    p.set_rules("face bob\ndefault public\n", "bob.mfmc")
    assert p.decide(res.photo_id, "dan")[1].reveal is True


def test_unfriending_deletes_ciphertexts_and_the_ex_friend_forgets(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob"), ("alice", "carol")])
    p.client_sync("alice")
    assert set(p.keyring("alice").known()) == {"bob", "carol"}
    p.unfriend("alice", "bob")
    with p.store.read() as tx:
        pairs = {(e.owner, e.recipient) for e in tx.shared_embeddings_from("alice")}
        pairs |= {(e.owner, e.recipient) for e in tx.shared_embeddings_from("bob")}
    assert pairs == {("alice", "carol")}
    p.client_sync("alice")
    p.client_sync("bob")
    assert set(p.keyring("alice").known()) == {"carol"}
    assert "alice" not in p.keyring("bob").known()
    # and bob is no longer identified in alice's uploads: his face is faked on her client
    res = p.upload(grid_photo([0, 1, 2], seed=23), "alice")
    assert [f.owner for f in res.faces] == ["alice", None, "carol"]


def test_nobody_rules_revoke_shared_embeddings(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")])
    p.set_rules("face bob\ndefault nobody\n", "bob.mfmc")
    with p.store.read() as tx:
        assert tx.shared_embeddings_from("bob") == []
    res = p.upload(grid_photo([0, 1], seed=24), "alice")
    assert [f.state for f in res.faces] == ["server", "client_faked"]


def test_tampered_ciphertext_is_refused_and_the_face_stays_unknown(sqlite_platform: Platform) -> None:
    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")])
    with p.store.tx() as tx:
        row = next(e for e in tx.shared_embeddings_for("alice") if e.owner == "bob")
        blob = bytearray(row.ciphertext)
        blob[len(blob) // 2] ^= 0x01
        row.ciphertext = bytes(blob)
        tx.save(row)
    done = p.client_sync("alice")
    assert "bob" in done["refused"]
    res = p.upload(grid_photo([0, 1], seed=25), "alice")
    assert [f.owner for f in res.faces] == ["alice", None]


@pytest.mark.parametrize("wrong", ["wrong passphrase"])
def test_wrong_passphrase_is_a_clear_error(sqlite_platform: Platform, wrong: str) -> None:
    from mfmc.crypto.errors import WrongPassphraseError
    from mfmc.crypto.keyring import Keyring

    social(sqlite_platform, ["alice"], [])
    with pytest.raises(WrongPassphraseError):
        Keyring.open(sqlite_platform.clients_dir / "alice", wrong)


def test_one_owners_rules_that_stop_compiling_affect_only_that_owner(sqlite_platform: Platform) -> None:
    from mfmc.crypto import canonical_rules, sign_rules

    p = sqlite_platform
    social(p, NAMES, [("alice", "bob")], rules={"alice": "face alice\ndefault public\n",
                                                  "bob": "face bob\ndefault public\n"})
    res = p.upload(grid_photo([0, 1], seed=23), "alice")
    assert [d.reveal for d in p.decide(res.photo_id, "dan")] == [True, True]
    # bob's stored file is signed by bob but no longer compiles (as a graph change could cause)
    broken = canonical_rules("face bob\ngroup family = alice\nreveal to famly\n").decode()
    with p.store.read() as tx:
        version = tx.rules("bob").version
    p.store_unsigned_rules("bob", broken, signature=sign_rules(broken, p.keyring("bob").keys, version=version))
    decisions = p.decide(res.photo_id, "dan")
    assert decisions[0].reveal is True  # alice's rules still apply
    assert decisions[1].reveal is False  # bob's face fails closed
    assert any("no longer compile" in r for r in decisions[1].reasons)
