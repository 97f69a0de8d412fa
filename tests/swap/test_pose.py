"""Pose-aware swaps (issue 11, pose coverage): a frontal target's shape turned to a turned source's pose.

Real data only: the built-in pool's landmarks (openpeople people at pool positions) for the geometry properties;
the emotion sheet of P009 (openpeople position 8, reserved: never in a pool) for a real head turned ~35°.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, pose
from mfmc.swap import landmarks as lmk
from mfmc.swap.split import SplitSwapper
from mfmc.swap.warp import WarpSwapper
from mfmc.vision import FacePipeline, Faces
from mfmc.vision.alignment import similarity_fit
from mfmc.vision.mesh import folded, piecewise_affine_maps, triangulate
from tests.swap.conftest import VERIFIERS
from tests.vision.helpers import photo

angles = st.tuples(st.floats(-60.0, 60.0), st.floats(-30.0, 30.0))


def _pool_shapes() -> list[np.ndarray]:
    pool = TargetPool.default()
    return [np.asarray(pool.entry(t).landmarks68, np.float64) for t in pool.ids[:12]]


SHAPES = _pool_shapes()


@settings(max_examples=30, deadline=None)
@given(which=st.integers(0, len(SHAPES) - 1), a=angles, b=angles)
def test_posed_is_the_identity_at_no_rotation_and_round_trips(which: int, a: tuple[float, float],
                                                             b: tuple[float, float]) -> None:
    x = SHAPES[which]
    iod = lmk.interocular(x)
    assert np.allclose(pose.posed(x, a, a), x, atol=1e-9 * iod)
    there = pose.posed(x, a, b)
    if max(abs(a[0] - b[0]), abs(a[1] - b[1])) > 1.0:
        assert np.abs(there - x).max() > 1e-3 * iod
    assert np.allclose(pose.posed(there, b, a), x, atol=1e-6 * iod)


@settings(max_examples=30, deadline=None)
@given(which=st.integers(0, len(SHAPES) - 1), a=angles, b=angles)
def test_posed_commutes_with_mirroring(which: int, a: tuple[float, float], b: tuple[float, float]) -> None:
    x = SHAPES[which]
    width = 400.0
    mirror_a, mirror_b = (-a[0], a[1]), (-b[0], b[1])
    left = pose.mirrored(pose.posed(x, a, b), width)
    right = pose.posed(pose.mirrored(x, width), mirror_a, mirror_b)
    assert np.allclose(left, right, atol=1e-6 * lmk.interocular(x))


def test_turning_moves_the_nose_towards_the_yaw_and_shrinks_the_far_side() -> None:
    x = SHAPES[0]
    t_pose = pose.frontal_pose(x)
    assert abs(t_pose[0]) <= 10  # a pool face is near frontal
    left = pose.posed(x, t_pose, (-40.0, 0.0))  # nose towards the image's left
    eyes = lambda p: (p[36] + p[45]) / 2  # noqa: E731
    assert (left[30] - eyes(left))[0] < (x[30] - eyes(x))[0] - 0.1 * lmk.interocular(x)
    # the image-left half of the face (turned away) is narrower than the image-right half
    assert np.linalg.norm(left[39] - left[36]) < np.linalg.norm(left[45] - left[42])
    # and the fitted pose of the turned shape is the pose it was turned to
    assert pose.fit_pose(left, x, t_pose) == pytest.approx((-40.0, 0.0), abs=2.0)


def test_folded_triangles_are_not_sampled() -> None:
    src = np.array([[0.0, 0.0], [40.0, 0.0], [0.0, 40.0], [40.0, 40.0]])
    dst = src.copy()
    dst[3] = [10.0, 10.0]  # the far corner pulled across the diagonal: that triangle folds over
    tri = np.array([[0, 1, 2], [1, 3, 2]])
    assert folded(dst, src, tri).tolist() == [0, 1]
    map_x, map_y, covered = piecewise_affine_maps(dst, src, tri, (0, 0, 41, 41))
    # the folded triangle lies over the kept one: had it been drawn, pixels there would map through its
    # (mirroring) affine; they map through the kept triangle's (the identity here) instead
    assert covered[12, 14] and map_x[12, 14] == pytest.approx(14) and map_y[12, 14] == pytest.approx(12)
    assert not covered[35, 35]


@pytest.fixture(scope="module")
def turned(pipeline: FacePipeline) -> tuple[np.ndarray, Faces, int]:
    """P009's emotion sheet (a reserved person): the tile where she looks ~35° to the side."""
    sheet = photo("P009", "emotions_sheet", 1600)
    faces = pipeline.analyze(sheet)
    i = int(np.argmax(np.abs(faces.pose[:, 0])))
    assert abs(float(faces.pose[i, 0])) > 30, faces.pose
    return sheet, faces, i


def test_a_frontal_target_posed_fits_a_turned_face(turned: tuple[np.ndarray, Faces, int], pool: TargetPool) -> None:
    _, faces, i = turned
    src = np.asarray(faces.landmarks68[i], np.float64)
    yaw = float(faces.pose[i, 0])
    plain, posed = [], []
    for tid in pool.ids:
        tgt = np.asarray(pool.entry(tid).landmarks68, np.float64)
        aligned = lmk.transform(similarity_fit(tgt, src), tgt)
        plain.append(np.sqrt(((aligned - src) ** 2).sum(1).mean()))
        posed.append(np.sqrt(((pose.posed_to(src, tgt) - src) ** 2).sum(1).mean()))
        assert np.sign(pose.source_pose(src)[0]) == np.sign(yaw)
    assert np.median(posed) < 0.8 * np.median(plain), (np.median(posed), np.median(plain))


@pytest.mark.slow
def test_a_turned_face_gets_a_verified_swap_not_pixelation(
    pipeline: FacePipeline, pool: TargetPool, turned: tuple[np.ndarray, Faces, int]
) -> None:
    image, faces, i = turned
    # plain pool faces only (no recombined identities): the turned face must get a frontal target turned to it
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, recombine=0)
    patch, report = gen.fake_face(image, faces, i, seed=0)
    assert report.fallback in ("none", "alpha"), report.to_dict()
    assert report.verified and report.target is not None
    out = patch.apply(image)
    changed = np.any(out != image, axis=2)
    assert not (changed & ~patch.full_mask()).any()
    assert report.metrics["landmark_error"] <= 0.05, report.metrics


@pytest.mark.parametrize("swapper", [SplitSwapper(), WarpSwapper()], ids=["split", "warp"])
def test_swapping_a_turned_face_changes_nothing_outside_the_mask_and_samples_no_fold(
    pool: TargetPool, turned: tuple[np.ndarray, Faces, int], swapper: SplitSwapper | WarpSwapper
) -> None:
    image, faces, i = turned
    src = np.asarray(faces.landmarks68[i], np.float64)
    tid = next(t for t in pool.ids if pool.entry(t).gender == str(faces.gender[i]))
    timg, tface = pool.target(tid)
    tgt = np.asarray(tface.landmarks68[0], np.float64)
    dst = pose.destination(src, tgt, 1.0)
    assert np.array_equal(dst[lmk.JAW], src[lmk.JAW])
    ext = lmk.extended(dst, 0.22)
    tri = triangulate(ext)
    assert folded(ext, lmk.extended(tgt, 0.22), tri).sum() <= len(tri) // 4
    result = swapper.swap(image, src, timg, tgt, alpha=1.0)
    out = result.patch.apply(image)
    changed = np.any(out != image, axis=2)
    assert changed.any()
    assert not (changed & ~result.patch.full_mask()).any()


def _mouth_shape(p: np.ndarray) -> np.ndarray:
    return p[pose.MOUTH] - p[pose.MOUTH].mean(0)


def test_the_destination_keeps_the_sources_smile_and_eye_aperture(pipeline: FacePipeline) -> None:
    """The smiling astronaut (scikit-image) onto neutral pool faces: with `expression` the lips keep the source's
    shape (a smile stays a smile) and the eyes their aperture, while brows and nose still move to the target."""
    skimage_data = pytest.importorskip("skimage.data")
    face = pipeline.analyze(np.ascontiguousarray(skimage_data.astronaut()))
    src = np.asarray(face.landmarks68[0], np.float64)
    assert lmk.smile(src) > lmk.SMILE
    neutral = [t for t in SHAPES if lmk.smile(t) < lmk.SMILE]
    assert len(neutral) >= 2
    moved = 0
    for tgt in neutral:
        plain = pose.destination(src, tgt, 1.0)
        kept = pose.destination(src, tgt, 1.0, expression=True)
        assert lmk.smile(kept) == pytest.approx(lmk.smile(src), abs=0.005)  # up to the nose bridge axis
        assert np.allclose(_mouth_shape(kept), _mouth_shape(src))  # the lips only moved, as a whole
        assert not np.allclose(_mouth_shape(plain), _mouth_shape(src), atol=0.01 * lmk.interocular(src))
        assert lmk.eye_openness(kept) == pytest.approx(lmk.eye_openness(src), abs=1e-9)
        # the brows keep the target's shape, at the source's height above the eyes (tests/swap/test_pose_brows.py)
        assert lmk.brow_height(kept) == pytest.approx(lmk.brow_height(src), abs=1e-9)
        moved += np.abs(kept[27:36] - src[27:36]).max() > 0.01 * lmk.interocular(src)
    assert moved == len(neutral)
