"""The verifier's adaptive order: the recognizer that rejects most per millisecond runs first, and a passing
fake has still been checked by every recognizer (stub recognizers, no models)."""

from __future__ import annotations

import time

import numpy as np

from mfmc.swap.verify import Verifier
from mfmc.vision import Faces


class _Rec:
    """Distance to the source = the result's mean pixel value / 255 * scale; `cost` seconds per embedding."""

    metric = "euclidean"

    def __init__(self, threshold: float, cost: float, scale: float) -> None:
        self.threshold, self.cost, self.scale, self.calls = threshold, cost, scale, 0

    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        self.calls += 1
        time.sleep(self.cost)
        return np.array([[image.mean() / 255.0 * self.scale]], np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.abs(np.asarray(a) - np.asarray(b)).sum(-1)


class _Pipe:
    landmarker = None

    def __init__(self) -> None:
        # "slow" is listed first and rarely rejects; "fast" rejects whenever the image is dark
        self.recognizers = {"slow": _Rec(0.3, 0.02, 1.0), "fast": _Rec(0.5, 0.002, 1.0)}


def test_cheap_rejecting_recognizer_moves_first_and_passes_check_all() -> None:
    pipe = _Pipe()
    verifier = Verifier(pipe, margin=0.0)
    face = Faces(boxes=np.array([[0, 0, 8, 8]], np.float32), scores=np.ones(1, np.float32),
                 landmarks5=np.zeros((1, 5, 2), np.float32))
    source = {"slow": np.zeros(1, np.float32), "fast": np.zeros(1, np.float32)}
    dark = np.full((8, 8, 3), 100, np.uint8)  # distance 0.39: passes "slow" (0.3), fails "fast" (0.5)
    for _ in range(4):
        verdict = verifier.verify(dark, face, source)
        assert not verdict.passed and verdict.failed == "fast"
    assert verifier.order()[0] == "fast"
    slow_calls = pipe.recognizers["slow"].calls
    verdict = verifier.verify(dark, face, source)
    assert list(verdict.distances) == ["fast"]  # early exit: the slow recognizer was skipped
    assert pipe.recognizers["slow"].calls == slow_calls
    bright = np.full((8, 8, 3), 200, np.uint8)  # 0.78: passes both
    verdict = verifier.verify(bright, face, source)
    assert verdict.passed and set(verdict.distances) == {"slow", "fast"}
