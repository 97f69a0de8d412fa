"""dlib's shape predictors run by numpy (`mfmc.vision.shape_ert`) against dlib itself on real faces.

Faces: openpeople portraits, selfies and emotion sheets (10 people); the rectangles are the ones mfmc gives dlib
(`dlib_rect` of CenterFace boxes). Every point must be dlib's point, exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dlib
import numpy as np
import pytest

from mfmc.vision import FacePipeline, cache, landmarks, shape_ert
from mfmc.vision.dlib_onnx import _Reader
from mfmc.vision.landmarks import DlibLandmarks68, dlib_rect
from mfmc.vision.registry import MODELS, model_path
from tests.vision.helpers import PEOPLE, photo


def _faces(pipeline: FacePipeline, assets: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for person in PEOPLE:
        for asset in assets:
            image = photo(person, asset, 1024)
            out += [(image, box) for box in pipeline.detect(image).boxes]
    return out


def _compare(name: str, faces: list[tuple[np.ndarray, np.ndarray]]) -> None:
    ours = landmarks.shape_predictor(name)
    assert isinstance(ours, shape_ert.ShapePredictor)
    theirs = dlib.shape_predictor(str(model_path(name)))
    for image, box in faces:
        rect = dlib_rect(box)
        expected = np.array([(p.x, p.y) for p in theirs(image, rect).parts()], np.float32)
        got = ours(image, (rect.left(), rect.top(), rect.right(), rect.bottom()))
        np.testing.assert_array_equal(got, expected)
    grey = faces[0][0][..., 1]  # a grey image takes its pixels as they are, as dlib does
    rect = dlib_rect(faces[0][1])
    np.testing.assert_array_equal(
        ours(np.ascontiguousarray(grey), (rect.left(), rect.top(), rect.right(), rect.bottom())),
        np.array([(p.x, p.y) for p in theirs(np.ascontiguousarray(grey), rect).parts()], np.float32))


def test_five_point_predictor_gives_dlibs_points(pipeline: FacePipeline) -> None:
    faces = _faces(pipeline, ("studio_portrait", "amateur_selfie", "emotions_sheet"))
    assert len(faces) >= 100
    _compare("dlib_landmarks5", faces)


@pytest.mark.slow  # reads the 100 MB model once (~5-15 s) unless the disk cache holds it
def test_68_point_predictor_gives_dlibs_points(pipeline: FacePipeline) -> None:
    faces = _faces(pipeline, ("studio_portrait", "amateur_selfie", "emotions_sheet"))
    assert len(faces) >= 100
    _compare("dlib_landmarks68", faces)


def test_tokens_are_dlibs_integers() -> None:
    """Every integer of the real 5-point model (9 MB, 3.2 M integers over ~140 chains of the vectorized reader),
    as dlib's reader, one at a time, reads them."""
    raw = model_path("dlib_landmarks5").read_bytes()
    reader = _Reader(raw)
    expected = []
    while reader.pos < len(raw):
        expected.append(reader.int())
    assert shape_ert.tokens(raw).tolist() == expected


def test_tokens_of_every_integer_size_and_sign() -> None:
    """Integers of each length (0-8 bytes) and sign, written as dlib writes them, read back across many chains
    (seeds every 1 kB and every 64 kB find the same offsets; on random bytes chains take longer to fall into step
    than on a model file, hence the longer warm-up, as `tokens` retries with)."""
    rng = np.random.default_rng(3)
    sizes = rng.integers(0, 9, 300_000)
    values = [0 if k == 0 else int(rng.integers(1 << (8 * k - 8), 1 << min(8 * k, 63), dtype=np.uint64))
              for k in sizes]
    signs = rng.random(len(values)) < 0.3
    raw = b"".join(bytes([len(v.to_bytes((v.bit_length() + 7) // 8, "little")) | (0x80 if neg else 0)])
                   + v.to_bytes((v.bit_length() + 7) // 8, "little") for v, neg in zip(values, signs, strict=True))
    expected = [-v if neg else v for v, neg in zip(values, signs, strict=True)]
    assert shape_ert.tokens(raw).tolist() == expected
    data = np.frombuffer(raw, np.uint8)
    np.testing.assert_array_equal(shape_ert._token_starts(data, seed_gap=1024, warmup=4096),
                                  shape_ert._token_starts(data, warmup=4096))


def test_other_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(shape_ert.ShapeFormatError):
        shape_ert.read_predictor(model_path("age"))  # an ONNX file
    truncated = tmp_path / "cut.dat"
    truncated.write_bytes(model_path("dlib_landmarks5").read_bytes()[:-1000])
    with pytest.raises(shape_ert.ShapeFormatError):
        shape_ert.read_predictor(truncated)


def test_cached_model_is_used_and_a_damaged_entry_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_state", {"dir": tmp_path})
    monkeypatch.setattr(shape_ert, "_loaded", {})
    source = model_path("dlib_landmarks5")
    first = shape_ert.load(source, content_hash=MODELS["dlib_landmarks5"].sha256).model
    (entry,) = tmp_path.glob("shape_ert-*.bin")

    reads: list[Path] = []
    real = shape_ert.read_predictor
    monkeypatch.setattr(shape_ert, "read_predictor", lambda p: reads.append(p) or real(p))
    monkeypatch.setattr(shape_ert, "_loaded", {})  # a new process
    again = shape_ert.load(source, content_hash=MODELS["dlib_landmarks5"].sha256).model
    assert reads == []  # from the cache
    np.testing.assert_array_equal(again.leaves, first.leaves)

    data = bytearray(entry.read_bytes())
    data[-5000] ^= 0x01  # one flipped bit inside the leaf values: the checksum must catch it
    entry.write_bytes(bytes(data))
    monkeypatch.setattr(shape_ert, "_loaded", {})
    rebuilt = shape_ert.load(source, content_hash=MODELS["dlib_landmarks5"].sha256).model
    assert len(reads) == 1
    np.testing.assert_array_equal(rebuilt.leaves, first.leaves)


def test_landmarks_fall_back_to_dlib_when_the_reader_fails(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture,
                                                          pipeline: FacePipeline) -> None:
    def broken(path: object, **_: object) -> None:
        raise shape_ert.ShapeFormatError("simulated")

    monkeypatch.setattr(shape_ert, "load", broken)
    with caplog.at_level(logging.WARNING):
        predictor = landmarks.shape_predictor("dlib_landmarks5")
    assert isinstance(predictor, dlib.shape_predictor)
    assert "numpy reader failed (simulated)" in caplog.text
    image = photo("P002", "studio_portrait", 640)
    faces = pipeline.detect(image)
    five = landmarks.predict_points(predictor, image, faces.boxes[0], faces.landmarks5[0])
    assert five.shape == (5, 2)
    # the pipeline's landmarker takes either predictor and gives the same points
    dlib68 = DlibLandmarks68(dlib.shape_predictor(str(model_path("dlib_landmarks68"))))
    np.testing.assert_array_equal(dlib68.predict(image, faces), pipeline.landmarker.predict(image, faces))


def test_a_batch_of_faces_gives_each_face_its_own_points(pipeline: FacePipeline) -> None:
    """`predict_many` (the landmarker's path for upright faces) = one call per face = dlib; a face lying on its
    side goes through the turned crop and gets the points of the upright photo."""
    ours = landmarks.shape_predictor("dlib_landmarks5")
    assert isinstance(ours, shape_ert.ShapePredictor)
    theirs = dlib.shape_predictor(str(model_path("dlib_landmarks5")))
    image = photo("P003", "emotions_sheet", 1024)
    faces = pipeline.detect(image)
    assert len(faces) >= 10
    rects = [dlib_rect(box) for box in faces.boxes]
    batch = ours.predict_many(image, np.array([(r.left(), r.top(), r.right(), r.bottom()) for r in rects]))
    for rect, got in zip(rects, batch, strict=True):
        np.testing.assert_array_equal(got, np.array([(p.x, p.y) for p in theirs(image, rect).parts()], np.float32))
    # the 68-point landmarker: a photo with one face turned on its side and the others upright
    upright = photo("P004", "studio_portrait", 640)
    turned = np.ascontiguousarray(np.rot90(upright))
    lm = pipeline.landmarker
    assert lm is not None
    on_side = pipeline.detect(turned)
    flat = pipeline.detect(upright)
    mapped = np.array([[turned.shape[1] - 1 - y, x] for x, y in lm.predict(turned, on_side)[0]], np.float32)
    assert np.abs(mapped - lm.predict(upright, flat)[0]).mean() < 2.0  # the same face, found the same way


def test_faces_of_several_images_in_one_pass_get_their_own_points(pipeline: FacePipeline) -> None:
    """`DlibLandmarks68.predict_many` (the verifier's path for candidate fakes: the same box in several images)
    gives every face of every image the points `predict` gives it alone, bit for bit: real photos of different
    sizes, a colour-swapped copy, a face lying on its side and an image without faces."""
    lm = pipeline.landmarker
    assert isinstance(lm, DlibLandmarks68)
    sheet = photo("P003", "emotions_sheet", 1024)
    portrait = photo("P004", "studio_portrait", 640)
    turned = np.ascontiguousarray(np.rot90(portrait))
    other = photo("P008", "studio_portrait", 640)
    items = [(sheet, pipeline.detect(sheet)), (portrait, pipeline.detect(portrait)), (turned, pipeline.detect(turned))]
    face = items[1][1]
    items += [(other, face), (np.ascontiguousarray(other[..., ::-1]), face), (sheet, face[np.zeros(1, bool)])]
    together = lm.predict_many(items)
    assert [len(t) for t in together] == [len(f) for _, f in items] and len(together[0]) >= 10
    for (image, faces), got in zip(items, together, strict=True):
        np.testing.assert_array_equal(got, lm.predict(image, faces))
    assert not np.array_equal(together[1], together[3])  # the same box in another photo: other points
    assert landmarks.landmarks_of(lm, items)[2].shape == (1, 68, 2)


def test_without_a_writable_cache_dlib_reads_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Reading the file into numpy takes seconds; only worth it when the result is kept for the next process."""
    monkeypatch.setattr(shape_ert, "_loaded", {})
    monkeypatch.setattr(shape_ert, "read_predictor", lambda p: pytest.fail("must not read the file"))
    monkeypatch.setattr(cache, "_state", {"dir": None})  # MFMC_CACHE_DIR=off
    with caplog.at_level(logging.INFO):
        assert isinstance(landmarks.shape_predictor("dlib_landmarks5"), dlib.shape_predictor)
    assert "no writable model cache" in caplog.text
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")  # the cache folder would have to be made inside a file: it cannot be written
    monkeypatch.setattr(cache, "_state", {"dir": blocked / "models"})
    assert not shape_ert.cacheable(model_path("dlib_landmarks5"))
    assert isinstance(landmarks.shape_predictor("dlib_landmarks5"), dlib.shape_predictor)
    monkeypatch.setattr(cache, "_state", {"dir": tmp_path / "new" / "models"})  # made on first use
    assert shape_ert.cacheable(model_path("dlib_landmarks5"))


def test_the_closed_form_similarity_is_the_svd_one_on_real_shapes(pipeline: FacePipeline) -> None:
    """`_similarity_m` (2-D closed form: 2 × the covariance's similarity part over the source variance) gives the
    float32 matrices of Umeyama's SVD form (dlib's `find_similarity_transform`), on the model's mean shape
    against the 68 points of real faces (scaled, mirrored: a negative determinant). (Points all on one line are no
    face: there the SVD form's rotation is numerically arbitrary, even a reflection; the closed form's a rotation.)"""
    model = landmarks.shape_predictor("dlib_landmarks68").model
    reference = model.initial.reshape(-1, 2)
    image = photo("P003", "emotions_sheet", 1024)
    pts = pipeline.landmarker.predict(image, pipeline.detect(image))
    norm = (pts - pts.min(1, keepdims=True)) / np.ptp(pts, axis=1, keepdims=True)
    shapes = np.concatenate([norm, norm * 0.3 + 0.2, norm[..., ::-1], reference[None] * 1.5]).astype(np.float32)

    def svd_form(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        a, b = src.astype(np.float64), dst.astype(np.float64)
        da, db = a - a.mean(0), b - b.mean(1, keepdims=True)
        sigma = (da * da).sum() / len(a)
        cov = np.einsum("npi,pj->nij", db, da) / len(a)
        u, d, vt = np.linalg.svd(cov)
        det = np.linalg.det(cov)
        flip = (det < 0) | ((det == 0) & (np.linalg.det(u) * np.linalg.det(vt) < 0))
        s = np.ones((len(b), 2))
        s[flip, 1] = -1.0
        r = np.einsum("nij,nj,njk->nik", u, s, vt)
        return (((d * s).sum(1) / sigma)[:, None, None] * r).astype(np.float32)

    got = shape_ert._similarity_m(reference, shapes)
    assert len(shapes) >= 30
    np.testing.assert_array_equal(got, svd_form(reference, shapes))


def test_rectangles_over_the_image_edge_read_dark_pixels_there_as_dlib(pipeline: FacePipeline) -> None:
    """A face box hanging over any edge of the photo (its feature pixels outside read 0, as dlib reads them),
    in colour and in grey: dlib's points, and the same in one batched pass over several images."""
    ours = landmarks.shape_predictor("dlib_landmarks68")
    assert isinstance(ours, shape_ert.ShapePredictor)
    theirs = dlib.shape_predictor(str(model_path("dlib_landmarks68")))
    image = photo("P004", "studio_portrait", 640)
    rect = dlib_rect(pipeline.detect(image).boxes[0])
    h, w = image.shape[:2]
    x, y, side = rect.left(), rect.top(), rect.width()
    left, top, right, bottom = -side // 2, -side // 3, w - side // 2, h - side // 2  # half or a third outside
    rects = [(left, y, left + side, y + side), (x, top, x + side, top + side),
             (right, y, right + side, y + side), (x, bottom, x + side, bottom + side)]
    grey = np.ascontiguousarray(image[..., 1])
    for img in (image, grey):
        for r in rects:
            expected = np.array([(p.x, p.y) for p in theirs(img, dlib.rectangle(*r)).parts()], np.float32)
            np.testing.assert_array_equal(ours(img, r), expected)
    batch = ours.predict_images([image, grey], np.array([0, 1, 0, 1]), np.array(rects, np.float64))
    for img, r, got in zip([image, grey, image, grey], rects, batch, strict=True):
        np.testing.assert_array_equal(got, ours(img, r))
