"""Reliability: an error mid-upload leaves nothing behind, re-running is safe, bad input changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfmc.errors import InvalidImageError, InvalidInputError, StoreError, UnknownUserError
from mfmc.service import Platform
from mfmc.service.imaging import encode_png
from mfmc.service.testing import grid_photo
from mfmc.store import Tx
from mfmc.store import models as m
from tests.platform.conftest import social


def _snapshot(p: Platform) -> tuple:
    files = sorted(str(f.relative_to(p.server_dir)) for f in p.server_dir.rglob("*")
                   if f.is_file() and f.parent.name != "server")
    with p.store.read() as tx:
        counts = tuple(tx.count(t) for t in (m.User, m.Photo, m.Face, m.RenderedFake, m.SharedEmbedding))
    return files, counts


def test_crash_mid_upload_leaves_no_partial_photo_and_rerun_succeeds(platform: Platform,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    social(platform, ["alice", "bob"], [("alice", "bob")])
    image = grid_photo([0, 1, None], seed=3)
    before = _snapshot(platform)
    real_add = Tx.add_photo

    def crashing(self: Tx, photo: m.Photo, faces: list[m.Face]) -> m.Photo:
        real_add(self, photo, faces)  # rows flushed and the image staged, then the process "dies"
        raise OSError("disk went away")

    monkeypatch.setattr(Tx, "add_photo", crashing)
    with pytest.raises(StoreError, match="cannot write to the store: disk went away"):  # one clear line, exit 1
        platform.upload(image, "alice")
    assert _snapshot(platform) == before
    assert not list(platform.server_dir.rglob("*.tmp"))
    monkeypatch.setattr(Tx, "add_photo", real_add)
    first = platform.upload(image, "alice")
    again = platform.upload(image, "alice")  # re-running the same upload is safe: same photo
    assert first.created and not again.created and again.photo_id == first.photo_id
    assert len(platform.photos()) == 1


def test_corrupt_photo_is_a_clear_error_and_changes_nothing(platform: Platform, tmp_path: Path) -> None:
    social(platform, ["alice"], [])
    bad = tmp_path / "broken.png"
    bad.write_bytes(encode_png(grid_photo([0]))[:60])
    before = _snapshot(platform)
    with pytest.raises(InvalidImageError) as err:
        platform.upload(str(bad), "alice")
    assert err.value.exit_code == 2 and "`" in err.value.message
    assert _snapshot(platform) == before


def test_unknown_user_is_a_clear_error_and_changes_nothing(platform: Platform) -> None:
    social(platform, ["alice"], [])
    before = _snapshot(platform)
    with pytest.raises(UnknownUserError, match="unknown user `alicia`") as err:
        platform.upload(grid_photo([0]), "alicia")
    assert err.value.exit_code == 2 and err.value.help == "did you mean `alice`?"
    with pytest.raises(UnknownUserError):
        platform.render(1, "mallory")
    with pytest.raises(InvalidInputError, match="unknown access model"):
        platform.upload(grid_photo([0]), "alice", model="magic")
    assert _snapshot(platform) == before


def test_a_missing_data_dir_is_refused(tmp_path: Path) -> None:
    from mfmc.errors import StoreError

    with pytest.raises(StoreError, match="no mfmc data dir") as err:
        Platform(tmp_path / "nothing")
    assert "mfmc init" in (err.value.help or "")
