"""The target query of the paper (§3.1, Eq. 1) as pure functions over arrays.

Dissimilarity `d` is always "larger = more different": an embedding distance (L2 or cosine), `1 - SSIM`, RMSE,
or `-PSNR` on aligned crops. Eq. 1's target set over the candidates left after filtering is

    T(S) = {i : d_i > max_j d_j - sigma_j(d)}  (population standard deviation)

extended with the maxima themselves, so that T(S) is never empty (with one candidate, or all distances equal,
the strict inequality of Eq. 1 would select nothing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from mfmc.pool.cues import EYES_CLOSED_RATIO, MOUTH_OPEN_RATIO


class Strategy(StrEnum):
    """How a query picks among the candidates (`rank`)."""

    CLOSEST = "closest"
    FURTHEST = "furthest"
    RANDOM = "random"


class QueryMetric(StrEnum):
    """The dissimilarity a query ranks by: an embedding distance, or a measure of the aligned crops."""

    L2 = "l2"
    COSINE = "cosine"
    SSIM = "ssim"
    RMSE = "rmse"
    PSNR = "psnr"


STRATEGIES = tuple(Strategy)
EMBEDDING_METRICS = (QueryMetric.L2, QueryMetric.COSINE)
IMAGE_METRICS = (QueryMetric.SSIM, QueryMetric.RMSE, QueryMetric.PSNR)
METRICS = tuple(QueryMetric)


def target_set(d: np.ndarray) -> np.ndarray:
    """Boolean mask of Eq. 1's set T(S) over dissimilarities `d` (empty input -> empty mask)."""
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return np.zeros(0, dtype=bool)
    top = d.max()
    return (d > top - d.std()) | (d == top)


def derive_rng(seed: int, key: bytes) -> np.random.Generator:
    """A generator fixed by (seed, key): same photo face + seed -> same draws, another photo -> others."""
    digest = hashlib.sha256(b"mfmc-pool-query-v1\0" + int(seed).to_bytes(16, "little", signed=True) + key).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint64))


def embedding_key(vector: np.ndarray) -> bytes:
    """Bytes that identify a source embedding, robust to last-bit noise between runs (rounded to 1e-4)."""
    return np.round(np.asarray(vector, dtype=np.float64), 4).astype("<f4").tobytes()


def rank(d: np.ndarray, strategy: str, rng: np.random.Generator, k: int | None = None) -> np.ndarray:
    """Positions into `d`, best first, at most `k` of them (all when `k` is None).

    - ``closest``: ascending dissimilarity; ``furthest``: descending (ties by position).
    - ``random``: a uniform pick from T(S), then the rest of T(S) in a seeded order, then every other
      candidate by descending dissimilarity.
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    limit = n if k is None else max(0, min(int(k), n))
    if limit == 0:
        return np.zeros(0, dtype=np.intp)
    if strategy == "closest":
        return _top(d, limit)
    if strategy == "furthest":
        return _top(-d, limit)
    if strategy != "random":
        raise ValueError(strategy)
    in_t = target_set(d)
    inside = np.flatnonzero(in_t)
    shuffled = inside[rng.permutation(inside.size)]
    if shuffled.size >= limit:
        return shuffled[:limit]
    outside = np.flatnonzero(~in_t)
    rest = outside[_top(-d[outside], limit - shuffled.size)]
    return np.concatenate([shuffled, rest])


def banded(order: np.ndarray, bands: np.ndarray | None, k: int | None) -> np.ndarray:
    """`order` (positions) regrouped by `bands` (per position, lowest first; stable within a band), at most `k`."""
    if bands is not None:
        order = order[np.argsort(bands[order], kind="stable")]
    return order if k is None else order[: max(0, int(k))]


def _top(key: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the `limit` smallest keys in ascending order, ties broken by position (stable)."""
    if limit < key.size // 4:
        part = np.argpartition(key, limit - 1)[:limit]
        cut = key[part].max()
        part = np.flatnonzero(key <= cut)  # keep every tie at the cut so the order stays position-stable
        return part[np.argsort(key[part], kind="stable")][:limit]
    return np.argsort(key, kind="stable")[:limit]


def l2_distances(matrix: np.ndarray, sqnorms: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Euclidean distances from `query` to every row of `matrix` (squared row norms precomputed)."""
    q = np.asarray(query, dtype=np.float32)
    d2 = sqnorms - 2.0 * (matrix @ q) + float(q @ q)
    return np.sqrt(np.maximum(d2, 0.0, dtype=np.float32), dtype=np.float32).astype(np.float64)


def cosine_distances(unit_rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """1 - cosine similarity between `query` and rows already scaled to unit length."""
    q = np.asarray(query, dtype=np.float32)
    norm = float(np.linalg.norm(q))
    if norm == 0.0:
        return np.ones(unit_rows.shape[0])
    return 1.0 - (unit_rows @ (q / norm)).astype(np.float64)


@dataclass(frozen=True)
class Compatibility:
    """Which targets a training-free swap can use for a source (design notes §6).

    A candidate is kept when its yaw and pitch are within `max_yaw` / `max_pitch` degrees of the source's,
    its mouth state (open/closed) matches the source's when `match_mouth`, and, when `avoid_closed_eyes`, it
    does not have closed eyes while the source's are open. Image quality (beyond design notes §6: small,
    blurry targets made soft smudges): its quality score is at least `min_quality`, and its face is at least
    `min_resolution` × the source face's size, the source's size capped at `resolution_cap` px (a stored
    crop keeps about 140 px of face, so larger sources cannot ask for more). Unknown values never exclude.

    Order (off by default): for a source turned at least `turned_yaw` degrees (None: never), the candidates come
    in bands of `yaw_band` degrees of yaw difference, the closest band first, each band in the strategy's order
    (a turned target needs less turning to the source's pose; unknown yaws come last): `yaw_bands`. Not the
    default: on the issue-11 photos (seed 7) it changed no outcome (swapped 14/33 with and without, built-in
    pool), the generator's ranking reorders the candidates anyway, and a band of one face makes the pick of a
    turned source the same in every photo (Eq. 1's random pick is what varies it; docs/pool.md, "Turned targets").
    """

    max_yaw: float | None = 25.0
    max_pitch: float | None = 20.0
    match_mouth: bool = True
    avoid_closed_eyes: bool = True
    mouth_open_ratio: float = MOUTH_OPEN_RATIO
    eyes_closed_ratio: float = EYES_CLOSED_RATIO
    min_quality: float | None = 0.5
    min_resolution: float | None = 0.8
    resolution_cap: float = 128.0
    turned_yaw: float | None = None
    yaw_band: float = 10.0

    def yaw_bands(self, source_pose: np.ndarray | None, pose: np.ndarray) -> np.ndarray | None:
        """Each candidate's band of yaw difference from a turned source (0: closest), or None when the order is
        the strategy's alone (a source turned less than `turned_yaw`, or of unknown yaw)."""
        if self.turned_yaw is None or source_pose is None:
            return None
        yaw = float(np.asarray(source_pose, dtype=np.float64)[0])
        if not np.isfinite(yaw) or abs(yaw) < self.turned_yaw:
            return None
        diff = np.abs(np.asarray(pose, dtype=np.float64)[:, 0] - yaw)
        bands = np.floor(diff / self.yaw_band)
        return np.where(np.isfinite(bands), bands, np.inf)

    def mask(
        self,
        source_pose: np.ndarray | None,
        source_mouth: float | None,
        source_eyes: float | None,
        pose: np.ndarray,
        mouth: np.ndarray,
        eyes: np.ndarray,
        *,
        source_size: float | None = None,
        sizes: np.ndarray | None = None,
        quality: np.ndarray | None = None,
    ) -> np.ndarray:
        keep = np.ones(pose.shape[0], dtype=bool)
        if self.min_quality is not None and quality is not None:
            keep &= ~(np.isfinite(quality) & (quality < self.min_quality))
        if (self.min_resolution is not None and sizes is not None and source_size is not None
                and np.isfinite(source_size) and source_size > 0):
            need = self.min_resolution * min(float(source_size), self.resolution_cap)
            keep &= ~(np.isfinite(sizes) & (sizes < need))
        if source_pose is not None:
            sp = np.asarray(source_pose, dtype=np.float64)
            for axis, limit in ((0, self.max_yaw), (1, self.max_pitch)):
                if limit is not None and np.isfinite(sp[axis]):
                    diff = np.abs(pose[:, axis] - sp[axis])
                    keep &= ~(np.isfinite(diff) & (diff > limit))
        if self.match_mouth and source_mouth is not None and np.isfinite(source_mouth):
            src_open = source_mouth > self.mouth_open_ratio
            known = np.isfinite(mouth)
            keep &= ~known | ((mouth > self.mouth_open_ratio) == src_open)
        eyes_open = source_eyes is not None and np.isfinite(source_eyes) and source_eyes >= self.eyes_closed_ratio
        if self.avoid_closed_eyes and eyes_open:
            keep &= ~(np.isfinite(eyes) & (eyes < self.eyes_closed_ratio))
        return keep
