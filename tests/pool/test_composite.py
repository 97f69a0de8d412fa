"""Part composites (`mfmc.pool.composite`) on faces of the built-in pool: folded warp triangles are filled, not
left black; the shape model is symmetric and needs a few shapes."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.pool.composite import ShapeModel, _frame_points, warp


@pytest.fixture(scope="module")
def pool() -> TargetPool:
    return TargetPool.default()


def test_folded_triangles_are_filled_from_around_them(pool: TargetPool) -> None:
    from mfmc.vision.mesh import piecewise_affine_maps, triangulate

    img, face = pool.target(pool.ids[0])
    src = np.asarray(face.landmarks68[0], np.float64)
    dst = src.copy()
    dst[26] = dst[24] + (dst[24] - dst[26])  # the right brow's tail folded back over the brow
    h, w = img.shape[:2]
    frame = _frame_points(w, h)
    pd, ps = np.vstack([dst, frame]), np.vstack([src, frame])
    _, _, covered = piecewise_affine_maps(pd, ps, triangulate(pd), (0, 0, w, h))
    holes = ~covered
    assert holes.sum() > 20  # the fold leaves pixels no triangle maps
    out = warp(img, src, dst)
    assert out.shape == img.shape and out.dtype == np.uint8
    # filled with the colours around them (skin and brow), not black
    assert out[holes].mean() > 40 and (out[holes].sum(axis=1) == 0).mean() < 0.01


def test_shape_model_needs_three_shapes_and_orders_components(pool: TargetPool) -> None:
    lms = [np.asarray(pool.entry(i).landmarks68, np.float64) for i in pool.ids[:20]]
    with pytest.raises(ValueError):
        ShapeModel.fit(lms[:2])
    model = ShapeModel.fit(lms, k=4)
    assert model.k == 4 and np.all(np.diff(model.sd) <= 1e-12) and model.sd[-1] >= 0
    assert np.allclose(model.offset([0, 0, 0, 0], lms[0]), 0)
    # coefficients scale the displacement linearly (before the eyes and mouth are refitted, which is linear too)
    d1, d2 = model.offset([1, -0.5], lms[0]), model.offset([2, -1], lms[0])
    assert np.allclose(d2, 2 * d1, atol=1e-9)
