"""A cheap, deterministic `FaceBackend` over synthetic "grid" photos, for property tests and benchmarks.

A grid photo is a noisy background divided into `cell`-sized squares; a face is a square whose top-left pixel is
the marker colour and whose interior is its person's colour plus noise. The "embedding" is the interior's mean
colour, so identification works like a real recognizer (same person iff distance < threshold), and the "fake"
replaces the interior by a different colour pattern whose embedding is far from the original (verified).
Nothing here is used by the real platform; it exists so tests can check pixels quickly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from mfmc.errors import GenerationError
from mfmc.service.backends import DetectedFace, FakeOutcome
from mfmc.vocabulary import Fallback

MARKER = np.array([255, 0, 255], dtype=np.uint8)
PALETTE = np.array([
    [220, 40, 40], [40, 200, 60], [50, 70, 220], [230, 200, 30], [30, 200, 210], [240, 120, 20],
    [150, 40, 200], [120, 220, 120], [200, 120, 180], [20, 120, 90], [140, 90, 30], [90, 160, 250],
], dtype=np.uint8)


def person_color(k: int) -> np.ndarray:
    """Distinct saturated colours: the palette, then evenly spaced hues at two brightness levels."""
    if k < len(PALETTE):
        return PALETTE[k]
    import colorsys

    j = k - len(PALETTE)
    hue = ((j * 0.381966) % 1.0)
    value = 0.95 if (j // 2) % 2 == 0 else 0.6
    return (np.array(colorsys.hsv_to_rgb(hue, 0.85, value)) * 255).astype(np.uint8)


def grid_photo(people: list[int | None], *, cell: int = 32, cols: int | None = None, seed: int = 0,
               stranger_color: tuple[int, int, int] = (128, 128, 60)) -> np.ndarray:
    """One face per entry (a palette index, or None for a stranger), laid out left to right, top to bottom."""
    rng = np.random.default_rng(seed)
    cols = cols or max(1, len(people))
    rows = max(1, -(-len(people) // cols))
    img = rng.integers(0, 40, size=(rows * cell, cols * cell, 3), dtype=np.uint8)
    for i, who in enumerate(people):
        r, c = divmod(i, cols)
        y, x = r * cell, c * cell
        color = person_color(who).astype(np.int16) if who is not None else np.array(stranger_color, np.int16)
        noise = rng.integers(-8, 9, size=(cell - 2, cell - 2, 3))
        img[y + 1:y + cell - 1, x + 1:x + cell - 1] = np.clip(color + noise, 0, 255).astype(np.uint8)
        img[y, x] = MARKER
    return img


class GridBackend:
    """Detects marker cells; embeds mean colours; fakes by swapping colour channels and adding stripes."""

    recognizer = "grid"
    threshold = 0.06

    def __init__(self, cell: int = 32, *, fail_on: set[int] | None = None) -> None:
        self.cell = cell
        self.fail_on = fail_on or set()  # face indices whose fake raises (to test failing closed)
        self.fake_calls = 0
        self.avoided: list[frozenset[str]] = []

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        c = self.cell
        out = []
        for y in range(0, image.shape[0] - c + 1, c):
            for x in range(0, image.shape[1] - c + 1, c):
                if np.array_equal(image[y, x], MARKER):
                    interior = image[y + 1:y + c - 1, x + 1:x + c - 1].reshape(-1, 3).astype(np.float32)
                    emb = interior.mean(axis=0) / 255.0
                    lm = ((x + 0.3 * c, y + 0.4 * c), (x + 0.7 * c, y + 0.4 * c), (x + 0.5 * c, y + 0.55 * c),
                          (x + 0.35 * c, y + 0.75 * c), (x + 0.65 * c, y + 0.75 * c))
                    out.append(DetectedFace(box=(x + 1.0, y + 1.0, x + c - 1.0, y + c - 1.0), score=1.0,
                                            landmarks5=lm, embedding=emb.astype(np.float32)))
        return out

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(np.asarray(b, np.float32) - np.asarray(a, np.float32)[None, :], axis=1)

    def fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
             cache_key: str | None = None, avoid_identities: frozenset[str] = frozenset()) -> FakeOutcome:
        self.fake_calls += 1
        self.avoided.append(frozenset(avoid_identities))  # what the caller asked to avoid (plumbing tests)
        if index in self.fail_on:
            raise GenerationError("injected generator failure")
        x1, y1, x2, y2 = (int(v) for v in faces[index].box)
        out = image.copy()
        region = out[y1:y2, x1:x2].astype(np.int16)
        swapped = region[..., [1, 2, 0]]
        stripe = np.broadcast_to((np.arange(x2 - x1)[None, :] + seed) % 7 == 0, swapped.shape[:2])
        swapped[stripe] = 255 - swapped[stripe]
        out[y1:y2, x1:x2] = np.clip(swapped, 0, 255).astype(np.uint8)
        src = image[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0) / 255.0
        dst = out[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0) / 255.0
        dist = float(np.linalg.norm(src - dst))
        return FakeOutcome(image=out, verified=dist >= self.threshold, fallback=Fallback.NONE,
                           report={"distance": round(dist, 4), "seed": seed, "identity": f"grid-{seed}"})

    def fake_many(self, image: np.ndarray, faces: list[DetectedFace], indices: Sequence[int], *,
                  seeds: Mapping[int, int], avoid_identities: frozenset[str] = frozenset()) -> list[FakeOutcome]:
        """Each face faked alone on the original (grid faces never overlap); one face's failure fails the call,
        as the real generator's does."""
        out = []
        for i in indices:
            got = self.fake(image, faces, i, seed=seeds[i], avoid_identities=avoid_identities)
            out.append(replace(got, mask=np.any(got.image != image, axis=-1)))
        return out


class CostlyGrid(GridBackend):
    """The grid backend with a fixed CPU cost per fake (`grid:MS`): stands in for a real swapper's work in
    benchmarks (1 vs 2 workers) and in the kill-a-worker-mid-job test."""

    def __init__(self, cost_ms: int) -> None:
        super().__init__()
        self.cost_ms = cost_ms

    def fake(self, image: np.ndarray, faces: list[DetectedFace], index: int, *, seed: int,
             cache_key: str | None = None, avoid_identities: frozenset[str] = frozenset()) -> FakeOutcome:
        import hashlib
        import time

        until = time.thread_time() + self.cost_ms / 1000
        digest = b"mfmc"
        while time.thread_time() < until:  # single-threaded CPU work (not sleep, not a BLAS pool): one core
            digest = hashlib.sha256(digest * 64).digest()
        return super().fake(image, faces, index, seed=seed, cache_key=cache_key, avoid_identities=avoid_identities)
