"""`mfmc render` in file mode, end to end on the shipped examples (real models, real fakes), and its errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmc.cli.main import main
from mfmc.vision import FacePipeline, load_image

ROOT = Path(__file__).resolve().parents[2]
RULES, GRAPH = ROOT / "rules", ROOT / "examples" / "graph.toml"
PEOPLE, GROUP = ROOT / "examples" / "people", ROOT / "examples" / "group.jpg"
# examples/group.jpg, left to right (erin has no face in it)
OWNERS = ["alice", "bob", "carol", "dan"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def file_args(viewer: str, *extra) -> list:
    return ["render", "--viewer", viewer, GROUP, "--rules", RULES, "--graph", GRAPH, "--people", PEOPLE, *extra]


@pytest.fixture(scope="module")
def bob_view(tmp_path_factory):
    """Bob's view of the group photo uploaded by carol, rendered once for the module (text output, default name)."""
    folder = tmp_path_factory.mktemp("render")
    here, text = os.getcwd(), io.StringIO()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(text):
            code = main([str(a) for a in file_args("bob", "--uploader", "carol")])
    finally:
        os.chdir(here)
    return code, folder / "group.bob.png", text.getvalue()


def _iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area


@pytest.mark.slow
def test_file_mode_json_schema_owners_and_decisions(tmp_path, capsys):
    # the folder form too: bob's reference photos in people/bob/ (his selfie and a mirrored copy)
    people = tmp_path / "people"
    (people / "bob").mkdir(parents=True)
    for name in ("alice", "carol", "dan"):
        (people / f"{name}.jpg").write_bytes((PEOPLE / f"{name}.jpg").read_bytes())
    (people / "bob" / "selfie.jpg").write_bytes((PEOPLE / "bob.jpg").read_bytes())
    Image.open(PEOPLE / "bob.jpg").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(people / "bob" / "mirror.png")
    out = tmp_path / "dan.png"
    args = file_args("dan", "--uploader", "carol", "-o", out, "--json")
    args[args.index(PEOPLE)] = people
    code, stdout, err = run(capsys, *args)
    assert code == 0, err
    data = json.loads(stdout)
    assert data["viewer"] == "dan" and data["out"] == str(out) and out.is_file()
    faces = data["faces"]
    assert [f["owner"] for f in faces] == OWNERS
    for f in faces:
        assert set(f) >= {"box", "owner", "decision", "reasons"}
        assert len(f["box"]) == 4 and all(isinstance(v, float | int) for v in f["box"])
        assert f["decision"] in ("reveal", "fake")
        assert f["reasons"] and all(isinstance(r, str) and r for r in f["reasons"])
    # dan: alice's family (uploader carol is alice's friend), bob is public, carol's friend, herself
    assert [f["decision"] for f in faces] == ["reveal", "reveal", "reveal", "reveal"]


@pytest.mark.slow
def test_file_mode_reveals_exact_pixels_and_verifies_fakes(bob_view):
    code, out, _ = bob_view
    assert code == 0
    original = load_image(GROUP)
    view = np.asarray(Image.open(out).convert("RGB"))
    assert view.shape == original.shape
    pipe = FacePipeline.default()
    faces = pipe.detect(original)
    faces = faces[np.argsort(faces.boxes[:, 0], kind="stable")]
    assert len(faces) == len(OWNERS)
    # bob: alice hides from bob, bob himself, carol's friend, dan is `nobody`
    expected = ["fake", "reveal", "reveal", "fake"]
    before = pipe.analyze(original, faces, landmarks=False, attributes=False)
    after_faces = pipe.detect(view)
    changed = np.any(view != original, axis=2)
    allowed = np.zeros(changed.shape, dtype=bool)
    for i, decision in enumerate(expected):
        x1, y1, x2, y2 = (round(float(v)) for v in faces.boxes[i])
        if decision == "reveal":
            assert not changed[y1:y2, x1:x2].any(), f"revealed face {i} changed"
            continue
        assert changed[y1:y2, x1:x2].mean() > 0.2, f"faked face {i} barely changed"
        w, h = x2 - x1, y2 - y1
        allowed[max(0, y1 - h // 2):y2 + h // 2, max(0, x1 - w // 2):x2 + w // 2] = True
        # verified: every recognizer says the face in the output is not the person of the input
        match = [j for j in range(len(after_faces)) if _iou(after_faces.boxes[j], faces.boxes[i]) > 0.4]
        if not match:
            continue  # no face is left to recognise there
        redone = pipe.analyze(view, after_faces[np.asarray(match[:1])], landmarks=False, attributes=False)
        for name, rec in pipe.recognizers.items():
            if name not in before.embeddings:
                continue
            d = float(rec.distance(before.embeddings[name][i], redone.embeddings[name][0]))
            assert d >= rec.threshold, f"face {i}: {name} still matches ({d:.3f} < {rec.threshold})"
    assert not (changed & ~allowed).any(), "pixels changed away from the faked faces"


@pytest.mark.slow
def test_file_mode_default_output_name_and_text(bob_view):
    code, out, text = bob_view
    assert code == 0 and out.is_file()
    assert text.splitlines()[-1] == "wrote group.bob.png (4 faces: 2 real, 2 fake)"
    assert "identified as `carol`" in text and "`bob` always sees their own face" in text


def test_unknown_viewer_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, *file_args("zed", "-o", tmp_path / "x.png"))
    assert code == 2
    assert err.splitlines()[0] == "error: unknown user `zed`"
    assert not (tmp_path / "x.png").exists()


def test_missing_people_dir_exits_2(tmp_path, capsys):
    args = file_args("bob", "-o", tmp_path / "x.png")
    args[args.index(PEOPLE)] = tmp_path / "nope"
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.splitlines()[0] == f"error: people folder `{tmp_path / 'nope'}` does not exist"
    assert "Traceback" not in err


def test_file_mode_needs_all_three_options(capsys):
    code, _, err = run(capsys, "render", "--viewer", "bob", GROUP, "--rules", RULES, "--graph", GRAPH)
    assert code == 2
    assert err.splitlines()[0] == "error: file mode needs --rules, --graph and --people (missing: --people)"


@pytest.mark.parametrize("faces", [0, 2])
def test_reference_photo_must_show_one_face(tmp_path, capsys, faces):
    people = tmp_path / "people"
    people.mkdir()
    group = load_image(GROUP)
    image = np.full((256, 256, 3), 128, np.uint8) if faces == 0 else group[:, :512]  # alice and bob
    Image.fromarray(image).save(people / "alice.png")
    args = file_args("bob", "-o", tmp_path / "x.png")
    args[args.index(PEOPLE)] = people
    code, _, err = run(capsys, *args)
    assert code == 2
    lines = err.splitlines()
    want = "no face found in reference photo" if faces == 0 else "shows 2 faces"
    assert lines[0].startswith("error: ") and want in lines[0]
    assert len(lines) <= 2 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_reference_name_must_be_a_graph_user(tmp_path, capsys):
    people = tmp_path / "people"
    people.mkdir()
    (people / "mallory.jpg").write_bytes((PEOPLE / "bob.jpg").read_bytes())
    args = file_args("bob", "-o", tmp_path / "x.png")
    args[args.index(PEOPLE)] = people
    code, _, err = run(capsys, *args)
    assert code == 2
    assert "`mallory` has a reference photo but is not a user of the graph" in err.splitlines()[0]


def test_a_file_without_file_mode_or_platform_points_to_file_mode(tmp_path, capsys):
    code, _, err = run(capsys, "render", "--viewer", "bob", GROUP, "--data-dir", tmp_path / "none")
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == f"error: no platform data dir at `{tmp_path / 'none'}` to look `{GROUP}` up in"
    assert "--rules DIR --graph FILE --people DIR" in lines[1]
