"""The split swapper tones a target's brows down to the source's brow darkness (their shape kept): pool targets'
heavy, drawn-on brows had made women's fakes read masculine (issue 11's real photos: t1.jpg #2, 0-f1-su-ph)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mfmc.swap import landmarks as lmk
from mfmc.swap.pose import destination
from mfmc.swap.split import SplitSwapper, brow_band, brow_darkness, brow_gain
from tests.swap.conftest import Astronaut


def test_brow_gain_tones_down_only_and_keeps_its_floor() -> None:
    assert brow_gain(-5.0, -10.0, 0.4) == pytest.approx(0.5)
    assert brow_gain(-1.0, -10.0, 0.4) == pytest.approx(0.4)  # floored: the brows' shape stays visible
    assert brow_gain(-12.0, -10.0, 0.4) == 1.0  # a target lighter than the source: never darkened
    assert brow_gain(3.0, -10.0, 0.4) == pytest.approx(0.4)  # a source with no darker brows than its shading
    assert brow_gain(float("nan"), -10.0, 0.4) == 1.0
    assert brow_gain(-1.0, -10.0, 1.0) == 1.0  # floor 1: off


def test_brow_darkness_is_the_mean_of_the_darkest_share() -> None:
    detail = np.zeros((20, 20), np.float32)
    band = np.zeros((20, 20), bool)
    band[5:10, :] = True  # 100 pixels
    detail[5:7, :] = -10.0  # 40 of them dark
    assert brow_darkness(detail, band) == pytest.approx(-10.0)
    assert np.isnan(brow_darkness(detail, np.zeros_like(band)))


def _darkness(image: np.ndarray, pts: np.ndarray) -> float:
    """The darkest 40 % of the brow band's fine lightness (L minus its blur at 0.2 x the eye-corner distance)."""
    light = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[..., 0]
    fine = light - cv2.GaussianBlur(light, (0, 0), 0.2 * lmk.interocular(pts))
    return brow_darkness(fine, brow_band(pts, light.shape, (0, 0)))


def test_the_astronauts_fakes_get_brows_no_darker_than_hers(astronaut: Astronaut) -> None:
    """Real photo (skimage's astronaut, light brows) and the built-in pool's women: at their destination geometry
    the fake's brows are lighter than at full target contrast (floor 1.0: off), the change stays near the brows,
    and the swap says so."""
    image, src, pool = astronaut.image, astronaut.points, astronaut.pool
    for target_id in astronaut.women:
        crop, face = pool.target(target_id)
        tgt = lmk.as_points(face.landmarks68[0])
        toned = SplitSwapper().swap(image, src, crop, tgt)
        full = SplitSwapper(brow_floor=1.0).swap(image, src, crop, tgt)
        assert any("brows toned" in n for n in toned.notes), toned.notes
        on, off = toned.patch.apply(image), full.patch.apply(image)
        dst = destination(src, tgt, 0.5)
        assert _darkness(on, dst) > _darkness(off, dst) + 3.0, target_id
        # away from the brows (below the eyes' lower lids) the two fakes are the same
        below = np.zeros(image.shape[:2], bool)
        below[int(dst[[40, 41, 46, 47], 1].max() + 0.15 * lmk.interocular(dst)):, :] = True
        diff = np.abs(on.astype(np.int16) - off.astype(np.int16)).max(axis=2)
        assert diff[below].max() <= 1, target_id
