"""The CLI's platform commands against a running server (`--server` / `MFMC_SERVER`): the keyrings stay in the
client's data dir, the server's data dir has none; an unreachable server is one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfmc.cli.main import main
from mfmc.service.imaging import decode_png, encode_png
from mfmc.service.testing import grid_photo
from tests.platform.conftest import cli_environment
from tests.server.conftest import deployment


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cli_environment(monkeypatch, tmp_path)  # the client's data dir is tmp_path/data
    return lambda *args: main(list(args))


def test_cli_commands_over_http(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    with deployment(tmp_path / "server") as dep:
        monkeypatch.setenv("MFMC_SERVER", dep.url)
        assert cli("user", "add", "alice", "bob", "carol") == 0
        for k, name in enumerate(["alice", "bob", "carol"]):
            (tmp_path / f"{name}.png").write_bytes(encode_png(grid_photo([k], seed=50 + k)))
            (tmp_path / f"{name}.mfmc").write_text(f"face {name}\ndefault friends\n")
        assert cli("friend", "alice", "bob") == 0
        assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "carol.mfmc") == 0
        for name in ["alice", "bob", "carol"]:
            assert cli("enroll", name, f"{name}.png") == 0
        photo = grid_photo([0, 1, 2], seed=5)
        (tmp_path / "party.png").write_bytes(encode_png(photo))
        assert cli("upload", "party.png", "--as", "alice") == 0
        assert "photo 1 (rules): 3 faces" in capsys.readouterr().out
        assert cli("render", "1", "--viewer", "bob", "-o", "bob.png") == 0
        seen = decode_png((tmp_path / "bob.png").read_bytes())
        assert np.array_equal(seen[1:31, 1:31], photo[1:31, 1:31])  # alice: bob is a friend
        assert not np.array_equal(seen[1:31, 65:95], photo[1:31, 65:95])  # carol: unknown to alice's client
        assert cli("upload", "party.png", "--as", "alice", "--model", "explicit") == 0
        capsys.readouterr()
        assert cli("tag", "2", "2", "carol", "--by", "bob") == 2  # only the uploader tags
        assert "only the uploader" in capsys.readouterr().err
        assert cli("tag", "2", "2", "carol") == 0
        assert cli("consent", "2", "2", "bob") == 2  # only the tagged user consents
        assert cli("consent", "2", "2", "carol") == 0
        # the keyrings live on the client side only; the server's data dir holds none
        assert sorted(p.name for p in (tmp_path / "data" / "clients").iterdir()) == ["alice", "bob", "carol"]
        assert not (dep.data_dir / "clients").exists() or not any((dep.data_dir / "clients").iterdir())
    capsys.readouterr()
    monkeypatch.setenv("MFMC_SERVER", "http://127.0.0.1:9")
    assert cli("photos") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("error: cannot reach the mfmc server at `http://127.0.0.1:9`")
    assert len(err) == 2 and err[1].strip().startswith("help:")
