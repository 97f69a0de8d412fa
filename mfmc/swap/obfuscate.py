"""Fallbacks that carry no identity of their own: pixelation and a solid fill of the face area."""

from __future__ import annotations

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


def pixelate(image: np.ndarray, polygon: np.ndarray, cells: int) -> FacePatch:
    """Replace the polygon's area with `cells` blocks across (block means of the area), hard-edged."""
    box = region_box(polygon, image.shape[:2], pad=1)
    x1, y1, x2, y2 = box
    region = image[y1:y2, x1:x2]
    h, w = region.shape[:2]
    cells = max(1, int(cells))
    small = cv2.resize(region, (cells, max(1, round(cells * h / w))), interpolation=cv2.INTER_AREA)
    blocks = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    mask = polygon_mask(polygon, (h, w), (x1, y1)).astype(bool)
    pixels = region.copy()
    pixels[mask] = blocks[mask]
    return FacePatch(box=box, pixels=pixels, mask=mask, image_shape=image.shape[:2])


def fill(image: np.ndarray, polygon: np.ndarray) -> FacePatch:
    """Paint the polygon one colour taken from just outside it, so no trace of the face remains."""
    box = region_box(polygon, image.shape[:2], pad=3)
    x1, y1, x2, y2 = box
    region = image[y1:y2, x1:x2]
    mask = polygon_mask(polygon, region.shape[:2], (x1, y1)).astype(bool)
    ring = ~mask
    colour = region[ring].mean(0) if ring.any() else np.full(3, 128.0)
    pixels = region.copy()
    pixels[mask] = np.round(colour).astype(np.uint8)
    return FacePatch(box=box, pixels=pixels, mask=mask, image_shape=image.shape[:2])
