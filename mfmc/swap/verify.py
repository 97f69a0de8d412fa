"""Verification: a fake counts only if every recognizer puts it farther from the source than its same-person
threshold plus a margin."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Verdict:
    """Result-to-source distance per recognizer that ran, whether all cleared their bar, and the result's
    re-predicted landmarks (reused by the metrics)."""

    distances: dict[str, float]
    passed: bool
    failed: str | None = None
    landmarks68: np.ndarray | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    ms: float = 0.0


class Verifier:
    """Re-embeds the face at the source's box in a candidate image with each recognizer and compares.

    Landmarks are re-predicted on the result, as anyone trying to recognise the face would do. With
    `early_exit`, recognizers after the first failing one are skipped: a dlib embedding costs ~100 ms on a
    CPU core and a rejected fake needs no second opinion. The order adapts: the recognizer with the most
    rejections per millisecond so far goes first (FaceNet, ~45 ms, rejects about as often as dlib, ~100 ms,
    on the benchmark), so a failing swap usually costs only the cheap check. A fake that passes has always
    been checked by every recognizer.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        margin: float | Mapping[str, float] = 0.05,
        recognizers: Sequence[str] | None = None,
        early_exit: bool = True,
    ) -> None:
        self.pipeline = pipeline
        names = list(pipeline.recognizers) if recognizers is None else list(recognizers)
        # dlib first: in our measurements it is the recognizer a training-free swap fails most often
        self.names = sorted(names, key=lambda n: (n != "dlib", names.index(n)))
        self.margin = margin
        self.early_exit = early_exit
        # per recognizer: [runs, rejections, total ms]; priors of one run, half a rejection, 50 ms
        self._stats = {n: [1.0, 0.5, 50.0] for n in self.names}
        self._lock = threading.Lock()

    def order(self) -> list[str]:
        """Recognizers in the order the next verification runs them: most rejections per ms first."""
        with self._lock:
            rate = {n: (s[1] / s[0]) / max(s[2] / s[0], 1e-3) for n, s in self._stats.items()}
        return sorted(self.names, key=lambda n: (-rate[n], self.names.index(n)))

    def threshold(self, name: str) -> float:
        return float(self.pipeline.recognizers[name].threshold)

    def bar(self, name: str) -> float:
        """The distance a fake must exceed for recognizer `name`."""
        m = self.margin.get(name, 0.0) if isinstance(self.margin, Mapping) else self.margin
        return self.threshold(name) + float(m)

    def source_embeddings(self, image: np.ndarray, face: Any) -> dict[str, np.ndarray]:
        """The source face's embeddings, computed for recognizers the caller's `Faces` lacks."""
        have = dict(face.embeddings or {})
        out = {}
        for name in self.names:
            if name in have:
                out[name] = np.asarray(have[name][0], dtype=np.float32)
            else:
                out[name] = np.asarray(self.pipeline.recognizers[name].embed(image, face)[0], dtype=np.float32)
        return out

    def verify(self, result: np.ndarray, face: Any, source: Mapping[str, np.ndarray]) -> Verdict:
        """Check `result` (the whole photo with the fake in) at the place of `face` (a `Faces` of length 1)."""
        t0 = time.perf_counter()
        probe = face.replace(embeddings={})
        lm68 = None
        landmarker = getattr(self.pipeline, "landmarker", None)
        if landmarker is not None:
            lm68 = np.asarray(landmarker.predict(result, probe), dtype=np.float32)
            probe = probe.replace(landmarks68=lm68)
        distances: dict[str, float] = {}
        embeddings: dict[str, np.ndarray] = {}
        failed = None
        for name in self.order():
            rec = self.pipeline.recognizers[name]
            t1 = time.perf_counter()
            emb = np.asarray(rec.embed(result, probe)[0], dtype=np.float32)
            embeddings[name] = emb
            distances[name] = float(rec.distance(emb, source[name]))
            rejected = not distances[name] > self.bar(name)
            with self._lock:
                stats = self._stats[name]
                stats[0] += 1
                stats[1] += rejected
                stats[2] += (time.perf_counter() - t1) * 1000.0
            if rejected:
                failed = failed or name
                if self.early_exit:
                    break
        passed = failed is None and len(distances) == len(self.names) and bool(self.names)
        return Verdict(
            distances, passed, failed, None if lm68 is None else lm68[0], embeddings,
            (time.perf_counter() - t0) * 1000.0,
        )
