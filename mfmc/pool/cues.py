"""Per-face cues computed from pixels and 68-point landmarks: expression, sharpness, quality, age group.

All functions are pure numpy; landmarks are in iBUG 68-point order (0-indexed).
"""

from __future__ import annotations

import numpy as np

#: Mouth counts as open when the inner-lip gap exceeds this fraction of the mouth width.
MOUTH_OPEN_RATIO = 0.12
#: Eyes count as closed when the mean eye aspect ratio is below this value.
EYES_CLOSED_RATIO = 0.18
#: Lower edges (years) of the age groups used by `same_group=True`; the last group is open-ended.
AGE_GROUP_EDGES: tuple[float, ...] = (0.0, 13.0, 20.0, 35.0, 55.0)
AGE_GROUP_NAMES: tuple[str, ...] = ("child", "teen", "young adult", "adult", "senior")
GENDER_CODES: dict[str, int] = {"female": 0, "male": 1}


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot(*(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def mouth_open_ratio(landmarks68: np.ndarray) -> float:
    """Inner-lip gap over mouth width: about 0 for a closed mouth, 0.3 or more for a wide-open one."""
    p = np.asarray(landmarks68, dtype=np.float64)
    width = _dist(p[48], p[54])
    if width <= 1e-6:
        return 0.0
    gap = (_dist(p[61], p[67]) + _dist(p[62], p[66]) + _dist(p[63], p[65])) / 3.0
    return gap / width


def eye_aspect_ratio(landmarks68: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes: about 0.3 for open eyes, under 0.15 for closed ones."""
    p = np.asarray(landmarks68, dtype=np.float64)
    ratios = []
    for s in (36, 42):
        width = _dist(p[s], p[s + 3])
        if width <= 1e-6:
            continue
        ratios.append((_dist(p[s + 1], p[s + 5]) + _dist(p[s + 2], p[s + 4])) / (2.0 * width))
    return float(np.mean(ratios)) if ratios else 0.0


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a grayscale image (higher = sharper)."""
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim != 2 or min(g.shape) < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def to_gray(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB image as float64 (a 2-D input is returned as float64)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 2:
        return a
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def quality_score(sharpness: float, face_size: float, det_score: float) -> float:
    """One number in [0, 1]: geometric mean of saturating sharpness, size and detection-score terms."""
    s = min(1.0, max(0.0, sharpness) / 150.0)
    z = min(1.0, max(0.0, face_size) / 160.0)
    d = min(1.0, max(0.0, det_score))
    return float((s * z * d) ** (1.0 / 3.0))


def age_group(age: float | None) -> int:
    """Index into `AGE_GROUP_NAMES`, or -1 for an unknown age."""
    if age is None or not np.isfinite(age):
        return -1
    return int(np.searchsorted(AGE_GROUP_EDGES, float(age), side="right") - 1) if age >= 0 else 0


def age_groups(ages: np.ndarray) -> np.ndarray:
    """Vectorised `age_group`: int8 array, -1 where the age is NaN."""
    a = np.asarray(ages, dtype=np.float64)
    out = np.searchsorted(np.asarray(AGE_GROUP_EDGES), np.where(np.isfinite(a), np.maximum(a, 0), 0),
                          side="right") - 1
    return np.where(np.isfinite(a), out, -1).astype(np.int8)


def gender_code(gender: str | None) -> int:
    """0 female, 1 male, -1 unknown."""
    return GENDER_CODES.get(str(gender).lower(), -1) if gender is not None else -1
