"""Masks, colour transfer and feathered alpha blending.

The blend is a plain per-pixel alpha mix whose alpha is exactly zero outside the face polygon, so no pixel
outside the mask can change. Poisson cloning (cv2.seamlessClone) was measured to change pixels well outside its
mask and is deliberately not used.
"""

from __future__ import annotations

import cv2
import numpy as np

from mfmc.swap.patch import FacePatch

_SHIFT = 4  # sub-pixel bits for cv2 polygon filling


def region_box(points: np.ndarray, image_shape: tuple[int, int], pad: int = 2) -> tuple[int, int, int, int]:
    """Integer box around `points`, padded and clipped to the image."""
    h, w = image_shape
    x1 = int(np.clip(np.floor(points[:, 0].min()) - pad, 0, w - 1))
    y1 = int(np.clip(np.floor(points[:, 1].min()) - pad, 0, h - 1))
    x2 = int(np.clip(np.ceil(points[:, 0].max()) + pad + 1, x1 + 1, w))
    y2 = int(np.clip(np.ceil(points[:, 1].max()) + pad + 1, y1 + 1, h))
    return x1, y1, x2, y2


def polygon_mask(polygon: np.ndarray, size: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Filled polygon as a uint8 0/1 mask of `size` (h, w); `offset` (x, y) is subtracted from the points."""
    mask = np.zeros(size, dtype=np.uint8)
    pts = np.round((polygon - np.asarray(offset, dtype=np.float64)) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return mask


def feather(mask: np.ndarray, width: float) -> np.ndarray:
    """Alpha in [0, 1] rising smoothly from the mask edge to 1 at `width` px inside; exactly 0 outside."""
    if width <= 0.5:
        return mask.astype(np.float32)
    # pad so the ramp also starts at the region border when the mask touches it
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    t = np.clip(dist / float(width), 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)  # smoothstep: no visible seam where the ramp ends
    alpha[mask == 0] = 0.0
    return alpha.astype(np.float32)


def cut_holes(alpha: np.ndarray, holes: list[np.ndarray], offset: tuple[int, int], width: float) -> np.ndarray:
    """Set alpha to 0 inside each hole polygon (kept source pixels: open mouth, open eyes), feathered outward."""
    if not holes:
        return alpha
    keep = np.zeros(alpha.shape, dtype=np.uint8)
    for poly in holes:
        keep |= polygon_mask(poly, alpha.shape, offset)
    if width > 0.5:
        k = max(1, round(width))
        grown = cv2.dilate(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
        outside = cv2.copyMakeBorder(1 - grown, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=1)
        dist = cv2.distanceTransform(outside, cv2.DIST_L2, 3)[1:-1, 1:-1]
        t = np.clip(dist / float(k), 0.0, 1.0)
        return alpha * (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    return alpha * (1 - keep).astype(np.float32)


GREY_CHROMA = 2.0  # mean |a|, |b| (LAB) below which a region carries no colour: a grey-scale photo


def grey_scale(lab: np.ndarray, sel: np.ndarray) -> bool:
    """Whether the LAB pixels under `sel` carry no colour (a grey-scale photo): a fake there takes none.

    The mean |a|, |b| is read in double by `cv2.mean` (~3x faster than gathering the pixels); only within 0.01
    of `GREY_CHROMA`, where the float32 mean of the gathered values could fall on the other side, is that mean
    taken as before."""
    sel = np.ascontiguousarray(sel, dtype=bool)
    if not sel.any():
        return False
    means = cv2.mean(np.abs(lab), mask=sel.view(np.uint8))
    if abs((means[1] + means[2]) / 2.0 - GREY_CHROMA) > 0.01:
        return (means[1] + means[2]) / 2.0 < GREY_CHROMA
    return float(np.abs(lab[..., 1:][sel]).mean()) < GREY_CHROMA


def transfer_colour(
    target: np.ndarray, source: np.ndarray, weight: np.ndarray, max_ratio: float = 2.0
) -> np.ndarray:
    """Match the LAB mean and spread of `target` to `source` over pixels where `weight` > 0.5.

    Done in LAB so that lighting (L) and skin tone (a, b) move independently; the spread ratio is clamped
    so a flat or tiny sample cannot blow the contrast up.
    """
    sel = weight > 0.5
    if sel.sum() < 16:
        return target
    t_lab = cv2.cvtColor(target.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    s_lab = cv2.cvtColor(source.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    t_px, s_px = t_lab[sel], s_lab[sel]
    t_mu, t_sd = t_px.mean(0), t_px.std(0) + 1e-3
    s_mu, s_sd = s_px.mean(0), s_px.std(0) + 1e-3
    ratio = np.clip(s_sd / t_sd, 1.0 / max_ratio, max_ratio)
    out = (t_lab - t_mu) * ratio + s_mu
    if grey_scale(s_lab, sel):  # the target's colour would tint a grey-scale photo
        out[..., 1:] = s_lab[..., 1:]
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def blend_patch(
    image: np.ndarray, new: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int]
) -> FacePatch:
    """Alpha-mix `new` (the region's replacement) over `image` inside `box` and wrap it as a FacePatch.

    The patch mask is where alpha > 0, so pixels with alpha 0 are neither changed nor stored.
    """
    x1, y1, x2, y2 = box
    old = image[y1:y2, x1:x2].astype(np.float32)
    a = alpha[..., None]
    mixed = np.clip(old + (new.astype(np.float32) - old) * a + 0.5, 0, 255).astype(np.uint8)
    mask = alpha > 0
    # where alpha is 0 the mix is the old pixel already (old + 0 + 0.5, truncated); a negative or nan alpha (none
    # is made) would not be, so only then are the pixels outside the mask copied back
    if not float(alpha.min(initial=0.0)) >= 0.0:
        np.copyto(mixed, image[y1:y2, x1:x2], where=~mask[..., None])
    return FacePatch(box=box, pixels=mixed, mask=mask, image_shape=image.shape[:2])
