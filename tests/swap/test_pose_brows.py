"""`destination(..., expression=True)` keeps the source's brow height above the eyes (`pose.kept_brow_height`), the
brows' shape still the target's. Real data only: the built-in pool's 68 points for the geometry; P009's emotion
sheet (openpeople, reserved: never in a pool) for re-predicted fakes of raised and lowered brows."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap import pose
from mfmc.swap.landmarks import GEOMETRY_TOLERANCE
from mfmc.swap.split import SplitSwapper
from mfmc.vision import FacePipeline, Faces
from tests.vision.helpers import photo

SIDES = ((np.arange(17, 22), lmk.RIGHT_EYE), (np.arange(22, 27), lmk.LEFT_EYE))


def _shapes() -> list[np.ndarray]:
    pool = TargetPool.default()
    return [np.asarray(pool.entry(t).landmarks68, np.float64) for t in pool.ids[:12]]


def _side_height(p: np.ndarray, brow: np.ndarray, eye: np.ndarray) -> float:
    up = (p[27] - p[8]) / np.linalg.norm(p[27] - p[8])
    return float((p[brow].mean(0) - p[eye].mean(0)) @ up / lmk.interocular(p))


def test_the_brows_keep_the_sources_height_and_the_targets_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = _shapes()
    missed = 0
    for src in shapes[:4]:
        for tgt in shapes[4:]:
            for alpha in (0.5, 1.0):
                plain = pose.destination(src, tgt, alpha)
                kept = pose.destination(src, tgt, alpha, expression=True)
                with monkeypatch.context() as m:
                    m.setattr(pose, "kept_brow_height", lambda source, dst: dst)
                    raw = pose.destination(src, tgt, alpha, expression=True)
                # only the brows differ from the expression geometry without the brow step
                other = np.setdiff1d(np.arange(68), lmk.BROWS)
                assert np.array_equal(kept[other], raw[other])
                assert not np.allclose(kept[lmk.BROWS], raw[lmk.BROWS])
                for brow, eye in SIDES:
                    assert _side_height(kept, brow, eye) == pytest.approx(_side_height(src, brow, eye), abs=1e-9)
                    # the brow's shape is the target's (as the plain geometry placed it), only shifted
                    assert np.allclose(kept[brow] - kept[brow].mean(0), plain[brow] - plain[brow].mean(0))
                    # natural: every brow point above its eye's upper lid, not pressed into it
                    up = (kept[27] - kept[8]) / np.linalg.norm(kept[27] - kept[8])
                    assert (kept[brow] @ up).min() > (kept[eye[1:3]] @ up).max()
                assert lmk.brow_height(kept) == pytest.approx(lmk.brow_height(src), abs=1e-9)
                missed += abs(lmk.brow_height(plain) - lmk.brow_height(src)) > GEOMETRY_TOLERANCE.brows / 2
    assert missed >= 8  # pool faces' brows sit at different heights: the plain geometry moves them visibly


@pytest.fixture(scope="module")
def sheet(pipeline: FacePipeline) -> tuple[np.ndarray, Faces]:
    image = photo("P009", "emotions_sheet", 1600)
    return image, pipeline.analyze(image)


def test_fakes_keep_raised_and_lowered_brows(pipeline: FacePipeline, sheet: tuple[np.ndarray, Faces],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The expression retry's swapper (split, coarse, alpha 1) onto pool faces: the fakes' re-predicted brow
    height stays within the verifier's tolerance of P009's raised (surprise) and lowered brows; without the
    brow step most of the same fakes move beyond it (the brows follow the target's)."""
    image, faces = sheet
    heights = [lmk.brow_height(np.asarray(p, np.float64)) for p in faces.landmarks68]
    pool = TargetPool.default()
    swapper = SplitSwapper(sigma_max=2.0, keep_expression=True)

    def changes() -> list[float]:
        out = []
        for i in (int(np.argmax(heights)), int(np.argmin(heights))):
            src = np.asarray(faces.landmarks68[i], np.float64)
            for tid in [t for t in pool.ids if pool.entry(t).gender == str(faces.gender[i])][:4]:
                timg, tface = pool.target(tid)
                fake = swapper.swap(image, src, timg, np.asarray(tface.landmarks68[0], np.float64), alpha=1.0)
                again = pipeline.analyze(fake.patch.apply(image))
                j = int(np.argmin(np.linalg.norm(again.landmarks68.mean(1) - src.mean(0), axis=1)))
                out.append(lmk.brow_height(np.asarray(again.landmarks68[j], np.float64)) - heights[i])
        return out

    assert max(heights) - min(heights) > 0.15  # the sheet has raised and lowered brows
    kept = changes()
    assert max(abs(d) for d in kept) < GEOMETRY_TOLERANCE.brows, kept
    monkeypatch.setattr(pose, "kept_brow_height", lambda source, dst: dst)
    followed = changes()
    assert sum(abs(d) > GEOMETRY_TOLERANCE.brows for d in followed) >= 5, followed
