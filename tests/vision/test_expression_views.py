"""Test-time views of the expression classifier (`ExpressionClassifier(views=...)`, `View`, `MIRROR_UP`): the
crops each view cuts, the mean of their readings, and what the mirror-and-raise views gain on small faces of
openpeople's captioned expression sheets."""

from __future__ import annotations

import collections

import cv2
import numpy as np
import pytest

from mfmc.vision import FacePipeline, Faces
from mfmc.vision.expression import CLASSES, MARGIN, MIRROR_UP, PLAIN, SIZE, ExpressionClassifier, View
from mfmc.vision.recognition import align_crop
from tests.vision.helpers import PEOPLE, photo
from tests.vision.test_optional_models import _sheet_cells, needs_expression


class _Recorder:
    """A stand-in session: records the crops it is given; each crop's 'probabilities' are a softmax of its
    left-half and right-half mean brightness (so a mirrored crop reads differently)."""

    def __init__(self) -> None:
        self.blobs: list[np.ndarray] = []

    def run(self, _outputs: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        blob = feeds["images"]
        self.blobs.append(blob.copy())
        left, right = blob[:, :, : SIZE // 2, 0].mean(axis=(1, 2)), blob[:, :, SIZE // 2 :, 0].mean(axis=(1, 2))
        logits = np.zeros((len(blob), len(CLASSES)), np.float32)
        logits[:, 0], logits[:, 1] = 4 * left, 4 * right
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return [e / e.sum(axis=1, keepdims=True)]


@pytest.fixture(scope="module")
def portrait(pipeline: FacePipeline) -> tuple[np.ndarray, Faces]:
    image = photo("P003", "studio_portrait", 640)
    return image, pipeline.detect(image)


def test_the_plain_view_is_the_single_aligned_crop(portrait: tuple[np.ndarray, Faces]) -> None:
    """`PLAIN` (the default) feeds the one grey crop the classifier always read (the pool's labels are its)."""
    image, faces = portrait
    session = _Recorder()
    ExpressionClassifier(session, views=PLAIN).probabilities(image, faces)
    grey = cv2.cvtColor(align_crop(image, faces.boxes[0], faces.landmarks5[0], SIZE, MARGIN), cv2.COLOR_RGB2GRAY)
    np.testing.assert_allclose(session.blobs[0][0, ..., 0], (grey / 255.0 - 0.5) * 2.0, atol=1e-6)
    assert ExpressionClassifier(_Recorder()).views == PLAIN


def test_mirror_up_reads_the_mean_of_four_crops(portrait: tuple[np.ndarray, Faces]) -> None:
    image, faces = portrait
    session = _Recorder()
    probs = ExpressionClassifier(session, views=MIRROR_UP).probabilities_many([(image, faces), (image, faces)])
    blob = np.concatenate(session.blobs)
    assert blob.shape == (2 * len(MIRROR_UP), SIZE, SIZE, 1)
    crops = blob[: len(MIRROR_UP), ..., 0]
    np.testing.assert_array_equal(crops[1], crops[0][:, ::-1])  # the mirror of the plain crop
    np.testing.assert_array_equal(crops[3], crops[2][:, ::-1])
    # the raised crop: the same face 4 % of the box higher, so its rows are the plain crop's shifted down
    shift = round(0.04 * float(faces.boxes[0][3] - faces.boxes[0][1]) * SIZE
                  / (1.058 * float(faces.boxes[0][2] - faces.boxes[0][0]) * (1 + 2 * MARGIN)))
    assert shift >= 2
    inner = slice(8, SIZE - 8)
    raised, plain = crops[2][inner, inner], crops[0][inner.start - shift : inner.stop - shift, inner]
    assert np.abs(raised - plain).mean() < 0.5 * np.abs(crops[2][inner, inner] - crops[0][inner, inner]).mean()
    single = [ExpressionClassifier(_Recorder(), views=(v,)).probabilities(image, faces)[0] for v in MIRROR_UP]
    np.testing.assert_allclose(probs[0], np.mean(single, axis=0), atol=1e-6)
    np.testing.assert_allclose(probs[1], probs[0], atol=1e-6)
    assert not np.allclose(single[0], single[1])  # the stand-in tells a mirrored crop apart
    with pytest.raises(ValueError):
        ExpressionClassifier(_Recorder(), views=())
    assert View(dy=-0.04, flip=True) in MIRROR_UP


def _hits(classifier: ExpressionClassifier, sheets: dict[str, tuple[np.ndarray, Faces]], side: int,
          quality: int | None) -> collections.Counter[str]:
    """Right readings per caption of the 80 captioned cells, the sheets reduced to `side` px (and stored as JPEG
    of `quality`), the faces' boxes and points scaled with them."""
    hits: collections.Counter[str] = collections.Counter()
    for image, faces in sheets.values():
        scale = side / max(image.shape[:2])
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if quality is not None:
            small = cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                                 cv2.IMREAD_UNCHANGED)
        scaled = faces.replace(boxes=faces.boxes * scale, landmarks5=faces.landmarks5 * scale)
        probs = classifier.probabilities(small, scaled)
        for truth, p in zip(_sheet_cells(image, faces), probs, strict=True):
            if truth is not None:
                hits["all"] += CLASSES[int(np.argmax(p))].value == truth
                hits[truth] += CLASSES[int(np.argmax(p))].value == truth
    return hits


@pytest.mark.slow
@needs_expression
def test_mirror_up_reads_small_faces_better(
    pipeline: FacePipeline, labelled_photos: dict[tuple[str, str], tuple[np.ndarray, Faces]],
) -> None:
    """Measured (the 80 captioned cells of the 10 sheets, faces found at 1024 px): sheets at 420 px (median face
    32 px) plain 66, `MIRROR_UP` 71; 300 px (23 px) 61, 62; 360 px as JPEG quality 60 (27 px) 50, 55; at
    1024 px 72, 73 (docs/faces.md)."""
    sheets = {p: labelled_photos[p, "emotions_sheet"] for p in PEOPLE}
    plain, mirror = ExpressionClassifier(), ExpressionClassifier(views=MIRROR_UP)
    gained = 0
    for side, quality in ((420, None), (300, None), (360, 60)):
        a, b = _hits(plain, sheets, side, quality), _hits(mirror, sheets, side, quality)
        print(side, quality, "plain", a["all"], "mirror-up", b["all"])
        assert b["all"] >= a["all"] - 1, (side, quality)
        gained += b["all"] - a["all"]
    assert gained >= 5
    full = _hits(mirror, sheets, 1024, None)
    assert full["all"] >= _hits(plain, sheets, 1024, None)["all"] - 1
    assert full["happy"] == 10 and full["surprise"] >= 18
