"""Pose-aware geometry for the training-free swappers: a frontal target's 68 points turned to a source's pose.

The pool is frontal (|yaw| ≤ 30°); a source turned by 30-60° needs the target's shape *as it would look at the
source's pose* before the warp can take any of it. Each 2D landmark set is lifted to 3D with one generic depth
per point (`DEPTH`), rotated under scaled orthography, and projected back (`posed`).

The generic head (`DEPTH`, `FRONTAL`, `lift`, `posed`) is `mfmc.vision.head`'s: the landmarker's turned-head
refit (`mfmc.vision.turned`) starts from it too, and vision does not import the swap.

Conventions (as `mfmc.vision.landmarks.estimate_pose`): yaw > 0 when the nose moves towards the image's right,
pitch > 0 when the face tilts up; roll is the eye line's angle and is kept as it is.
"""

from __future__ import annotations

import functools

import numpy as np

from mfmc.swap import landmarks as lmk
from mfmc.vision.alignment import similarity_fit
from mfmc.vision.head import DEPTH, FRONTAL, MIRROR, eye_roll, lift, posed, rotation, rotation2d

# the points pose is fitted on: everything but the face outline (a silhouette, not fixed points of the face)
FIT_POINTS = lmk.INNER


def _rotations(poses: np.ndarray) -> np.ndarray:
    """`rotation` for each (yaw, pitch) row of `poses`: (P, 3, 3)."""
    a, b = np.radians(poses[:, 0]), np.radians(poses[:, 1])
    ca, sa, cb, sb = np.cos(a), np.sin(a), np.cos(b), np.sin(b)
    zero = np.zeros_like(a)
    return np.stack([np.stack([ca, sa * sb, sa * cb], 1),
                     np.stack([zero, cb, -sb], 1),
                     np.stack([-sa, ca * sb, ca * cb], 1)], 1)


def camera_depth(points: np.ndarray, pose: tuple[float, float]) -> np.ndarray:
    """(68,) each point's generic depth towards the camera for a face seen at `pose` (yaw, pitch): larger is
    nearer (the nose tip; on a turned face the near cheek before the far one)."""
    head = lift(points, pose)
    return head @ rotation(float(pose[0]), float(pose[1]))[2]


def mirrored(points: np.ndarray, width: float) -> np.ndarray:
    """The 68 points of the horizontally flipped image (`width` px wide), re-indexed to the iBUG order."""
    pts = lmk.as_points(points)
    out = pts[MIRROR].copy()
    out[:, 0] = width - 1.0 - out[:, 0]
    return out


_GRID = np.stack(np.meshgrid(np.arange(-75.0, 75.01, 5.0), np.arange(-40.0, 40.01, 5.0)), -1).reshape(-1, 2)
_FINE = np.stack(np.meshgrid(np.arange(-4.0, 4.01), np.arange(-4.0, 4.01)), -1).reshape(-1, 2)


def _residuals(head: np.ndarray, source: np.ndarray, poses: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """RMS similarity-aligned distance of the head projected at each of `poses` (P, 2) to `source`, over the
    points `idx` (complex least squares: rotation, scale and shift, no reflection)."""
    b = source[idx, 0] + 1j * source[idx, 1]
    b = b - b.mean()
    rots = _rotations(poses)[:, :2]  # (P, 2, 3)
    proj = rots @ head[idx].T  # (P, 2, N)
    a = proj[:, 0] + 1j * proj[:, 1]
    a = a - a.mean(1, keepdims=True)
    aa = (np.abs(a) ** 2).sum(1)
    ab = (np.conj(a) * b[None]).sum(1)
    res = (np.abs(b) ** 2).sum() - np.abs(ab) ** 2 / np.maximum(aa, 1e-12)
    return np.sqrt(np.maximum(res, 0.0) / len(idx))


def fit_pose(source: np.ndarray, target: np.ndarray, target_pose: tuple[float, float],
             near: tuple[float, float] | None = None) -> tuple[float, float]:
    """The (yaw, pitch) at which `target` (at `target_pose`), posed, best matches `source`'s inner points
    (brows, eyes, nose, mouth): a 5° grid (yaw within ±75°, pitch ±40°), or only around `near` when given, then
    a 1° grid around its best."""
    src = lmk.as_points(source)
    head = lift(target, target_pose)
    best = np.asarray(near, dtype=np.float64) if near is not None else (
        _GRID[int(np.argmin(_residuals(head, src, _GRID, FIT_POINTS)))])
    fine = best + _FINE
    y, p = fine[int(np.argmin(_residuals(head, src, fine, FIT_POINTS)))]
    return float(y), float(p)


def source_pose(source: np.ndarray) -> tuple[float, float]:
    """A face's (yaw, pitch) against the generic frontal shape (`FRONTAL`), cached per point set: the starting
    point of each target's own `fit_pose` (a coarse search per target cost ~4 ms, ×80 targets a face)."""
    return _source_pose(lmk.as_points(source).astype("<f8").tobytes())


@functools.lru_cache(maxsize=256)
def _source_pose(key: bytes) -> tuple[float, float]:
    return fit_pose(np.frombuffer(key, dtype="<f8").reshape(68, 2), FRONTAL, (0.0, 0.0))


def frontal_pose(points: np.ndarray) -> tuple[float, float]:
    """A face's (yaw, pitch) from its own 68 points, for a near-frontal face (a pool target): the yaw at which
    its lifted frontal shape is most mirror-symmetric (faces are nearly symmetric; |yaw| ≤ 45°, 1° steps). Pitch
    cannot be read from symmetry and is taken as 0: only the source's pose *relative* to the target's matters,
    and `fit_pose` finds that. Cached per point set (pool targets recur across faces and query steps)."""
    pts = lmk.as_points(points)
    return _frontal_pose(pts.astype("<f8").tobytes())


@functools.lru_cache(maxsize=4096)
def _frontal_pose(key: bytes) -> tuple[float, float]:
    pts = np.frombuffer(key, dtype="<f8").reshape(68, 2)
    local = (pts - pts.mean(0)) @ rotation2d(-eye_roll(pts)).T
    yaws = np.arange(-45.0, 45.01, 1.0)
    c, s = np.cos(np.radians(yaws)), np.sin(np.radians(yaws))
    scale = abs(local[45, 0] - local[36, 0]) / c  # (Y,)
    # pitch 0: x = x0 cos + z sin, y = y0 (see `lift`)
    x0 = (local[None, :, 0] - (DEPTH[None] * scale[:, None]) * s[:, None]) / c[:, None]  # (Y, 68)
    flat = x0 + 1j * local[None, :, 1]
    flat = flat[:, FIT_POINTS]
    mirror = (-flat.real + 1j * flat.imag)[:, np.searchsorted(FIT_POINTS, MIRROR[FIT_POINTS])]
    flat = flat - flat.mean(1, keepdims=True)
    mirror = mirror - mirror.mean(1, keepdims=True)
    mm = (np.abs(mirror) ** 2).sum(1)
    mf = (np.conj(mirror) * flat).sum(1)
    err = ((np.abs(flat) ** 2).sum(1) - np.abs(mf) ** 2 / np.maximum(mm, 1e-12)) / np.maximum(
        (np.abs(flat) ** 2).sum(1), 1e-12)
    return float(yaws[int(np.argmin(err))]), 0.0


# yaw differences below this are not posed: the unposed alignment is as good there, and posing moves the
# outline points (modelled coarsely) enough to cost verified swaps on frontal faces
MIN_TURN = 8.0


def posed_to(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`target` turned from its yaw (`frontal_pose`: symmetry) to `source`'s (`source_pose`: fitted against
    the generic frontal shape) and similarity-aligned onto `source` on all 68 points (as the unposed swap did:
    aligning on the outline too keeps the target's proportions of features to face, part of its identity).

    Only yaw is posed, and only when the two differ by MIN_TURN or more. The poses are fitted separately, not
    the target onto the source: a fit of one onto the other explains part of their shape difference as a
    rotation and takes it out of the swap, and that difference is the identity the swap must carry. Pitch is
    left alone for the same reason: from 2D points it cannot be told apart from a longer or shorter nose or
    chin (pool faces' fitted pitch spread over ±20° while they look straight at the camera)."""
    src, tgt = lmk.as_points(source), lmk.as_points(target)
    t_yaw, s_yaw = frontal_pose(tgt)[0], source_pose(src)[0]
    turned = posed(tgt, (t_yaw, 0.0), (s_yaw, 0.0)) if abs(s_yaw - t_yaw) >= MIN_TURN else tgt
    return lmk.transform(similarity_fit(turned, src), turned)


TURNED_YAW = 15.0  # degrees: beyond this a frontal target's outer band is stretched over the near side


def turned(points: np.ndarray) -> bool:
    """Whether a face is turned sideways enough (`source_pose`'s yaw beyond TURNED_YAW) that a frontal target's
    outer band (temples, cheek edge, with its hair or background) is stretched over the near side."""
    return abs(source_pose(points)[0]) >= TURNED_YAW


# the points whose shape carries the expression: the lips (smile, opening) and each eye (aperture)
MOUTH = np.arange(48, 68)
EYES = (lmk.RIGHT_EYE, lmk.LEFT_EYE)
# the points that carry identity but no expression: the brows and the nose
BROWS_NOSE = np.r_[lmk.BROWS, np.arange(27, 36)]


def destination(source: np.ndarray, target: np.ndarray, alpha: float, *, expression: bool = False,
                placement: float | None = None) -> np.ndarray:
    """The swappers' destination geometry: the source's outline (jaw) kept, so the mask and everything outside
    it keep their place; the inner points (brows, eyes, nose, mouth) moved `alpha` of the way to the target's
    shape turned to the source's pose and similarity-aligned onto it.

    `expression`: keep the source's expression geometry — the lips keep the source's shape (smile, opening) and
    only move with the target's mouth position; each eye keeps the source's shape (aperture) and only takes
    the target's eye position and width — and each brow keeps the source's height above its eye
    (`kept_brow_height`: raised, at rest or frowning) while taking the target's shape; the nose takes the
    target's shape as above.

    `placement` (above `alpha`): the brows and nose (`BROWS_NOSE`) moved that fraction of the way instead, the
    eyes and lips (which carry the expression) staying as `alpha` or `expression` made them: on large faces the
    identity-bearing part of the extra geometry (docs/swap.md, "Identity-bearing geometry"); off by default."""
    src = lmk.as_points(source)
    dst = src.copy()
    if alpha <= 0:
        return dst
    aligned = posed_to(src, lmk.as_points(target))
    dst[lmk.INNER] = src[lmk.INNER] + alpha * (aligned[lmk.INNER] - src[lmk.INNER])
    if placement is not None and placement > alpha:
        dst[BROWS_NOSE] = src[BROWS_NOSE] + placement * (aligned[BROWS_NOSE] - src[BROWS_NOSE])
    if expression:
        shift = alpha * (aligned[MOUTH].mean(0) - src[MOUTH].mean(0))
        dst[MOUTH] = src[MOUTH] + shift
        for eye in EYES:
            s_c, t_c = src[eye].mean(0), aligned[eye].mean(0)
            s_w = float(np.linalg.norm(src[eye[3]] - src[eye[0]]))
            t_w = float(np.linalg.norm(aligned[eye[3]] - aligned[eye[0]]))
            k = 1.0 + alpha * (t_w / max(s_w, 1e-6) - 1.0)
            dst[eye] = s_c + alpha * (t_c - s_c) + k * (src[eye] - s_c)
        dst = kept_brow_height(src, dst)
    return dst


def kept_brow_height(source: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`dst` with each side's brow points shifted along its vertical axis (chin to nose bridge) so that the
    brow's height above its eye, over the outer-eye-corner distance (the measure of `landmarks.brow_height`,
    per side), is the source's: the brows' shape and spacing stay `dst`'s (the target's), their height above
    the eyes (raised, at rest, frowning) is the source's expression."""
    src, out = lmk.as_points(source), lmk.as_points(dst).copy()
    up_d = lmk.vertical(out)
    iod_s, iod_d = max(lmk.interocular(src), 1e-6), lmk.interocular(out)
    for (brow, _), want, have in zip(lmk.BROW_SIDES, lmk.brow_rises(src), lmk.brow_rises(out), strict=True):
        out[brow] += (want / iod_s * iod_d - have) * up_d
    return out


def shape_residual(source: np.ndarray, target: np.ndarray) -> float:
    """RMS distance of the target's 68 points, turned to the source's yaw and similarity-aligned (`posed_to`),
    from the source's, over the source's frontal size (`_frontal_scale`): near 0.05 for two faces of one
    expression at any yaw the swap handles, larger with expression or shape changes."""
    src = lmk.as_points(source)
    aligned = posed_to(src, lmk.as_points(target))
    scale = _frontal_scale(src)
    return float(np.sqrt(((aligned - src) ** 2).sum(1).mean()) / max(scale, 1e-6))


def _frontal_scale(pts: np.ndarray) -> float:
    """The face's eye-corner distance as if it faced the camera: over cos(yaw) (`source_pose`, capped at 60°);
    at a frontal pose the plain eye-corner distance, as the unposed check used."""
    yaw = min(abs(source_pose(pts)[0]), 60.0)
    return lmk.interocular(pts) / float(np.cos(np.radians(yaw)))
