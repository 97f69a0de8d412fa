"""Fallbacks that carry no identity of their own: pixelation and a smooth fill of the face area."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.swap.blend import polygon_mask, region_box
from mfmc.swap.patch import FacePatch


def face_polygon(box: np.ndarray, landmarks68: np.ndarray | None, forehead: float = 0.3) -> np.ndarray:
    """The area to hide: the landmark outline with the forehead, or an ellipse in the box without landmarks.

    The outline is grown a little past the jaw so that the silhouette of the face is hidden too.
    """
    if landmarks68 is not None:
        pts = lmk.outline(lmk.extended(lmk.as_points(landmarks68), forehead))
        centre = pts.mean(0)
        return centre + (pts - centre) * 1.08
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * 0.6, (y2 - y1) * 0.65
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _hidden(polygon: np.ndarray, keep: Sequence[np.ndarray], size: tuple[int, int],
            offset: tuple[int, int]) -> np.ndarray:
    """bool: inside `polygon` and outside every `keep` polygon (what the source wears: a face mask, dark glasses)."""
    mask = polygon_mask(polygon, size, offset).astype(bool)
    for kept in keep:
        mask &= ~polygon_mask(kept, size, offset).astype(bool)
    return mask


def pixelate(image: np.ndarray, polygon: np.ndarray, cells: int, keep: Sequence[np.ndarray] = ()) -> FacePatch:
    """Replace the polygon's area, less the `keep` polygons, with `cells` blocks across (block means of the
    area), hard-edged."""
    box = region_box(polygon, image.shape[:2], pad=1)
    x1, y1, x2, y2 = box
    region = image[y1:y2, x1:x2]
    h, w = region.shape[:2]
    cells = max(1, int(cells))
    small = cv2.resize(region, (cells, max(1, round(cells * h / w))), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    mask = _hidden(polygon, keep, (h, w), (x1, y1))
    pixels = region.copy()
    pixels[mask] = blocks[mask]
    return FacePatch(box=box, pixels=pixels, mask=mask, image_shape=image.shape[:2])


def fill(image: np.ndarray, polygon: np.ndarray, keep: Sequence[np.ndarray] = ()) -> FacePatch:
    """Paint the polygon, less the `keep` polygons (a face mask stays a mask), with the face's own mean colour
    under a flat lighting gradient: no trace of the face.

    Each channel inside the polygon is replaced by its least-squares plane a + b·x + c·y (nine numbers in all:
    skin tone and the direction of the light, nothing a recognizer can use), so a filled face reads as a smooth
    skin-coloured oval in the photo's light rather than a grey hole (issue 11: "honest, ugly").
    """
    box = region_box(polygon, image.shape[:2], pad=3)
    x1, y1, x2, y2 = box
    region = image[y1:y2, x1:x2]
    mask = _hidden(polygon, keep, region.shape[:2], (x1, y1))
    pixels = region.copy()
    ys, xs = np.nonzero(mask)
    if len(xs) < 3:
        pixels[mask] = np.full(3, 128, np.uint8)
        return FacePatch(box=box, pixels=pixels, mask=mask, image_shape=image.shape[:2])
    w, h = max(region.shape[1], 1), max(region.shape[0], 1)
    design = np.stack([np.ones(len(xs)), xs / w - 0.5, ys / h - 0.5], axis=1)
    values = region[ys, xs].astype(np.float64)
    # the tone of the skin, not of the hair, brows and eyes inside the outline: fitted on the lighter 60 %
    lum = values @ np.array([0.299, 0.587, 0.114])
    skin = lum >= np.percentile(lum, 40) if len(lum) >= 10 else np.ones(len(lum), bool)
    coeffs, *_ = np.linalg.lstsq(design[skin], values[skin], rcond=None)
    pixels[ys, xs] = np.clip(np.round(design @ coeffs), 0, 255).astype(np.uint8)
    return FacePatch(box=box, pixels=pixels, mask=mask, image_shape=image.shape[:2])
