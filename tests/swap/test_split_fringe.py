"""The split swapper keeps the source's hair over its forehead: the target's forehead skin had been painted into
fringes (p3.jpg's masked woman: skin-coloured patches in her bangs, and every fake of her read "happy")."""

from __future__ import annotations

import cv2
import numpy as np

from mfmc.swap.split import SplitSwapper, _forehead_ramp
from mfmc.swap.warp import skin
from tests.swap.conftest import Astronaut


def test_the_fringe_over_the_forehead_stays_the_sources(astronaut: Astronaut) -> None:
    """The astronaut's fringe (~1300 px of hair in the forehead band, away from its feathered edge) with the
    built-in pool's women: without the rule 300-320 of them changed by more than 8 levels (mean 7-8), with it
    none (mean 0.1), the fake says so, and it still changes the face below the brows."""
    image, src, pool = astronaut.image, astronaut.points, astronaut.pool
    for target_id in astronaut.women:
        crop, face = pool.target(target_id)
        painted, kept = (SplitSwapper(keep_fringe=k).swap(image, src, crop, face.landmarks68[0]) for k in (False, True))
        x1, y1, x2, y2 = kept.patch.box
        region = image[y1:y2, x1:x2].astype(np.int16)
        above = _forehead_ramp(src, (y2 - y1, x2 - x1), (x1, y1)) < 1.0
        hair = ((1 - skin(image[y1:y2, x1:x2], src, (x1, y1))).astype(bool) & above).astype(np.uint8)
        hair = cv2.erode(hair, np.ones((5, 5), np.uint8)).astype(bool)
        assert hair.sum() > 500, target_id
        before, after = (np.abs(r.patch.apply(image)[y1:y2, x1:x2].astype(np.int16) - region).max(-1)
                         for r in (painted, kept))
        assert (before[hair] > 8).sum() > 200, (target_id, int((before[hair] > 8).sum()))
        assert (after[hair] > 8).sum() == 0, (target_id, int((after[hair] > 8).sum()))
        assert any("hair over its forehead" in n for n in kept.notes)
        assert after[~above].mean() > 5.0  # the face itself is still the fake's
