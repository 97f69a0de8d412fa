"""Triangle meshes over landmark points and the dense piecewise-affine maps that warp an image along them.

`triangulate` gives Delaunay triangles of a point set (OpenCV's Subdiv2D); `piecewise_affine_maps` gives the
inverse maps for one `cv2.remap` that takes each triangle of one point set onto the same triangle of another,
leaving out triangles that fold over (`folded`). Used by the swap's warp (`mfmc.swap.warp`: the target onto the
source's geometry) and the pool's part composites (`mfmc.pool.composite`: each donor onto the composite's
geometry); they live in the vision layer so that the pool needs nothing from the swap.
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # sub-pixel bits of the triangles' corners for cv2.fillConvexPoly


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles of `points` as (K, 3) indices, with OpenCV's Subdiv2D (no SciPy import at start-up).

    Subdiv2D returns vertex coordinates; each is mapped back to the nearest input point (coincident landmarks
    collapse into one vertex, which only drops degenerate triangles).
    """
    pts = np.asarray(points, dtype=np.float64)
    lo, hi = pts.min(0) - 2.0, pts.max(0) + 2.0
    subdiv = cv2.Subdiv2D((int(np.floor(lo[0])), int(np.floor(lo[1])),
                           int(np.ceil(hi[0] - lo[0])) + 2, int(np.ceil(hi[1] - lo[1])) + 2))
    subdiv.insert([(float(x), float(y)) for x, y in pts])
    tri = np.asarray(subdiv.getTriangleList(), dtype=np.float64).reshape(-1, 3, 2)
    inside = np.all((tri >= lo - 1.0) & (tri <= hi + 1.0), axis=(1, 2))  # drop triangles on the outer frame
    tri = tri[inside]
    if not len(tri):
        return np.zeros((0, 3), dtype=np.int64)
    idx = _vertex_ids(tri.reshape(-1, 2), pts).reshape(-1, 3)
    keep = (idx[:, 0] != idx[:, 1]) & (idx[:, 1] != idx[:, 2]) & (idx[:, 0] != idx[:, 2])
    return idx[keep]


def _vertex_ids(vertices: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The index of the input point nearest each Subdiv2D vertex (the first of equally near ones).

    A vertex is an input point stored as float32, so it is looked up by those float32 coordinates (their bits);
    this is the nearest point whenever no two input points are nearly coincident (within 1e-3 px: float32
    rounding is far below that). Otherwise, and for a vertex not found, the distances to every point decide."""
    n = len(pts)
    gaps = np.abs(pts[:, None, :] - pts[None, :, :]).max(2)
    gaps[np.arange(n), np.arange(n)] = np.inf
    if n > 1 and gaps.min() > 1e-3:
        keys = np.ascontiguousarray(pts, dtype=np.float32).view(np.uint64)[:, 0]
        wanted = np.ascontiguousarray(vertices, dtype=np.float32).view(np.uint64)[:, 0]
        order = np.argsort(keys)
        at = np.minimum(np.searchsorted(keys[order], wanted), n - 1)
        found = order[at]
        if np.array_equal(keys[found], wanted):
            return found.astype(np.int64)
    return np.linalg.norm(vertices[:, None, :] - pts[None], axis=2).argmin(1)


def folded(a: np.ndarray, b: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per triangle: 1 where its orientation in points `a` is the opposite of that in points `b` (or it is
    degenerate in one of them but not the other), else 0."""
    def signs(p: np.ndarray) -> np.ndarray:
        t = p[triangles]
        cross = ((t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1])
                 - (t[:, 1, 1] - t[:, 0, 1]) * (t[:, 2, 0] - t[:, 0, 0]))
        return np.sign(np.where(np.abs(cross) < 1e-9, 0.0, cross))

    return (signs(a) != signs(b)).astype(np.int8)


def piecewise_affine_maps(
    dst: np.ndarray, src: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense inverse maps for cv2.remap: for each pixel of `box`, where to sample in the source image.

    Every pixel is assigned its destination triangle by rasterising triangle ids, then mapped by that
    triangle's affine transform; one remap then warps the whole face (faster and seam-free compared with one
    warpAffine per triangle). Returns (map_x, map_y, covered).
    """
    x1, y1, x2, y2 = box
    h, w = y2 - y1, x2 - x1
    ids = np.zeros((h, w), dtype=np.int32)
    local = dst - np.array([x1, y1], dtype=np.float64)
    d = np.concatenate([local[triangles], np.ones((len(triangles), 3, 1))], axis=2)  # (K, 3, 3) rows x,y,1
    s = src[triangles]  # (K, 3, 2)
    # affine A_k with A_k @ [x, y, 1] = source point; solve d @ A^T = s (skip degenerate triangles)
    det = np.linalg.det(d)
    ok = np.abs(det) > 1e-6
    # a triangle whose orientation differs between the two point sets folds over (the far side of a face turned
    # away, posed onto a frontal target): sampling it would mirror the target's texture there, so it is left
    # uncovered and the source keeps its pixels
    ok &= folded(dst, src, triangles) == 0
    affines = np.zeros((len(triangles), 2, 3), dtype=np.float64)
    affines[ok] = np.transpose(np.linalg.solve(d[ok], s[ok]), (0, 2, 1))
    corners = np.round(local[triangles] * (1 << _SHIFT)).astype(np.int32)  # (K, 3, 2), all rounded at once
    for k in np.flatnonzero(ok).tolist():
        cv2.fillConvexPoly(ids, corners[k], k + 1, lineType=cv2.LINE_8, shift=_SHIFT)
    covered = ids > 0
    # each pixel's affine coefficients, gathered one at a time from a float32 table by triangle id (uncovered
    # pixels, id 0, take triangle 0's: they are masked out anyway)
    table = np.concatenate([affines[:1], affines]).astype(np.float32).reshape(-1, 6).T.copy()  # (6, K + 1)
    coef = [np.take(row, ids) for row in table]
    gx = np.arange(w, dtype=np.float32)[None, :]
    gy = np.arange(h, dtype=np.float32)[:, None]
    map_x = coef[0] * gx + coef[1] * gy + coef[2]
    map_y = coef[3] * gx + coef[4] * gy + coef[5]
    return map_x, map_y, covered
