"""Commands are all or nothing (issue 12 item 6): several rule files, one owner in two files, a wrong or missing
passphrase in `rules set`, `friend`, `unfriend` and `upload` change nothing and exit with the README's codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mfmc.service import Platform
from mfmc.service.imaging import encode_png
from mfmc.service.testing import grid_photo
from tests.platform.conftest import cli_environment, run_cli


@pytest.fixture(scope="module")
def users_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three enrolled users made through the CLI once for the module (their photos and rule files beside)."""
    root = tmp_path_factory.mktemp("users")
    with pytest.MonkeyPatch.context() as monkeypatch:
        cli_environment(monkeypatch, root)
        assert run_cli("init") == 0
        assert run_cli("user", "add", "alice", "bob", "carol") == 0
        for k, name in enumerate(["alice", "bob", "carol"]):
            (root / f"{name}.png").write_bytes(encode_png(grid_photo([k], seed=20 + k)))
            (root / f"{name}.mfmc").write_text(f"face {name}\ndefault friends\n")
            assert run_cli("enroll", name, f"{name}.png") == 0
    return root


@pytest.fixture
def users(cli, tmp_path: Path, users_once: Path) -> Path:
    """A copy of `users_once` in this test's own folder, which `cli` works in."""
    shutil.copytree(users_once, tmp_path, dirs_exist_ok=True)
    return tmp_path / "data"


def _state(data: Path) -> tuple:
    with Platform(data) as p, p.store.read() as tx:
        rules = tuple((r.owner, r.version, r.text) for r in tx.all_rules())
        shares = tuple(sorted((e.owner, e.recipient, e.ciphertext) for u in ("alice", "bob", "carol")
                              for e in tx.shared_embeddings_from(u)))
        return rules, tuple(sorted(tx.friendships())), shares, len(tx.photos())


def test_rules_set_stores_all_files_or_none(cli, users: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.mfmc").write_text("face carol\ndefault sometimes\n")
    before = _state(users)
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "broken.mfmc") == 2
    assert "sometimes" in capsys.readouterr().err
    assert _state(users) == before  # alice's and bob's valid files were not stored either
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "carol.mfmc") == 0
    assert [r[0] for r in _state(users)[0]] == ["alice", "bob", "carol"]


def test_one_owner_in_two_files_names_both(cli, users: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "alice-too.mfmc").write_text("face alice\ndefault nobody\n")
    before = _state(users)
    capsys.readouterr()
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "alice-too.mfmc") == 2
    err = capsys.readouterr().err
    assert "alice.mfmc" in err and "alice-too.mfmc" in err and "twice" in err, err
    assert _state(users) == before


def test_rules_set_with_one_wrong_passphrase_stores_nothing(cli, users: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = _state(users)
    monkeypatch.setenv("MFMC_PASSPHRASE_CAROL", "not carol's passphrase")
    capsys.readouterr()
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "carol.mfmc") == 1
    assert capsys.readouterr().err.startswith("error: ")
    assert _state(users) == before


@pytest.mark.parametrize("command", ["friend", "unfriend"])
def test_friendship_changes_need_both_clients(cli, users: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str], command: str) -> None:
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc") == 0
    if command == "unfriend":
        assert cli("friend", "alice", "bob") == 0
    before = _state(users)
    assert before[2] or command == "friend"  # unfriend: envelopes exist and must stay
    monkeypatch.setenv("MFMC_PASSPHRASE_BOB", "not bob's passphrase")
    capsys.readouterr()
    assert cli(command, "alice", "bob") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bob" in err, err
    assert _state(users) == before  # no friendship change committed, no envelope sealed or revoked
    monkeypatch.delenv("MFMC_PASSPHRASE_BOB")
    assert cli(command, "alice", "bob") == 0
    assert _state(users)[1] == ((("alice", "bob"),) if command == "friend" else ())


@pytest.mark.parametrize("passphrase", ["wrong", "missing"])
def test_upload_without_the_uploaders_client_stores_nothing(cli, users: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str],
                                                            passphrase: str) -> None:
    (tmp_path / "party.png").write_bytes(encode_png(grid_photo([0, 1], seed=30)))
    blobs = users / "server" / "blobs"
    files_before = sorted(blobs.rglob("*")) if blobs.exists() else []
    if passphrase == "wrong":
        monkeypatch.setenv("MFMC_PASSPHRASE_ALICE", "not alice's passphrase")
    else:
        monkeypatch.delenv("MFMC_PASSPHRASE")
    capsys.readouterr()
    assert cli("upload", "party.png", "--as", "alice") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "alice" in err, err
    assert _state(users)[3] == 0
    assert (sorted(blobs.rglob("*")) if blobs.exists() else []) == files_before
