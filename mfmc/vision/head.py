"""The generic head: 68 iBUG points lifted to 3D with one generic depth per point (`DEPTH`), rotated under
scaled orthography and projected back (`posed`), and the generic frontal shape (`FRONTAL`).

Owned by the vision layer because the landmarker's turned-head refit (`mfmc.vision.turned`) starts dlib's
cascade from `FRONTAL` posed to the detector's yaw and pitch; the swap's pose-aware geometry (`mfmc.swap.pose`)
imports it from here (data flows one way: vision never imports the swap).

The generic depth (hand-designed for this project, in units of the outer-eye-corner distance, + towards the
camera, 0 at the outer eye corners): estimated from a generic adult head of 90 mm between the outer eye corners
(per point, in mm: nose tip +38, nose bridge +20…+32, nostrils +22…+30, inner eye corners +10, the eyelids'
middles +8, brows +2…+20 from the outer ends inwards, lips +12 at the corners to +30 in the middle, chin +20,
the jaw contour falling to -70 at the ears), then checked on real faces: a frontal pool face turned to a
reserved openpeople person's ~35° view fits it better than unposed (tests/swap/test_pose.py), and the turned
faces of the issue-11 photos (docs/swap.md). The face outline points are silhouette points rather than fixed
surface points, so they are modelled coarsely and left out of pose fitting.

Conventions (as `mfmc.vision.landmarks.estimate_pose`): yaw > 0 when the nose moves towards the image's right,
pitch > 0 when the face tilts up; roll is the eye line's angle and is kept as it is.
"""

from __future__ import annotations

import numpy as np

# mirror partner of each of the 68 iBUG points (the image-left half <-> the image-right half)
MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,  # jaw
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,  # brows
     27, 28, 29, 30, 35, 34, 33, 32, 31,  # nose
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lips
     64, 63, 62, 61, 60, 67, 66, 65],  # inner lips
    dtype=np.int64,
)

_DEPTH_MM = {
    # jaw contour 0-8 (8 is the chin); 9-16 mirror
    0: -70.0, 1: -62.0, 2: -52.0, 3: -40.0, 4: -27.0, 5: -13.0, 6: 0.0, 7: 12.0, 8: 20.0,
    # brow 17-21 (outer end to inner end)
    17: 2.0, 18: 10.0, 19: 16.0, 20: 19.0, 21: 20.0,
    # nose bridge 27-30 (30 is the tip), nostril base 31-33
    27: 20.0, 28: 25.0, 29: 32.0, 30: 38.0, 31: 22.0, 32: 27.0, 33: 30.0,
    # image-left eye 36-41 (36 outer corner, 39 inner corner)
    36: 0.0, 37: 7.0, 38: 9.0, 39: 10.0, 40: 9.0, 41: 7.0,
    # outer lips 48-54 (upper, 48 and 54 the corners) and 55-59 (lower); inner lips 60-67
    48: 12.0, 49: 21.0, 50: 27.0, 51: 30.0, 55: 22.0, 56: 26.0, 57: 27.0,
    60: 13.0, 61: 24.0, 62: 27.0, 67: 23.0, 66: 25.0,
}
_IOD_MM = 90.0


def _depth() -> np.ndarray:
    d = np.full(68, np.nan)
    for i, v in _DEPTH_MM.items():
        d[i] = v
        d[MIRROR[i]] = v
    assert np.all(np.isfinite(d)), np.flatnonzero(~np.isfinite(d))
    return d / _IOD_MM


DEPTH = _depth()
DEPTH.setflags(write=False)


# A generic frontal 68-point shape (centred, outer eye corners 1 apart, y down): the mean of the built-in pool's
# 81 faces, each turned to frontal with `posed` from its `mfmc.swap.pose.frontal_pose`, similarity-aligned and made
# mirror-symmetric (computed once for this module). Only the starting point of pose fitting.
FRONTAL = np.array([
    [-0.778, -0.413], [-0.768, -0.200], [-0.739, 0.011], [-0.703, 0.223],
    [-0.636, 0.425], [-0.526, 0.606], [-0.380, 0.762], [-0.204, 0.878],
    [0.000, 0.912], [0.204, 0.878], [0.380, 0.762], [0.526, 0.606],
    [0.636, 0.425], [0.703, 0.223], [0.739, 0.011], [0.768, -0.200],
    [0.778, -0.413], [-0.667, -0.563], [-0.576, -0.676], [-0.430, -0.714],
    [-0.280, -0.692], [-0.136, -0.629], [0.136, -0.629], [0.280, -0.692],
    [0.430, -0.714], [0.576, -0.676], [0.667, -0.563], [0.000, -0.474],
    [0.000, -0.329], [0.000, -0.182], [0.000, -0.033], [-0.161, 0.053],
    [-0.084, 0.081], [0.000, 0.110], [0.084, 0.081], [0.161, 0.053],
    [-0.500, -0.435], [-0.416, -0.493], [-0.310, -0.491], [-0.215, -0.422],
    [-0.317, -0.402], [-0.422, -0.399], [0.215, -0.422], [0.310, -0.491],
    [0.416, -0.493], [0.500, -0.435], [0.422, -0.399], [0.317, -0.402],
    [-0.323, 0.327], [-0.207, 0.268], [-0.089, 0.236], [0.000, 0.258],
    [0.089, 0.236], [0.207, 0.268], [0.323, 0.327], [0.211, 0.432],
    [0.096, 0.482], [0.000, 0.492], [-0.096, 0.482], [-0.211, 0.432],
    [-0.271, 0.334], [-0.091, 0.320], [0.000, 0.329], [0.091, 0.320],
    [0.271, 0.334], [0.091, 0.361], [0.000, 0.373], [-0.091, 0.361],
])
FRONTAL.setflags(write=False)


def as_points(landmarks: np.ndarray) -> np.ndarray:
    """Return landmarks as a float64 (68, 2) array; the head's geometry and the swap's (`mfmc.swap.landmarks`
    re-exports this) refuse anything else."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2) or not np.all(np.isfinite(pts)):
        raise ValueError(f"expected 68 finite (x, y) landmarks, got shape {pts.shape}")
    return pts


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """3×3 rotation of a head frame (x right, y down, z towards the camera): pitch first, then yaw."""
    a, b = np.radians(yaw), np.radians(pitch)
    ry = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(b), -np.sin(b)], [0.0, np.sin(b), np.cos(b)]])
    return ry @ rx


def eye_roll(pts: np.ndarray) -> float:
    """The eye line's angle (radians): image-left outer corner to image-right outer corner."""
    d = pts[45] - pts[36]
    return float(np.arctan2(d[1], d[0]))


def rotation2d(angle: float) -> np.ndarray:
    """2×2 rotation by `angle` (radians)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def lift(points: np.ndarray, pose: tuple[float, float]) -> np.ndarray:
    """(68, 3) head-frame points whose projection at `pose` is `points` (centred, roll removed), with the generic
    depth at the face's frontal scale (the eye-corner distance over cos(yaw): the eye corners share a depth)."""
    pts = as_points(points)
    local = (pts - pts.mean(0)) @ rotation2d(-eye_roll(pts)).T
    yaw, pitch = float(pose[0]), float(pose[1])
    scale = abs(local[45, 0] - local[36, 0]) / max(np.cos(np.radians(yaw)), 1e-3)
    z = DEPTH * scale
    r = rotation(yaw, pitch)
    a = r[:2, :2]
    xy = np.linalg.solve(a, (local - np.outer(z, r[:2, 2])).T).T
    return np.column_stack([xy, z])


def posed(target_lm: np.ndarray, from_pose: tuple[float, float], to_pose: tuple[float, float]) -> np.ndarray:
    """`target_lm` (68 points of a face at `from_pose`, (yaw, pitch) in degrees) as seen at `to_pose`, with the
    generic depth, under scaled orthography; the centroid, roll and frontal scale are kept.

    posed(x, p, p) == x; posed(posed(x, p, q), q, p) == x; mirroring the points (and their indices) and the yaws
    mirrors the result."""
    pts = as_points(target_lm)
    head = lift(pts, from_pose)
    proj = head @ rotation(float(to_pose[0]), float(to_pose[1]))[:2].T
    proj -= proj.mean(0)
    return proj @ rotation2d(eye_roll(pts)).T + pts.mean(0)

