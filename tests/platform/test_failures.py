"""Foreseeable failures are one clear line with the README's exit codes, and leave nothing behind (issue 12
items 7, 9, 10, 13): a deleted, empty or corrupt database, a malformed database URL, huge or unknown ids, a full
or read-only disk, private file modes, and `mfmc gc`."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from mfmc.errors import StoreError
from mfmc.service import Platform
from mfmc.service.imaging import encode_png
from mfmc.service.testing import grid_photo
from tests.platform.conftest import cli_environment, make_platform, run_cli


@pytest.fixture(scope="module")
def populated_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir made through the CLI once for the module: users, an enrolment, rules, an upload, a render."""
    root = tmp_path_factory.mktemp("populated")
    with pytest.MonkeyPatch.context() as monkeypatch:
        cli_environment(monkeypatch, root)
        (root / "party.png").write_bytes(encode_png(grid_photo([0, 1], seed=8)))
        (root / "alice.png").write_bytes(encode_png(grid_photo([0], seed=9)))
        (root / "alice.mfmc").write_text("face alice\ndefault friends\n")
        for args in (["init"], ["user", "add", "alice", "bob", "carol"], ["enroll", "alice", "alice.png"],
                     ["rules", "set", "alice.mfmc"], ["upload", "party.png", "--as", "alice"],
                     ["render", "1", "--viewer", "carol", "-o", "carol.png"]):
            assert run_cli(*args) == 0, args
    return root


@pytest.fixture
def populated(cli, tmp_path: Path, populated_once: Path) -> Path:
    """A copy of `populated_once` (files, modes and all) in this test's own folder, which `cli` works in."""
    shutil.copytree(populated_once, tmp_path, dirs_exist_ok=True)
    return tmp_path / "data"


def _one_clear_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and all(ln.startswith("  help: ") for ln in lines[1:]), err
    assert "internal error" not in err and "Traceback" not in err and "SELECT" not in err.upper(), err


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_lost_database_is_refused_not_recreated(cli, populated: Path, capsys: pytest.CaptureFixture[str],
                                                  how: str) -> None:
    db = populated / "server" / "mfmc.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if how == "deleted":
        db.unlink()
    else:
        db.write_bytes(b"")
    capsys.readouterr()
    for args in (["user", "list"], ["photos"], ["init"]):  # not even `init` recreates it next to keyrings
        assert cli(*args) == 1, args
        err = capsys.readouterr().err
        _one_clear_line(err)
        assert ("missing" if how == "deleted" else "empty") in err, err
    assert db.exists() == (how == "emptied") and (not db.exists() or db.stat().st_size == 0)


def test_a_corrupt_database_is_one_clear_line(cli, populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = populated / "server" / "mfmc.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database, just some bytes " * 200)
    capsys.readouterr()
    assert cli("photos") == 1
    err = capsys.readouterr().err
    _one_clear_line(err)
    assert "cannot open the database" in err


@pytest.mark.parametrize("url", ["postgresql://u@h:notaport/d", "postgresql://u@h:99999999/d", "nosuchdb://x/y",
                                 "mysql://u@h/d", "::::"])
def test_a_malformed_database_url_is_invalid_input(cli, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   url: str) -> None:
    assert cli("init", "--db", url) == 2
    err = capsys.readouterr().err
    _one_clear_line(err)
    assert "database" in err
    assert not (tmp_path / "data" / "server").exists()


def test_unknown_and_huge_ids_are_invalid_input(cli, populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = str(10**30)
    capsys.readouterr()
    for args in (["render", huge, "--viewer", "bob"], ["render", "7", "--viewer", "bob"],
                 ["tag", huge, "0", "bob"], ["tag", "1", huge, "bob"], ["consent", "1", "99", "bob"],
                 ["untag", "42", "0"]):
        assert cli(*args) == 2, args
        err = capsys.readouterr().err
        _one_clear_line(err)
        assert "unknown photo" in err or "has no face" in err or "uses the `rules` model" in err, err
    assert cli("audit", huge) == 0  # nothing to show for an id that cannot exist


def test_a_full_disk_during_upload_leaves_nothing(cli, populated: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.store import repository

    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (populated.parent / "other.png").write_bytes(encode_png(grid_photo([1, 0], seed=10)))
    before = sorted(p for p in (populated / "server").rglob("*") if p.is_file() and "mfmc.db" not in p.name)
    monkeypatch.setattr(repository.os, "fsync", full)
    capsys.readouterr()
    assert cli("upload", "other.png", "--as", "alice") == 1
    err = capsys.readouterr().err
    _one_clear_line(err)
    assert "No space left on device" in err
    monkeypatch.setattr(repository.os, "fsync", real_fsync)
    after = sorted(p for p in (populated / "server").rglob("*") if p.is_file() and "mfmc.db" not in p.name)
    assert after == before  # no temp file with real faces, no blob
    with Platform(populated) as p:
        assert len(p.photos()) == 1


def test_a_full_disk_while_writing_a_render_leaves_no_partial_image(cli, populated: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc import files

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    out = populated.parent / "out"
    out.mkdir()
    capsys.readouterr()
    assert cli("render", "1", "--viewer", "alice", "-o", str(out / "alice.png")) == 1
    _one_clear_line(capsys.readouterr().err)
    assert list(out.iterdir()) == []  # neither the image nor its temporary file


def test_a_read_only_store_is_one_clear_line(cli, populated: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.store import repository

    real_open = os.open

    def read_only(path, flags, *args, **kwargs):  # root ignores modes, so the disk is made read-only here
        if flags & (os.O_WRONLY | os.O_RDWR) and "blobs" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(repository.os, "open", read_only)
    (populated.parent / "other.png").write_bytes(encode_png(grid_photo([1, 0], seed=11)))
    capsys.readouterr()
    assert cli("upload", "other.png", "--as", "alice") == 1
    err = capsys.readouterr().err
    _one_clear_line(err)
    assert "Read-only file system" in err


def test_data_dir_files_are_private(populated: Path) -> None:
    dirs = [populated, *(p for p in populated.rglob("*") if p.is_dir())]
    files = [p for p in populated.rglob("*") if p.is_file()]
    assert any(p.name == "mfmc.db" for p in files) and any(p.suffix == ".npz" for p in files)
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, (f, oct(f.stat().st_mode))


def test_gc_removes_only_old_unreferenced_files(cli, populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blobs = populated / "server" / "blobs"
    kept = sorted(p for p in blobs.rglob("*") if p.is_file())
    old = time.time() - 7200
    orphan = blobs / "ab" / ("ab" + "0" * 62 + ".png")
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"left by a crash")
    stale_tmp = blobs / "ab" / ".leftover.tmp"
    stale_tmp.write_bytes(b"real face pixels of an interrupted upload")
    young_tmp = blobs / "ab" / ".in-flight.tmp"
    young_tmp.write_bytes(b"an upload publishing right now")
    for p in (orphan, stale_tmp, *kept):
        os.utime(p, (old, old))
    capsys.readouterr()
    assert cli("gc", "--min-age", "600") == 0
    assert "removed: 2 unreferenced files" in capsys.readouterr().out
    assert sorted(p for p in blobs.rglob("*") if p.is_file()) == sorted([*kept, young_tmp])
    assert cli("render", "1", "--viewer", "carol", "-o", "again.png") == 0  # nothing in use was removed


def test_the_library_refuses_a_missing_database_too(tmp_path: Path) -> None:
    p = make_platform(tmp_path / "d")
    p.add_user("alice")
    p.close()
    (tmp_path / "d" / "server" / "mfmc.db").unlink()
    with pytest.raises(StoreError, match="is missing"):
        Platform(tmp_path / "d")
    with pytest.raises(StoreError, match="is missing"):
        Platform(tmp_path / "d", create=True)  # keyrings remain: a new database would orphan them
    assert not (tmp_path / "d" / "server" / "mfmc.db").exists()


def test_a_stored_image_that_cannot_be_decoded_is_a_store_error() -> None:
    from mfmc.service.imaging import decode_png

    with pytest.raises(StoreError, match="a stored image cannot be decoded: UnidentifiedImageError"):
        decode_png(b"not a png at all")


def test_a_full_disk_while_adding_a_user_is_one_clear_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.crypto import _codec

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    assert cli("init") == 0
    monkeypatch.setattr(_codec.os, "fsync", full)
    capsys.readouterr()
    assert cli("user", "add", "alice") == 1
    err = capsys.readouterr().err
    _one_clear_line(err)
    assert "No space left on device" in err
    assert not list((tmp_path / "data" / "clients").rglob("*.tmp"))  # no half-written sealed key left
    monkeypatch.undo()
    with Platform(tmp_path / "data") as p, p.store.read() as tx:
        assert tx.users() == []


def test_init_makes_an_older_data_dir_private(cli, populated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = next(p for p in (populated / "server" / "blobs").rglob("*") if p.is_file())
    blob.chmod(0o644)  # as an older mfmc left it (the umask)
    blob.parent.chmod(0o755)
    assert cli("init") == 0
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600 and stat.S_IMODE(blob.parent.stat().st_mode) == 0o700


def test_save_image_on_a_full_disk_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`anonymize` and file-mode `render` write with `save_image`: a full disk leaves neither image nor temp."""
    from mfmc import files
    from mfmc.errors import MfmcError
    from mfmc.vision import save_image

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    for name in ("out.png", "out.jpg"):
        with pytest.raises(MfmcError, match="No space left on device"):
            save_image(tmp_path / name, grid_photo([0, 1], seed=12))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.postgres
def test_an_empty_postgresql_database_is_refused_without_init(tmp_path: Path) -> None:
    import secrets

    from mfmc.store import Store
    from tests.platform.conftest import pg_url_or_skip

    url, schema = pg_url_or_skip(), "mfmc_t_" + secrets.token_hex(6)
    (tmp_path / "server").mkdir()
    with pytest.raises(StoreError, match="is empty"):
        Store(tmp_path / "server", url, schema=schema)
    store = Store(tmp_path / "server", url, schema=schema, create=True)  # what `mfmc init` does
    try:
        assert Store(tmp_path / "server", url, schema=schema).found_version == store.version
    finally:
        store.drop_schema()
