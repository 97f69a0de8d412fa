"""The split swapper scales the target's fine detail to the photo's own detail contrast (never up): a crisp,
made-up pool face pasted at full contrast into a soft photo read as drawn-on brows and painted eye shadow."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from mfmc.pool import TargetPool
from mfmc.swap import landmarks as lmk
from mfmc.swap.split import SplitSwapper, detail_gain
from mfmc.vision import FacePipeline


def test_detail_gain_is_the_contrast_ratio_within_its_bounds() -> None:
    rng = np.random.default_rng(0)
    soft, crisp = rng.normal(0, 2.0, 500), rng.normal(0, 8.0, 500)
    assert detail_gain(soft, crisp, 0.6) == pytest.approx(0.6)  # ratio ~0.25, floored
    assert detail_gain(crisp, soft, 0.6) == 1.0  # never sharpened
    assert detail_gain(rng.normal(0, 6.0, 500), crisp, 0.6) == pytest.approx(0.75, abs=0.08)
    assert detail_gain(soft, crisp, 1.0) == 1.0  # floor 1: off


def _high_pass_energy(image: np.ndarray, pts: np.ndarray) -> float:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    hull = cv2.convexHull(pts[lmk.INNER].astype(np.float32))[:, 0].astype(np.int32)
    mask = np.zeros(grey.shape, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return float((grey - cv2.GaussianBlur(grey, (0, 0), 2.0))[mask > 0].std())


def test_a_soft_photo_gets_a_softer_fake(pipeline: FacePipeline) -> None:
    """The astronaut blurred (a soft phone photo): with the gain the fake's fine detail inside the inner face is
    closer to the photo's own than at full target contrast (floor 1.0 turns the gain off)."""
    image = np.ascontiguousarray(cv2.GaussianBlur(data.astronaut(), (0, 0), 1.6))
    faces = pipeline.analyze(image, recognizers=())
    pool = TargetPool.default()
    src = lmk.as_points(faces.landmarks68[0])
    own = _high_pass_energy(image, src)
    women = [t for t in pool.ids if pool.classifier_female(t) is not None and pool.classifier_female(t) > 0.9][:3]
    assert women
    for target_id in women:
        crop, face = pool.target(target_id)
        soft = SplitSwapper().swap(image, faces.landmarks68[0], crop, face.landmarks68[0]).patch.apply(image)
        full = SplitSwapper(detail_gain_min=1.0).swap(image, faces.landmarks68[0], crop,
                                                      face.landmarks68[0]).patch.apply(image)
        e_soft, e_full = _high_pass_energy(soft, src), _high_pass_energy(full, src)
        assert e_soft < e_full and abs(e_soft - own) < abs(e_full - own), (target_id, own, e_soft, e_full)
