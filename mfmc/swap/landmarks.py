"""Geometry of the 68-point iBUG landmark layout used by the swappers and the metrics."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

import cv2
import numpy as np

from mfmc.vision.head import as_points as as_points  # re-exported: the swap's modules call `lmk.as_points`

JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
INNER = np.arange(17, 68)  # everything but the jaw: the points a partial geometry transfer may move
RIGHT_EYE = np.arange(36, 42)  # image-left eye
LEFT_EYE = np.arange(42, 48)
INNER_MOUTH = np.arange(60, 68)
OUTER_MOUTH = np.arange(48, 60)
OPEN_MOUTH = 0.12  # `mouth_openness` above this: the inner lips part on teeth or the mouth's interior
SMILE = 0.08  # `smile` above this: the source smiles

# ARCFACE-style 5-point template at 112 px (eyes, nose tip, mouth corners), used to align crops for learned
# swappers; scaled to their input size.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def interocular(pts: np.ndarray) -> float:
    """Distance between the outer eye corners (the 300-W normalisation)."""
    return float(np.linalg.norm(pts[36] - pts[45]))


def eye_openness(pts: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes: ~0.3 open, < 0.15 closed."""

    def ear(e: np.ndarray) -> float:
        vertical = np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])
        return float(vertical / (2.0 * max(np.linalg.norm(e[0] - e[3]), 1e-6)))

    return 0.5 * (ear(pts[RIGHT_EYE]) + ear(pts[LEFT_EYE]))


def mouth_openness(pts: np.ndarray) -> float:
    """Gap between the inner lips over the mouth width: > ~0.12 shows teeth or the inside of the mouth."""
    gap = np.mean([np.linalg.norm(pts[61] - pts[67]), np.linalg.norm(pts[62] - pts[66]),
                   np.linalg.norm(pts[63] - pts[65])])
    return float(gap / max(np.linalg.norm(pts[60] - pts[64]), 1e-6))


def smile(pts: np.ndarray) -> float:
    """How far the mouth corners sit above the middle of the lips, along the face's vertical axis (chin to
    nose bridge), over the mouth width: < ~0.07 neutral, > ~0.08 a smile (measured on the issue-11 photos
    against the expression classifier's `happy`)."""
    up = vertical(pts)
    mid = (pts[51] + pts[57]) / 2.0
    corners = (pts[48] + pts[54]) / 2.0
    return float((corners - mid) @ up / max(float(np.linalg.norm(pts[54] - pts[48])), 1e-6))


def vertical(pts: np.ndarray) -> np.ndarray:
    """The face's vertical axis: the unit vector from the chin (point 8) to the nose bridge (point 27)."""
    up = pts[27] - pts[8]
    return up / max(float(np.linalg.norm(up)), 1e-6)


# each side's brow (points 17-21, 22-26) and the eye under it
BROW_SIDES = ((np.arange(17, 22), RIGHT_EYE), (np.arange(22, 27), LEFT_EYE))


def brow_rises(pts: np.ndarray) -> list[float]:
    """Per side (`BROW_SIDES`), how far the brow points' mean sits above its eye points' mean along the face's
    vertical axis (`vertical`), in pixels."""
    up = vertical(pts)
    return [float((pts[brow].mean(0) - pts[eye].mean(0)) @ up) for brow, eye in BROW_SIDES]


def brow_height(pts: np.ndarray) -> float:
    """How far the brows sit above the eyes, along the face's vertical axis (chin to nose bridge), over the
    outer-eye-corner distance: both sides' `brow_rises`, averaged (~0.2 to 0.3 at rest; raised brows more,
    frowning less)."""
    right, left = brow_rises(pts)
    return float(0.5 * (right + left) / max(interocular(pts), 1e-6))


@dataclass(frozen=True)
class ExpressionGeometry:
    """What the 68 points say of a face's expression, every measure scale-free: the eye apertures
    (`eye_openness`), the mouth's opening (`mouth_openness`), the mouth-corner lift (`smile`) and the brows'
    height above the eyes (`brow_height`). Also used as per-measure tolerances (`GEOMETRY_TOLERANCE`)."""

    eyes: float
    mouth: float
    smile: float
    brows: float

    @classmethod
    def of(cls, pts: np.ndarray) -> ExpressionGeometry:
        p = as_points(pts)
        return cls(eye_openness(p), mouth_openness(p), smile(p), brow_height(p))

    def minus(self, other: ExpressionGeometry) -> ExpressionGeometry:
        """Per measure, self − other."""
        return ExpressionGeometry(*(a - b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def beyond(self, change: ExpressionGeometry) -> list[str]:
        """With self as tolerances: each measure of `change` larger in size than its tolerance, as
        "brows +0.077" (largest first, relative to its tolerance); [] when all are within."""
        over = [(abs(value) / bound, f.name, value)
                for f, bound, value in zip(fields(self), astuple(self), astuple(change), strict=True)
                if abs(value) > bound]
        return [f"{name} {value:+.3f}" for _, name, value in sorted(over, reverse=True)]


# How far a fake's re-predicted expression geometry may move from its source's (`ExpressionGeometry.beyond`).
# Calibrated (docs/swap.md, "Expression geometry"): on the built-in pool (crops of 10 people labelled by the
# expression classifier), two faces of one person and one class differ by eyes p95 0.094 / max 0.127, mouth p95
# 0.153, smile p95 0.088, brows p95 0.044 (two classes: p50 0.075, 0.148, 0.067, 0.041; of such pairs 85 % of
# 157 same-class ones are within these tolerances, 21 % of 364 two-class ones); on the issue-11
# photos' accepted fakes (seed 7) those that look right moved at most eyes 0.068, mouth 0.125, smile 0.094,
# brows 0.032, while those that look wrong moved brows +0.043 (01.jpg #0: staring eyes, "O" mouth), +0.077
# (multi_face #4: caricature grin, raised brows), eyes +0.260 (01.jpg #1: a squinting smile with open eyes).
GEOMETRY_TOLERANCE = ExpressionGeometry(eyes=0.12, mouth=0.15, smile=0.10, brows=0.04)


def forehead_points(pts: np.ndarray, height: float) -> np.ndarray:
    """The ten brow points lifted along the face's vertical axis by `height` × the brow-to-chin distance.

    The 68 points stop at the brows; lifting them covers the forehead so that the brows are not cut by the
    mask edge and more of the identity is replaced.
    """
    brow_mid = pts[BROWS].mean(0)
    up = brow_mid - pts[8]
    length = float(np.linalg.norm(up))
    up = up / max(length, 1e-6)
    return pts[BROWS] + up * height * length


def extended(pts: np.ndarray, forehead: float) -> np.ndarray:
    """The 68 points plus the lifted forehead points (78 in all)."""
    return np.vstack([pts, forehead_points(pts, forehead)])


def outline(ext: np.ndarray) -> np.ndarray:
    """Closed face outline of extended points: the jaw left to right, then the forehead right to left.

    On a head turned far enough that the far side's jaw points lie on the face (a turned head's points as
    `mfmc.vision.turned` refits them: the far jaw projected where it is, behind the cheek, not on the silhouette),
    that outline leaves out the profile's side: the far eye, the nose, the mouth. When any other point lies
    outside it by more than `OUTSIDE` of the face's size, the outline is their convex hull instead (the
    silhouette: brow, nose tip, lips, chin); on every other face it is the jaw-and-forehead polygon as before."""
    poly = np.vstack([ext[JAW], ext[68:78][::-1]])
    if len(ext) < 78 or not _outside(poly, ext[17:]):
        return poly
    return np.asarray(cv2.convexHull(np.asarray(ext, np.float32))[:, 0], dtype=np.float64)


# a point further outside the jaw-and-forehead polygon than this fraction of the face's size (√ of its area)
# makes `outline` the points' convex hull
OUTSIDE = 0.02


def _outside(poly: np.ndarray, pts: np.ndarray) -> bool:
    contour = np.asarray(poly, np.float32).reshape(-1, 1, 2)
    size = float(np.sqrt(max(abs(cv2.contourArea(contour)), 1.0)))
    return any(cv2.pointPolygonTest(contour, (float(x), float(y)), True) < -OUTSIDE * size for x, y in pts)


def transform(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to (N, 2) points."""
    return pts @ m[:, :2].T + m[:, 2]
