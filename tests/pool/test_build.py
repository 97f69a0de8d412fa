"""Building a pool from a folder with a stub pipeline: rejections, resume, persistence, `target`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmc.pool import FORMAT_VERSION, PoolFormatError, TargetPool
from mfmc.pool.build import BuildOptions, build_pool
from mfmc.pool.index import vision_api

Faces = vision_api()[0]


class StubRecognizer:
    metric = "euclidean"

    def __init__(self, dim: int, threshold: float) -> None:
        self.dim = dim
        self.threshold = threshold


class StubPipeline:
    """Finds 'faces' as bright squares on a dark background; embeddings from the pixel colours."""

    def __init__(self) -> None:
        self.recognizers = {"dlib": StubRecognizer(4, 0.6), "facenet": StubRecognizer(3, 1.1)}

    def detect(self, image: np.ndarray) -> object:
        mask = image.mean(axis=2) > 100
        boxes, lm5 = [], []
        for x1, x2 in _runs(mask.any(axis=0)):
            y1, y2 = _runs(mask[:, x1:x2].any(axis=1))[0]
            boxes.append([x1, y1, x2, y2])
            w, h = x2 - x1, y2 - y1
            lm5.append([[x1 + 0.3 * w, y1 + 0.4 * h], [x1 + 0.7 * w, y1 + 0.4 * h], [x1 + 0.5 * w, y1 + 0.6 * h],
                        [x1 + 0.35 * w, y1 + 0.8 * h], [x1 + 0.65 * w, y1 + 0.8 * h]])
        n = len(boxes)
        return Faces(boxes=np.array(boxes, np.float32).reshape(n, 4), scores=np.full(n, 0.9, np.float32),
                     landmarks5=np.array(lm5, np.float32).reshape(n, 5, 2))

    def analyze(self, image: np.ndarray, faces: object) -> object:
        x1, y1, x2, y2 = faces.boxes[0]
        lm68 = np.stack([np.linspace(x1, x2, 68), np.linspace(y1, y2, 68)], axis=1)
        colour = image[int(y1):int(y2), int(x1):int(x2)].reshape(-1, 3).mean(0) / 255.0
        yaw = 60.0 if round(float(x2 - x1)) == 101 else 5.0  # a 101-px square stands for a turned head
        return faces.replace(landmarks68=lm68[None], pose=np.array([[yaw, 0.0, 0.0]]), age=np.array([33.0]),
                             gender=np.array(["male"]),
                             embeddings={"dlib": np.append(colour, 1.0)[None], "facenet": colour[None]})


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def face_image(path: Path, squares: list[tuple[int, int, int]], colour: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(len(squares) + sum(colour))
    img = np.zeros((240, 320, 3), np.uint8)
    for x, y, s in squares:
        img[y:y + s, x:x + s] = colour
        img[y:y + s, x:x + s] += rng.integers(0, 100, (s, s, 1), dtype=np.uint8)  # texture = sharp
    Image.fromarray(img).save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "faces"
    src.mkdir()
    face_image(src / "a.png", [(100, 60, 100)], (150, 120, 110))
    face_image(src / "b.png", [(40, 40, 120)], (120, 150, 110))
    face_image(src / "two.png", [(10, 10, 90), (200, 100, 90)], (150, 150, 150))
    face_image(src / "tiny.png", [(10, 10, 20)], (150, 150, 150))
    face_image(src / "turned.png", [(100, 60, 101)], (100, 110, 140))
    Image.fromarray(np.full((200, 200, 3), 160, np.uint8)).save(src / "flat.png")  # a smooth blob: blurry
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(src / "dark.png")  # nothing bright: no face
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def test_build_rejects_with_reasons_and_resumes(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "pool"
    opts = BuildOptions(min_face=40, crop_size=128)
    report = build_pool(folder, out, pipeline=StubPipeline(), options=opts, progress=False, name="stub")
    assert report.added == 2
    reasons = {r["file"]: r["reason"].split(":")[0] for r in report.rejected}
    assert reasons == {"two.png": "several faces", "tiny.png": "too small", "flat.png": "blurry",
                       "dark.png": "no face", "broken.jpg": "corrupt", "turned.png": "turned"}
    assert "yaw 60" in next(r["reason"] for r in report.rejected if r["file"] == "turned.png")
    again = build_pool(folder, out, pipeline=StubPipeline(), options=opts, progress=False)
    assert (again.added, again.skipped, again.rejected) == (0, 8, [])
    face_image(folder / "c.png", [(60, 60, 110)], (110, 110, 170))
    third = build_pool(folder, out, pipeline=StubPipeline(), options=opts, progress=False)
    assert (third.added, third.skipped) == (1, 8)

    pool = TargetPool.load(out)
    assert len(pool) == 3 and pool.name == "stub"
    doc = json.loads((out / "index.json").read_text())
    assert doc["version"] == FORMAT_VERSION and len(doc["rejected"]) == 6
    e = pool.entry(pool.ids[0])
    assert e.gender == "male" and e.age == 33.0 and e.source["package"] == "user"
    image, face = pool.target(pool.ids[0])
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert len(face) == 1 and face.landmarks68.shape == (1, 68, 2)
    # landmarks are in crop coordinates: inside the crop, and the face box is centred
    assert np.all((face.landmarks68 >= 0) & (face.landmarks68 <= 128))
    cx = (face.boxes[0, 0] + face.boxes[0, 2]) / 2
    assert abs(cx - 64) < 2
    np.testing.assert_allclose(face.embeddings["dlib"][0], e.embeddings["dlib"])


def test_version_mismatch_and_missing_pool(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(PoolFormatError, match="is not a target pool"):
        TargetPool.load(tmp_path / "nowhere")
    out = tmp_path / "pool"
    build_pool(folder, out, pipeline=StubPipeline(), options=BuildOptions(min_face=40), progress=False)
    doc = json.loads((out / "index.json").read_text())
    doc["version"] = 99
    (out / "index.json").write_text(json.dumps(doc))
    with pytest.raises(PoolFormatError, match="format version 99"):
        TargetPool.load(out)


def test_save_load_round_trip(tmp_path: Path) -> None:
    from mfmc.pool.synthetic import random_index

    idx = random_index(50, dims={"dlib": 8}, aligned=True)
    idx.save(tmp_path / "p")
    back = TargetPool.load(tmp_path / "p").index
    np.testing.assert_array_equal(back.embeddings["dlib"], idx.embeddings["dlib"])
    for k, v in idx.attributes.items():
        np.testing.assert_array_equal(np.asarray(back.attributes[k]), v)
    assert back.ids == idx.ids


def test_cli_info_and_plots(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mfmc.cli.main import main

    out = tmp_path / "pool"
    build_pool(folder, out, pipeline=StubPipeline(), options=BuildOptions(min_face=40), progress=False)
    assert main(["pool", "info", str(out), "--json", "--plots", str(tmp_path / "plots")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["faces"] == 2 and doc["rejected"] == 6 and doc["gender"]["male"] == 2
    assert {Path(p).name for p in doc["plots"]} == {"distance-dlib.png", "distance-facenet.png", "age.png"}
    assert main(["pool", "info", str(tmp_path / "missing")]) == 2
    assert "no pool" in capsys.readouterr().err
