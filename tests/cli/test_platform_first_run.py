"""First run on the platform: a photo found by id or by its file, owners who never silently lose their own face,
upload notes that say why a face is unknown, `graph import` and `rules set DIR` (cheap grid backend / CLI)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mfmc.cli.main import main
from mfmc.errors import InvalidInputError
from mfmc.service.testing import grid_photo
from tests.platform.conftest import crop, make_platform


@pytest.fixture
def p(tmp_path):
    platform = make_platform(tmp_path / "data")
    yield platform
    platform.close()


def test_find_photo_by_id_and_by_file_content(p, tmp_path):
    for name in ("ann", "ben"):
        p.add_user(name)
    path = tmp_path / "party.png"
    Image.fromarray(grid_photo([None, None], seed=3)).save(path)
    up = p.upload(str(path), "ann")
    assert p.find_photo(str(up.photo_id)) == up.photo_id
    assert p.find_photo(str(path)) == up.photo_id
    other = tmp_path / "other.png"
    Image.fromarray(grid_photo([None], seed=4)).save(other)
    with pytest.raises(InvalidInputError, match="no uploaded photo has the content"):
        p.find_photo(str(other))
    p.upload(str(path), "ben")  # the same file uploaded twice: ambiguous by content
    with pytest.raises(InvalidInputError, match="uploaded 2 times"):
        p.find_photo(str(path))


def test_enrolled_owner_without_rules_still_sees_their_own_face(p):
    for name in ("ann", "ben"):
        p.add_user(name)
    p.friend("ann", "ben")
    p.enroll("ann", [grid_photo([0], seed=100)])
    photo = grid_photo([0, None], seed=7)
    up = p.upload(photo, "ann")  # ann has no rules
    assert [f.owner for f in up.faces] == ["ann", None]
    assert "has no rules yet" in up.faces[0].note
    mine = p.render(up.photo_id, "ann")
    assert mine.decisions[0].reveal
    assert np.array_equal(crop(mine.image, up.faces[0].box), crop(photo, up.faces[0].box))
    theirs = p.render(up.photo_id, "ben")
    assert not theirs.decisions[0].reveal
    assert not np.array_equal(crop(theirs.image, up.faces[0].box), crop(photo, up.faces[0].box))


def test_upload_says_why_faces_are_unknown(p):
    for name in ("ann", "ben", "cy"):
        p.add_user(name)
    up = p.upload(grid_photo([0, 1], seed=8), "ann")  # nobody enrolled
    assert all("holds no embeddings" in f.note for f in up.faces)
    p.enroll("ann", [grid_photo([0], seed=100)])
    p.set_rules("face ann\ndefault friends\n", "ann.mfmc")
    up = p.upload(grid_photo([0, 1], seed=9), "ann")
    assert up.faces[0].owner == "ann" and up.faces[0].note == ""
    assert "matches none of the 1 people" in up.faces[1].note
    p.set_rules("face ann\ndefault nobody\n", "ann.mfmc")
    up = p.upload(grid_photo([0, 1], seed=10), "ann")
    assert up.faces[0].owner is None and "rules say `nobody`" in up.faces[0].note


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow  # the CLI derives keys at production strength (argon2id MODERATE): ~1 s per user
def test_graph_import_and_rules_set_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MFMC_PASSPHRASE", "test passphrase")
    data = tmp_path / "data"
    graph = tmp_path / "graph.toml"  # two users: each new user costs a production-strength key derivation
    graph.write_text('users = ["ann", "ben"]\nfriends = [["ann", "ben"]]\nfollows = [["ben", "ann"]]\n')
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "ann.mfmc").write_text("face ann\ndefault friends\n")
    (rules / "ben.mfmc").write_text("face ben\ndefault public\n")
    assert run(capsys, "init", "--data-dir", data)[0] == 0
    code, out, err = run(capsys, "graph", "import", graph, "--data-dir", data)
    assert code == 0, err
    assert out.strip() == f"imported {graph}: 2 users (2 new), 1 friendship (1 new), 1 follow (1 new)"
    code, out, _ = run(capsys, "graph", "import", graph, "--data-dir", data)
    assert "2 users (0 new), 1 friendship (0 new), 1 follow (0 new)" in out
    code, out, err = run(capsys, "rules", "check", rules, "--graph", graph)
    assert code == 0, err
    code, out, err = run(capsys, "rules", "set", rules, "--data-dir", data)
    assert code == 0, err
    assert sorted(line.split()[3] for line in out.splitlines()) == ["ann", "ben"]


def test_graph_import_refuses_a_bad_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MFMC_PASSPHRASE", "test passphrase")
    data = tmp_path / "data"
    run(capsys, "init", "--data-dir", data)
    bad = tmp_path / "g.toml"
    bad.write_text('users = ["a"]\nfriends = [["a", "zed"]]\n')
    code, _, err = run(capsys, "graph", "import", bad, "--data-dir", data)
    assert code == 2
    assert err.startswith("error: ")
    assert run(capsys, "user", "list", "--data-dir", data)[1] == ""


@pytest.mark.slow  # real models
def test_render_by_image_path_on_the_platform(tmp_path, capsys, monkeypatch):
    """The issue's first command: `mfmc render --viewer V photo.jpg` after uploading photo.jpg. Keys are derived
    with the fast test parameters here: the CLI's production-strength derivation is exercised by
    test_graph_import_and_rules_set_folder."""
    from pathlib import Path

    from mfmc.crypto.keys import KdfParams
    from mfmc.service import platform as platform_mod
    from mfmc.vision import load_image

    monkeypatch.setattr(platform_mod.Platform, "_kdf_params", lambda self: KdfParams.FAST_INSECURE)

    root = Path(__file__).resolve().parents[2]
    group, carol = root / "examples" / "group.jpg", root / "examples" / "people" / "carol.jpg"
    monkeypatch.setenv("MFMC_PASSPHRASE", "test passphrase")
    data = tmp_path / "data"
    graph = tmp_path / "graph.toml"
    graph.write_text('users = ["bob", "carol"]\nfriends = [["bob", "carol"]]\n')
    rules = tmp_path / "carol.mfmc"
    rules.write_text("face carol\ndefault friends\n")
    for args in (("init",), ("graph", "import", graph), ("rules", "set", rules), ("enroll", "carol", carol),
                 ("upload", group, "--as", "carol")):
        code, _, err = run(capsys, *args, "--data-dir", data)
        assert code == 0, (args, err)
    out = tmp_path / "bob.png"
    code, stdout, err = run(capsys, "render", "--viewer", "bob", group, "-o", out, "--data-dir", data)
    assert code == 0, err
    assert "Input should be a valid integer" not in err
    lines = stdout.splitlines()
    assert lines[-1] == f"wrote {out}"
    assert sum(line.startswith("face ") for line in lines) == 4  # examples/group.jpg: alice, bob, carol, dan
    assert lines[2].startswith("face 2: reveal")  # carol, bob's friend, left to right the third face
    original, view = load_image(group), load_image(out)
    assert view.shape == original.shape
    assert not np.array_equal(view[:, :256], original[:, :256])  # face 0 (unknown on carol's client): faked
    assert np.array_equal(view[:, 512:768], original[:, 512:768])  # carol's tile: unchanged
