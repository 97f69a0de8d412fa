"""Mirror images of turned faces at build (`BuildOptions.mirror_yaw`), on a real synthetic photo: the mirror is
indexed as a face turned the other way, and it counts as the same person (identity bookkeeping)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmc.pool import TargetPool
from mfmc.pool.build import BuildOptions, build_pool, mirror_sha
from mfmc.vision.head import MIRROR

openpeople = pytest.importorskip("openpeople")


def _asset(person: str, name: str) -> Path:
    return Path(openpeople.__file__).parent / "data" / "curated" / person / "assets" / f"{name}.jpg"


@pytest.fixture(scope="module")
def pipe():
    from mfmc.vision import FacePipeline

    return FacePipeline.default()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, pipe) -> TargetPool:
    """P004's amateur posture photo (turned about 27° to the image's right) and P001's studio portrait (about
    frontal), cut around the face; mirrored when turned at least 10°."""
    folder = tmp_path_factory.mktemp("faces")
    for person, asset, box in (("P004", "amateur_posture", (600, 430, 1200, 1030)),
                               ("P001", "studio_portrait", None)):
        image = Image.open(_asset(person, asset)).convert("RGB")
        if box is not None:
            image = image.crop(box)
        image.thumbnail((640, 640))
        image.save(folder / f"{person}.jpg", quality=95)
    out = tmp_path_factory.mktemp("pool")
    opts = BuildOptions(min_face=48, margin=1.8, mirror_yaw=10.0)
    report = build_pool(folder, out, pipeline=pipe, options=opts, progress=False)
    assert report.rejected == []
    return TargetPool.load(out)


def test_turned_face_gets_a_mirror_of_the_same_person(built: TargetPool, pipe) -> None:
    assert len(built) == 3  # the turned face, its mirror, the frontal portrait (not mirrored)
    records = built.index.records
    mirrors = [r for r in records if r.get("mirror_of")]
    assert len(mirrors) == 1
    mirror = mirrors[0]
    original = next(r for r in records if r["id"] == mirror["mirror_of"])
    assert original["source"]["file"] == "P004.jpg" and "mirrored" not in original["source"]
    assert mirror["source"] == {**original["source"], "mirrored": True}
    assert mirror["sha256"] == mirror_sha(original["sha256"])
    # one person: the pool's identity (no `person` in a user pool's source) and every recognizer agree
    assert built.identity(mirror["id"]) == built.identity(original["id"]) == original["id"]
    a, b = built.entry(original["id"]), built.entry(mirror["id"])
    for name, rec in pipe.recognizers.items():
        assert float(rec.distance(a.embeddings[name], b.embeddings[name])) < float(rec.threshold), name
    # turned the other way, by about as much
    assert a.pose is not None and b.pose is not None
    assert a.pose[0] > 15.0 and b.pose[0] < -15.0
    assert abs(a.pose[0] + b.pose[0]) < 6.0
    # the same 68 points, mirrored (the crops are square and mirror each other)
    side = built.crop_image(original["id"]).shape[1]
    flipped = np.column_stack([side - 1 - a.landmarks68[MIRROR, 0], a.landmarks68[MIRROR, 1]])
    assert np.abs(flipped - b.landmarks68).mean() < 0.02 * side


def test_frontal_face_and_default_options_get_no_mirror(built: TargetPool, tmp_path: Path, pipe) -> None:
    portrait = next(r for r in built.index.records if r["source"]["file"] == "P001.jpg")
    assert abs(built.entry(portrait["id"]).pose[0]) < 10.0
    assert not any(r.get("mirror_of") == portrait["id"] for r in built.index.records)
    folder = tmp_path / "in"
    folder.mkdir()
    turned = next(r for r in built.index.records if r["source"]["file"] == "P004.jpg" and not r.get("mirror_of"))
    Image.fromarray(built.crop_image(turned["id"])).save(folder / "a.jpg", quality=95)
    report = build_pool(folder, tmp_path / "out", pipeline=pipe, options=BuildOptions(min_face=48),
                        progress=False)
    assert report.added == 1
