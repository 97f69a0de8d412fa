"""Measures of the evaluation, as plain functions over arrays (each testable against hand-computed values).

Image similarity (PSNR, SSIM) is the swap package's own implementation, re-exported so that the report and the
generator measure the same thing; RMSE, the Fréchet distance, recognition accuracy and its relative reduction,
box overlap and summaries are defined here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mfmc.errors import InvalidInputError
from mfmc.swap.metrics import box_crop, changed_outside, landmark_error, psnr, ssim

__all__ = [
    "accuracy",
    "box_crop",
    "changed_outside",
    "frechet_distance",
    "iou",
    "landmark_error",
    "psnr",
    "relative_reduction",
    "rmse",
    "ssim",
    "summary",
]


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Root mean squared difference in 0–255 grey levels over every pixel and channel."""
    if a.shape != b.shape:
        raise InvalidInputError(f"cannot compare images of shapes `{a.shape}` and `{b.shape}`")
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues clipped)."""
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of vectors (rows), as in FID but in any space.

    d² = |μa − μb|² + Tr(Σa + Σb − 2 (Σa Σb)^½), with (Σa Σb)^½ computed as the symmetric
    Σa^½ (Σa^½ Σb Σa^½)^½ Σa^½ sandwich, which has the same trace and stays real. Returns d² (the quantity
    FID reports). Both sets need at least two rows; with fewer rows than dimensions the covariances are
    rank-deficient and the value is biased upwards, so compare values computed on sets of equal size.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise InvalidInputError(f"cannot compare {a.shape[1]}-D and {b.shape[1]}-D embeddings")
    if len(a) < 2 or len(b) < 2:
        raise InvalidInputError("a Fréchet distance needs at least two vectors on each side",
                                help=f"got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _sqrtm_psd(cov_a)
    cross = _sqrtm_psd(root_a @ cov_b @ root_a)
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(cross))
    return max(value, 0.0)


def accuracy(distances: Iterable[float], threshold: float) -> float | None:
    """Fraction of pairs a recognizer calls the same person (distance < threshold); None for no pairs."""
    d = np.asarray(list(distances), dtype=np.float64)
    d = d[np.isfinite(d)]
    return None if d.size == 0 else float(np.mean(d < threshold))


def relative_reduction(before: float | None, after: float | None) -> float | None:
    """(before − after) / before: 0.61 means 61 % of the matches are gone. None when undefined."""
    if before is None or after is None or before <= 0:
        return None
    return float((before - after) / before)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two xyxy boxes."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    w = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    h = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = w * h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return 0.0 if union <= 0 else inter / union


def summary(values: Iterable[Any]) -> dict[str, float | int] | None:
    """n, mean, standard deviation, min, median and max of the finite values (None when there are none)."""
    v = np.asarray([float(x) for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "median": float(np.median(v)), "max": float(v.max())}
