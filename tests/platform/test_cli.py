"""The platform CLI end to end (grid backend injected in place of the real vision backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfmc.service.imaging import decode_png, encode_png
from mfmc.service.testing import grid_photo


def test_cli_scenario(cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("init") == 0
    assert cli("init") == 0  # idempotent
    assert cli("user", "add", "alice", "bob", "carol") == 0
    for k, name in enumerate(["alice", "bob", "carol"]):
        (tmp_path / f"{name}.png").write_bytes(encode_png(grid_photo([k], seed=50 + k)))
        assert cli("enroll", name, f"{name}.png") == 0
    assert cli("friend", "alice", "bob") == 0
    assert cli("follow", "carol", "alice") == 0
    for name in ["alice", "bob", "carol"]:
        (tmp_path / f"{name}.mfmc").write_text(f"face {name}\ndefault friends\n")
    assert cli("rules", "set", "alice.mfmc", "bob.mfmc", "carol.mfmc") == 0
    photo = grid_photo([0, 1, 2], seed=5)
    (tmp_path / "party.png").write_bytes(encode_png(photo))
    assert cli("upload", "party.png", "--as", "alice", "--album", "party") == 0
    out = capsys.readouterr().out
    assert "photo 1 (rules): 3 faces" in out
    assert cli("render", "--viewer", "bob", "1", "-o", "bob.png") == 0
    seen = decode_png((tmp_path / "bob.png").read_bytes())
    assert np.array_equal(seen[1:31, 1:31], photo[1:31, 1:31])  # alice: bob is a friend
    assert not np.array_equal(seen[1:31, 65:95], photo[1:31, 65:95])  # carol: unknown to alice's client
    assert cli("upload", "party.png", "--as", "alice", "--model", "explicit") == 0
    assert cli("tag", "2", "2", "carol") == 0
    assert cli("consent", "2", "2", "carol") == 0
    assert cli("render", "--viewer", "bob", "2", "-o", "bob2.png", "--json") == 0
    assert '"decision": "reveal"' in capsys.readouterr().out
    assert cli("untag", "2", "2") == 0
    assert cli("upload", "party.png", "--as", "bob", "--model", "proxy", "--reveal", "0,1") == 0
    assert cli("unfriend", "alice", "bob") == 0
    assert cli("audit", "1") == 0
    assert "view" in capsys.readouterr().out


def test_cli_errors_exit_2_without_traceback(cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("user", "add", "alice") == 1  # no data dir yet: runtime error with a help line
    assert "mfmc init" in capsys.readouterr().err
    assert cli("init") == 0
    assert cli("user", "add", "alice") == 0
    (tmp_path / "junk.jpg").write_bytes(b"definitely not a jpeg")
    assert cli("upload", "junk.jpg", "--as", "alice") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    (tmp_path / "ok.png").write_bytes(encode_png(grid_photo([0])))
    assert cli("upload", "ok.png", "--as", "mallory") == 2
    assert "unknown user `mallory`" in capsys.readouterr().err
    (tmp_path / "bad.mfmc").write_text("face alice\ndefault sometimes\n")
    assert cli("rules", "set", "bad.mfmc") == 2


def test_cli_summaries_count_blocked_faces(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.service import backends
    from mfmc.service.testing import GridBackend

    monkeypatch.setattr(backends, "VisionBackend", lambda *a, **k: GridBackend(fail_on={1}))
    (tmp_path / "party.png").write_bytes(encode_png(grid_photo([0, 1, 2], seed=40)))
    assert cli("init") == 0 and cli("user", "add", "alice") == 0
    capsys.readouterr()
    assert cli("upload", "party.png", "--as", "alice") == 0  # nobody is known: every face is faked on the client
    out = capsys.readouterr()
    assert "face 1: unknown [client_faked, fake: block]" in out.out and "fake: none" in out.out
    assert "warning: 1 face(s) blocked: no verified fake could be made" in out.err
    assert cli("upload", "party.png", "--as", "alice", "--model", "proxy", "--json") == 0
    assert '"fallbacks": 1' in capsys.readouterr().out
