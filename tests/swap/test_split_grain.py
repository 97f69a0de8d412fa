"""An enlarged target gets the photo's grain: a pool crop stretched 2x onto a crisp photo left a soft, airbrushed
inner face (obama.jpg, biden.jpg: 2.3-2.7x); the split swapper adds band-passed noise as strong as the photo's own
fine band, and leaves targets it does not enlarge exactly as before."""

from __future__ import annotations

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.swap.split import SplitSwapper
from tests.swap.conftest import Astronaut


def _grain(image: np.ndarray, pts: np.ndarray, sigma: float) -> float:
    """Robust spread (grey levels) of the band finer than `sigma` px over the inner face."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    hull = cv2.convexHull(pts[lmk.INNER].astype(np.float32))[:, 0].astype(np.int32)
    mask = np.zeros(grey.shape, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return 1.4826 * float(np.median(np.abs((grey - cv2.GaussianBlur(grey, (0, 0), sigma))[mask > 0])))


def test_an_enlarged_target_gets_the_photos_grain(astronaut: Astronaut) -> None:
    """The astronaut (a crisp scan) with the built-in pool's women, their crops shrunk to 0.4 (enlarged 2.2-2.4x
    onto her): without grain the fake's fine band is under half the photo's (measured 2.7-3.0 against 5.9-6.5
    grey levels), with it within 15 % of it; at the crops' own size (enlarged < 1x) the patch is unchanged."""
    image, src, pool = astronaut.image, astronaut.points, astronaut.pool
    for target_id in astronaut.women:
        crop, face = pool.target(target_id)
        tgt = lmk.as_points(face.landmarks68[0])
        same = [SplitSwapper(grain=g).swap(image, src, crop, tgt) for g in (False, True)]
        assert lmk.interocular(src) / lmk.interocular(tgt) < 1.4
        assert same[0].patch == same[1].patch and same[0].notes == same[1].notes
        small = cv2.resize(crop, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
        zoom = lmk.interocular(src) / lmk.interocular(tgt * 0.4)
        off, on = (SplitSwapper(grain=g).swap(image, src, small, tgt * 0.4) for g in (False, True))
        assert any("photo grain" in n for n in on.notes) and not any("grain" in n for n in off.notes)
        own = _grain(image, src, 0.5 * zoom)
        soft, grained = (_grain(r.patch.apply(image), src, 0.5 * zoom) for r in (off, on))
        assert soft < 0.6 * own, (target_id, own, soft)
        assert abs(grained - own) < 0.15 * own, (target_id, own, grained)
        # the grain stays inside the patch: nothing outside its mask moves
        outside = on.patch.full_mask() == 0
        assert np.array_equal(on.patch.apply(image)[outside], image[outside])
