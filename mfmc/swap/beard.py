"""The beard test shared by the swappers: no target's facial hair onto a source without it (issue 11).

A beard darkens the chin and jaw against the upper cheeks. The gap (upper-cheek minus chin lightness, LAB L
0-100) is measured on the warped target and on the source, both at the destination geometry; the upper lip under
the nose is left out (its shading fired a plain darkness test). `keep_lower_face` gives the alpha map a hole over
the lower face so the source's own chin and jaw stay.
"""

from __future__ import annotations

import cv2
import numpy as np

from mfmc.swap.blend import polygon_mask

# the lower face under the mouth (chin and jaw sides), and the upper cheeks beside the nose: a beard darkens
# the first against the second. The upper lip under the nose is left out: its shading fired a plain test. On the
# pool's crops (LAB L, cheeks minus chin) women measured -0.4 to 19, the bearded man 15 to 43 (median 34): a
# target counts as bearded above `beard_gap` (22) and `beard_margin` (12) above the source's own gap.
CHIN = np.array([4, 5, 6, 7, 8, 9, 10, 11, 12, 54, 55, 56, 57, 58, 59, 48])
RIGHT_CHEEK = np.array([1, 2, 3, 31, 39, 40, 41, 36])
LEFT_CHEEK = np.array([15, 14, 13, 35, 42, 47, 46, 45])


def region_lightness(lab: np.ndarray, polygon: np.ndarray, offset: tuple[int, int], inner: np.ndarray) -> float:
    sel = polygon_mask(polygon, lab.shape[:2], offset).astype(bool) & inner
    return float(lab[..., 0][sel].mean()) if sel.sum() >= 8 else float("nan")


def beard_gap(lab: np.ndarray, pts: np.ndarray, offset: tuple[int, int], inner: np.ndarray) -> float:
    """Mean L of the upper cheeks minus mean L of the chin region (LAB L, 0-100): larger = darker lower face."""
    cheeks = np.nanmean([region_lightness(lab, pts[RIGHT_CHEEK], offset, inner),
                         region_lightness(lab, pts[LEFT_CHEEK], offset, inner)])
    return float(cheeks - region_lightness(lab, pts[CHIN], offset, inner))


def bearded_target(target_lab: np.ndarray, source_lab: np.ndarray, target_pts: np.ndarray, source_pts: np.ndarray,
                   offset: tuple[int, int], inner: np.ndarray, *, gap: float = 22.0, margin: float = 12.0) -> bool:
    """Whether the warped target shows facial hair the source lacks (thresholds: see the module constants)."""
    gap_t = beard_gap(target_lab, target_pts, offset, inner)
    gap_s = beard_gap(source_lab, source_pts, offset, inner)
    return bool(np.isfinite(gap_t) and np.isfinite(gap_s) and gap_t > gap and gap_t - gap_s > margin)


def lower_face(pts: np.ndarray, size: tuple[int, int], offset: tuple[int, int], scale: float) -> np.ndarray:
    """A soft (h, w) weight over the lower face (jaw from ear to ear up to the nose base), 1 inside."""
    lower = polygon_mask(np.vstack([pts[2:15], pts[[35, 33, 31]]]), size, offset).astype(np.float32)
    return cv2.GaussianBlur(lower, (0, 0), max(1.0, 0.04 * scale))
