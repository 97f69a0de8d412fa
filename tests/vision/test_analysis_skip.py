"""`analyze(min_size=...)`: faces too small to be anything but pixelated are not embedded (most of an analysis),
and `embedded_mask` says which faces were; the others get exactly the embeddings a full analysis gives."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.vision import FacePipeline, Faces
from mfmc.vision.pipeline import embedded_mask
from tests.vision.helpers import make_group, match


class Counting:
    """Wraps a recognizer and records how many faces each `embed` call received."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.dim = inner.dim  # type: ignore[attr-defined]
        self.calls: list[int] = []

    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        self.calls.append(len(faces))
        return self.inner.embed(image, faces)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_tiny_faces_are_not_embedded(pipeline: FacePipeline) -> None:
    group = make_group(pipeline, [14, 16, 18, 40, 60, 80], (300, 600), seed=11)
    faces = pipeline.detect(group.image)
    assert match(group.boxes, faces.boxes, min_iou=0.3) == (6, 0)
    small = np.minimum(faces.widths, faces.heights) < 20
    assert 0 < small.sum() < len(faces)

    counting = Counting(pipeline.recognizers["dlib"])
    spy = FacePipeline(pipeline.detector, landmarker=pipeline.landmarker, recognizers={"dlib": counting},
                       attributes=pipeline.attributes)
    skipped = spy.analyze(group.image, faces, min_size=20)
    assert counting.calls == [int((~small).sum())]  # the recognizer never saw a tiny face
    np.testing.assert_array_equal(embedded_mask(skipped), ~small)
    assert np.isnan(skipped.embeddings["dlib"][small]).all()

    full = spy.analyze(group.image, faces)
    assert embedded_mask(full).all()
    np.testing.assert_allclose(skipped.embeddings["dlib"][~small], full.embeddings["dlib"][~small], atol=1e-5)
    # landmarks and attributes are cheap and still there for every face
    assert skipped.landmarks68 is not None and np.isfinite(skipped.landmarks68).all()
    assert skipped.gender is not None and len(skipped.gender) == len(faces)


def test_embedded_mask_without_embeddings_or_names() -> None:
    faces = Faces(boxes=np.array([[0, 0, 10, 10], [0, 0, 30, 30]], np.float32), scores=np.ones(2),
                  landmarks5=np.zeros((2, 5, 2)), embeddings={"a": np.array([[np.nan, 1.0], [0.5, 1.0]])})
    np.testing.assert_array_equal(embedded_mask(faces), [False, True])
    np.testing.assert_array_equal(embedded_mask(faces, ["b"]), [False, False])  # missing recognizer: none
    np.testing.assert_array_equal(embedded_mask(faces, []), [True, True])
