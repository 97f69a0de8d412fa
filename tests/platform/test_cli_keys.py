"""`mfmc keys rotate|sync` and the CLI's crypto errors: exit code 1 and one `error:` line, no traceback, and
nothing printed that contains key material or an embedding (scanned with `mfmc.crypto.scan`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mfmc.crypto import Keyring
from mfmc.crypto.scan import find_secrets
from mfmc.service.imaging import encode_png
from mfmc.service.testing import grid_photo

PASS = "cli test passphrase"


def _secrets(data: Path, seen: list[object]) -> list[object]:
    out = list(seen)
    for ring_dir in sorted((data / "clients").iterdir()):
        ring = Keyring.open(ring_dir, PASS)
        out.extend([ring.keys, ring.own, *ring.known().values()])
    return [s for s in out if s is not None]


def _expect_error(code: int, capsys: pytest.CaptureFixture[str], wanted: str) -> str:
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert code == 1, cap.err
    assert lines[0].startswith("error: ") and wanted in lines[0], cap.err
    assert [ln for ln in lines if ln.startswith("error")] == [lines[0]]
    assert all(ln.startswith("  help: ") for ln in lines[1:])
    assert "Traceback" not in cap.err + cap.out
    return cap.out + cap.err


def _db(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(data / "server" / "mfmc.db")


def test_keys_commands_and_their_errors(cli, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    assert cli("init") == 0
    assert cli("user", "add", "alice", "bob", "carol") == 0
    for k, name in enumerate(["alice", "bob", "carol"]):
        (tmp_path / f"{name}.png").write_bytes(encode_png(grid_photo([k], seed=60 + k)))
        assert cli("enroll", name, f"{name}.png") == 0
        (tmp_path / f"{name}.mfmc").write_text(f"face {name}\ndefault friends\n")
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "carol.mfmc") == 0
    assert cli("friend", "alice", "bob") == 0
    assert cli("keys", "sync", "bob") == 0
    old = Keyring.open(data / "clients" / "alice", PASS).keys
    printed = capsys.readouterr().out

    assert cli("keys", "rotate", "alice") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rotated: alice ({old.fingerprint} -> ") and "re-shared with: bob" in out
    assert "re-signed as version 2" in out
    printed += out
    assert cli("keys", "sync", "bob") == 0
    printed += capsys.readouterr().out

    # wrong passphrase: nothing rotates
    monkeypatch.setenv("MFMC_PASSPHRASE_ALICE", "not the passphrase")
    printed += _expect_error(cli("keys", "rotate", "alice"), capsys, "wrong passphrase for the key of `alice`")
    monkeypatch.delenv("MFMC_PASSPHRASE_ALICE")

    # tampered ciphertext: bob's client refuses it and says so
    with _db(data) as db:
        (blob,) = db.execute("select ciphertext from shared_embeddings where owner='alice' and recipient='bob'"
                             ).fetchone()
        at = blob.index(b'"box":"') + 20
        flipped = blob[:at] + (b"B" if blob[at:at + 1] != b"B" else b"C") + blob[at + 1:]
        db.execute("update shared_embeddings set ciphertext=? where owner='alice' and recipient='bob'", (flipped,))
    printed += _expect_error(cli("keys", "sync", "bob"), capsys, "envelope from `alice` failed authentication")
    with _db(data) as db:
        db.execute("update shared_embeddings set ciphertext=? where owner='alice' and recipient='bob'", (blob,))
    assert cli("keys", "sync", "bob") == 0

    # revoked friend: after unfriending, the server replays the last envelope; bob's client refuses it
    assert cli("unfriend", "alice", "bob") == 0
    assert cli("keys", "sync", "bob") == 0  # applies alice's signed revocation
    with _db(data) as db:
        db.execute("insert into friendships (user_a, user_b, created_at) values ('alice', 'bob', '2024-01-01')")
        db.execute("insert into shared_embeddings (owner, recipient, ciphertext, created_at) "
                   "values ('alice', 'bob', ?, '2024-01-01')", (blob,))
    printed += _expect_error(cli("keys", "sync", "bob"), capsys, "`alice` revoked your access to their embedding")

    # missing key: no passphrase available, and a client whose keyring is gone
    monkeypatch.delenv("MFMC_PASSPHRASE")
    printed += _expect_error(cli("keys", "sync", "carol"), capsys, "no passphrase for the keyring of `carol`")
    monkeypatch.setenv("MFMC_PASSPHRASE", PASS)
    secrets = _secrets(data, [old])
    (data / "clients" / "carol" / "identity.sealed").unlink()
    printed += _expect_error(cli("keys", "rotate", "carol"), capsys, "no keyring at")

    assert find_secrets(printed.encode(), secrets) == []
