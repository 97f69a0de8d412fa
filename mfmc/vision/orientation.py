"""Quarter turns: mapping points between a photo and the photo turned by `np.rot90`, and which turn makes a face
upright.

Photos that lost their EXIF orientation show faces lying on their side or upside down. Detection searches the
turned photo and maps boxes and landmarks back (`unturn_points`); the stages after it (68 landmarks, dlib face
chips) run on an upright crop of such a face and map their points back the same way (`predict_upright`), so every
coordinate in `Faces` refers to the photo as given.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def unturn_points(points: np.ndarray, turn: int, height: int, width: int) -> np.ndarray:
    """Points (..., 2) in `np.rot90(image, turn)` mapped back to `image` (height × width). Pixel edges map to
    pixel edges, so boxes and landmarks land exactly where the turned pass saw them."""
    points = np.asarray(points, dtype=np.float64)
    x, y = points[..., 0], points[..., 1]
    turn %= 4
    if turn == 0:
        out = (x, y)
    elif turn == 1:  # turned counter-clockwise: the turned photo's top row is the original's right column
        out = (width - y, x)
    elif turn == 2:
        out = (width - x, height - y)
    else:
        out = (y, height - x)
    return np.stack(out, axis=-1).astype(np.float32)


def turn_points(points: np.ndarray, turn: int, height: int, width: int) -> np.ndarray:
    """Points (..., 2) in `image` (height × width) mapped into `np.rot90(image, turn)` (the inverse of
    `unturn_points`)."""
    turned_h, turned_w = (width, height) if turn % 2 else (height, width)
    return unturn_points(points, (4 - turn) % 4, turned_h, turned_w)


def unturn_boxes(boxes: np.ndarray, turn: int, height: int, width: int) -> np.ndarray:
    """Boxes (N, 4) x1 y1 x2 y2 in `np.rot90(image, turn)` mapped back to `image` (height × width)."""
    corners = unturn_points(np.asarray(boxes).reshape(-1, 2, 2), turn, height, width)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)


def turn_boxes(boxes: np.ndarray, turn: int, height: int, width: int) -> np.ndarray:
    """Boxes (N, 4) in `image` (height × width) mapped into `np.rot90(image, turn)`."""
    corners = turn_points(np.asarray(boxes).reshape(-1, 2, 2), turn, height, width)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1).astype(np.float32)


def upright_turn(landmarks5: np.ndarray) -> int:
    """The quarter turn (0-3, counter-clockwise as `np.rot90`) that brings a face upright, from its 5 points
    (eyes, nose, mouth corners): the direction from the eyes to the mouth points down on an upright face. This
    holds on profiles too, where the eye line is short and unreliable."""
    p = np.asarray(landmarks5, dtype=np.float64).reshape(5, 2)
    down = (p[3] + p[4]) / 2.0 - (p[0] + p[1]) / 2.0
    if not np.all(np.isfinite(down)) or not down.any():
        return 0
    roll = np.degrees(np.arctan2(-down[0], down[1]))  # clockwise on screen, 0 for an upright face
    return int(np.round(roll / 90.0)) % 4


def predict_upright(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray], image: np.ndarray, box: np.ndarray, turn: int,
    margin: float = 0.6,
) -> np.ndarray:
    """Run `predict(image, box) -> points (K, 2)` on a face as if it were upright: on a crop around `box`
    (grown by `margin` × its longer side) turned by `turn`, mapping the points back to `image`."""
    if turn % 4 == 0:
        return np.asarray(predict(image, np.asarray(box, dtype=np.float32)), dtype=np.float32)
    x1, y1, x2, y2 = (float(v) for v in box)
    grow = margin * max(x2 - x1, y2 - y1, 1.0)
    height, width = image.shape[:2]
    cx0, cy0 = int(max(0.0, np.floor(x1 - grow))), int(max(0.0, np.floor(y1 - grow)))
    cx1, cy1 = int(min(width, np.ceil(x2 + grow))), int(min(height, np.ceil(y2 + grow)))
    crop = image[cy0:cy1, cx0:cx1]
    offset = np.array([cx0, cy0, cx0, cy0], dtype=np.float32)
    turned = np.ascontiguousarray(np.rot90(crop, turn))
    turned_box = turn_boxes(np.asarray(box, dtype=np.float32) - offset, turn, *crop.shape[:2])[0]
    points = np.asarray(predict(turned, turned_box), dtype=np.float32)
    return unturn_points(points, turn, *crop.shape[:2]) + offset[:2]
