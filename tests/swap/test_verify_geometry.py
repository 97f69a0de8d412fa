"""The expression-geometry check (`Verifier.geometry`, `mfmc.swap.landmarks.ExpressionGeometry`) on real faces:
openpeople P007's emotion sheet (a demo person, never in the pool) and the built-in pool's labelled crops."""

from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap.landmarks import GEOMETRY_TOLERANCE, ExpressionGeometry
from mfmc.swap.metrics import expression_change, fake_metrics
from mfmc.swap.verify import Verifier
from mfmc.vision import FacePipeline, Faces
from tests.vision.helpers import photo

# the points that move least with the expression: eye corners, nose bridge and base
STABLE = np.array([36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35])


@pytest.fixture(scope="module")
def sheet(pipeline: FacePipeline) -> tuple[np.ndarray, Faces, np.ndarray]:
    """P007's 4×4 emotion sheet (faces ~140 px), its faces and their reading order (rows, then columns)."""
    image = photo("P007", "emotions_sheet", 1600)
    faces = pipeline.analyze(image, recognizers=[])
    order = np.lexsort((faces.boxes[:, 0], np.round(faces.boxes[:, 1] / 100)))
    assert len(order) == 16
    return image, faces, order


def _onto(pts: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`pts` moved onto `ref` by the similarity that best maps their stable points (another expression of the
    same face where `ref` is: what a fake with that expression re-predicts)."""
    m, _ = cv2.estimateAffinePartial2D(pts[STABLE].astype(np.float32), ref[STABLE].astype(np.float32))
    return lmk.transform(m, pts.astype(np.float64)).astype(np.float32)


def test_a_result_with_another_expression_geometry_is_rejected_and_one_with_the_same_passes(
    pipeline: FacePipeline, sheet: tuple[np.ndarray, Faces, np.ndarray],
) -> None:
    """The neutral face (tile 0) as the source; as results' re-predicted points, the points of other tiles of the
    same sheet moved onto it: another neutral tile (15) keeps the geometry, the surprised (6: mouth open, brows
    up) and the smiling (1: mouth corners up, teeth) ones do not; with `geometry=None` none is checked."""
    image, faces, order = sheet
    face = faces[int(order[0])]
    ref = np.asarray(face.landmarks68[0], np.float64)
    assert str(faces.expression[order[0]]) == "neutral"
    tiles = {"neutral": 15, "surprise": 6, "happy": 1}
    points = [_onto(np.asarray(faces.landmarks68[order[t]], np.float64), ref) for t in tiles.values()]
    verifier = Verifier(pipeline, margin=0.0, recognizers=[])
    verdicts = verifier.verify_many([image] * len(points), face, {}, expression=False, landmarks=points)
    same, surprise, happy = verdicts
    assert same.rejected == "" and same.geometry is not None
    assert surprise.rejected.startswith("expression geometry: ") and surprise.expression_changed
    assert "mouth +" in surprise.rejected and "brows +" in surprise.rejected
    assert happy.rejected.startswith("expression geometry: ") and "smile +" in happy.rejected
    # what the check measures is the result's geometry minus the source's, as the fake's metrics report it
    assert surprise.geometry is not None and surprise.geometry.mouth > GEOMETRY_TOLERANCE.mouth
    assert expression_change(ref, points[1]) == pytest.approx(dataclasses.asdict(surprise.geometry), abs=1e-5)
    # the fake's metrics take the verdict's measure as it is: the same figures as measured again from its points
    measured = {"source_landmarks": ref, "result_landmarks": surprise.landmarks68, "result_embeddings": {},
                "source_embeddings": {}, "target_embeddings": {}, "recognizers": {}}
    pixels = (image, image, face.boxes[0], np.zeros(image.shape[:2], bool))
    reused = fake_metrics(*pixels, **measured, expression=surprise.geometry)
    assert reused == fake_metrics(*pixels, **measured) and reused["expression_change"]["mouth"] > 0
    unchecked = Verifier(pipeline, margin=0.0, recognizers=[], geometry=None)
    assert all(v.rejected == "" and v.geometry is None for v in
               unchecked.verify_many([image] * len(points), face, {}, expression=False, landmarks=points))
    # a pixelation (attributes=False) is not checked either
    assert verifier.verify_many([image], face, {}, attributes=False, landmarks=points[1:2])[0].rejected == ""


def test_the_tolerance_separates_expressions_of_one_person_in_the_pool() -> None:
    """The calibration the tolerance rests on: pairs of crops of one pool person (single-person crops) that
    the classifier labelled with the same class stay within it far more often than pairs of two classes."""
    pool = TargetPool.default()
    people: dict[str, list[tuple[str, ExpressionGeometry]]] = {}
    for tid in pool.ids:
        who, label = pool.identity(tid), pool.expression(tid)
        if "+" in who or label is None:
            continue
        people.setdefault(who, []).append((label, ExpressionGeometry.of(pool.entry(tid).landmarks68)))
    within, across = [], []
    for rows in people.values():
        for (la, ga), (lb, gb) in itertools.combinations(rows, 2):
            (within if la == lb else across).append(not GEOMETRY_TOLERANCE.beyond(ga.minus(gb)))
    assert len(within) >= 50 and len(across) >= 100
    # measured: 85 % of 157 same-class pairs within it, 21 % of 364 pairs of two classes (docs/swap.md)
    assert np.mean(within) >= 0.75 and np.mean(across) <= 0.35


def test_beyond_names_the_measures_out_of_tolerance_largest_first() -> None:
    tol = ExpressionGeometry(eyes=0.1, mouth=0.1, smile=0.1, brows=0.05)
    assert tol.beyond(ExpressionGeometry(0.05, -0.05, 0.0, 0.04)) == []
    assert tol.beyond(ExpressionGeometry(0.15, 0.0, -0.3, 0.0)) == ["smile -0.300", "eyes +0.150"]
