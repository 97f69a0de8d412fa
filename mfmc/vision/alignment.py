"""Five-point face alignment shared by the layers above (recognizers' crops, the pool's aligned crops, the
swappers' warps): the usual 112 × 112 recognition template and the least-squares similarity transform.

Numpy only: cheap to import for the pool and the swap code.
"""

from __future__ import annotations

import numpy as np

# InsightFace's 5-point template for 112 × 112 crops (eye centres, nose tip, mouth corners; image left first): the
# alignment of the MS1M release MobileFaceNet was trained on, and of the pool's aligned crops (scaled).
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])


def five_from_68(points: np.ndarray) -> np.ndarray:
    """The 5 detector-style points from 68 iBUG points: eye centres (image left first), nose tip, mouth corners."""
    p = np.asarray(points, dtype=np.float64)
    return np.array([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 × 3 similarity (rotation, uniform scale, shift; no reflection) taking points `src` onto `dst` with
    the least squared error, float64; `src` points all equal give scale 0 (the matrix maps everything to the
    mean of `dst`). In 2-D the least-squares scaled rotation [[a, -b], [b, a]] has a closed form."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = s.mean(0), d.mean(0)
    sc, dc = s - ms, d - md
    var = float((sc * sc).sum())
    a = float((sc * dc).sum()) / var if var > 1e-12 else 0.0  # scale * cos
    b = float((sc[:, 0] * dc[:, 1] - sc[:, 1] * dc[:, 0]).sum()) / var if var > 1e-12 else 0.0  # scale * sin
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])
