"""`destination(..., placement=)`: the brows and nose take more of the target's shape than `alpha`, while the eyes,
lips and outline stay as `alpha` (or `expression`) made them (real data: the scikit-image astronaut's 68 points
onto the built-in pool's faces)."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap import pose
from mfmc.vision import FacePipeline


@pytest.fixture(scope="module")
def astronaut(pipeline: FacePipeline) -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data")
    face = pipeline.analyze(np.ascontiguousarray(skimage_data.astronaut()))
    return np.asarray(face.landmarks68[0], np.float64)


def _targets() -> list[np.ndarray]:
    pool = TargetPool.default()
    return [np.asarray(pool.entry(t).landmarks68, np.float64) for t in pool.ids[:8]]


@pytest.mark.parametrize("expression", [False, True])
def test_placement_moves_only_brows_and_nose_further(astronaut: np.ndarray, expression: bool) -> None:
    src = astronaut
    rest = np.setdiff1d(np.arange(68), pose.BROWS_NOSE)
    moved = 0
    for tgt in _targets():
        half = pose.destination(src, tgt, 0.5, expression=expression)
        full = pose.destination(src, tgt, 1.0, expression=expression)
        placed = pose.destination(src, tgt, 0.5, expression=expression, placement=1.0)
        # eyes, lips and the outline exactly as alpha 0.5 made them; brows and nose where alpha 1 puts them
        assert np.array_equal(placed[rest], half[rest])
        if expression:  # the nose as alpha 1; each brow alpha 1's shape, at the source's height over its eye
            nose = np.setdiff1d(pose.BROWS_NOSE, lmk.BROWS)
            assert np.allclose(placed[nose], full[nose])
            for brow in (np.arange(17, 22), np.arange(22, 27)):
                assert np.allclose(placed[brow] - placed[brow].mean(0), full[brow] - full[brow].mean(0))
            assert lmk.brow_height(placed) == pytest.approx(lmk.brow_height(src), abs=1e-9)
        else:
            assert np.allclose(placed[pose.BROWS_NOSE], full[pose.BROWS_NOSE])
        assert np.array_equal(placed[lmk.JAW], src[lmk.JAW])
        step = np.linalg.norm(placed[pose.BROWS_NOSE] - half[pose.BROWS_NOSE], axis=1).max()
        moved += step > 0.01 * lmk.interocular(src)
    assert moved >= 6  # pool faces differ from the astronaut: the extra step is visible on nearly all


def test_placement_at_or_below_alpha_changes_nothing(astronaut: np.ndarray) -> None:
    tgt = _targets()[0]
    base = pose.destination(astronaut, tgt, 0.5)
    assert np.array_equal(pose.destination(astronaut, tgt, 0.5, placement=0.5), base)
    assert np.array_equal(pose.destination(astronaut, tgt, 0.5, placement=0.3), base)
    assert np.array_equal(pose.destination(astronaut, tgt, 0.0, placement=1.0), astronaut)
