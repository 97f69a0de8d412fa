"""Quality measures of one fake: identity distances, kept geometry, image similarity, untouched surroundings."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mfmc.swap import landmarks as lmk

if TYPE_CHECKING:
    from mfmc.vision.recognition import Recognizer


def landmark_error(source: np.ndarray, result: np.ndarray) -> float:
    """Mean point-to-point distance between 68-point sets over the outer-eye-corner distance of the source."""
    s, r = lmk.as_points(source), lmk.as_points(result)
    return float(np.linalg.norm(s - r, axis=1).mean() / max(lmk.interocular(s), 1e-6))


def expression_change(source: np.ndarray, result: np.ndarray) -> dict[str, float]:
    """Per expression measure (`landmarks.ExpressionGeometry`: eyes, mouth, smile, brows; each scale-free), the
    result's value minus the source's, from their 68 points."""
    return _measures(lmk.ExpressionGeometry.of(result).minus(lmk.ExpressionGeometry.of(source)))


def _measures(change: lmk.ExpressionGeometry) -> dict[str, float]:
    return {k: float(v) for k, v in dataclasses.asdict(change).items()}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (inf for identical inputs)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of the grey images (Gaussian window σ=1.5, the usual constants)."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64) if a.ndim == 3 else a.astype(np.float64)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64) if b.ndim == 3 else b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(ga), blur(gb)
    var_a = blur(ga * ga) - mu_a**2
    var_b = blur(gb * gb) - mu_b**2
    cov = blur(ga * gb) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def changed_outside(before: np.ndarray, after: np.ndarray, mask: np.ndarray, tolerance: int = 1) -> int:
    """Pixels outside `mask` (H, W bool) where any channel moved by more than `tolerance` levels."""
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2) > tolerance
    return int(np.count_nonzero(diff & ~mask))


def box_crop(image: np.ndarray, box: Sequence[float] | np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(w, max(x2, x1 + 1)), min(h, max(y2, y1 + 1))
    return image[y1:y2, x1:x2]


def fake_metrics(
    image: np.ndarray,
    result: np.ndarray,
    box: Sequence[float] | np.ndarray,
    mask: np.ndarray,
    *,
    source_landmarks: np.ndarray | None,
    result_landmarks: np.ndarray | None,
    result_embeddings: Mapping[str, np.ndarray],
    source_embeddings: Mapping[str, np.ndarray],
    target_embeddings: Mapping[str, np.ndarray],
    recognizers: Mapping[str, Recognizer],
    expression: lmk.ExpressionGeometry | None = None,
) -> dict[str, Any]:
    """Every measure of one fake as a JSON-ready dict.

    distance_to_source / distance_to_target: per recognizer (target only where the pool stored one);
    landmark_error: over the inter-ocular distance (pose and expression kept ⇔ small); expression_change: the
    result's expression geometry minus the source's (`expression_change`, what the verifier bounds: `expression`,
    the change the verifier measured, `Verdict.geometry`, where it has one, else measured here from the same
    points); ssim / psnr: in the face box; changed_outside_mask: pixels moved by more than 1 level outside the
    patch mask (must be 0).
    """
    out: dict[str, Any] = {"distance_to_source": {}, "distance_to_target": {}}
    for name, emb in result_embeddings.items():
        rec = recognizers[name]
        if name in source_embeddings:
            out["distance_to_source"][name] = float(rec.distance(emb, source_embeddings[name]))
        if name in target_embeddings:
            out["distance_to_target"][name] = float(rec.distance(emb, np.asarray(target_embeddings[name])))
    if source_landmarks is not None and result_landmarks is not None:
        out["landmark_error"] = landmark_error(source_landmarks, result_landmarks)
        out["expression_change"] = (expression_change(source_landmarks, result_landmarks) if expression is None
                                    else _measures(expression))
    a, b = box_crop(image, box), box_crop(result, box)
    out["ssim"] = ssim(a, b) if min(a.shape[:2]) >= 11 else None
    value = psnr(a, b)
    out["psnr"] = None if not np.isfinite(value) else value
    out["changed_outside_mask"] = changed_outside(image, result, mask)
    return out
