"""Verification: a fake counts only if every recognizer puts it farther from the source than its same-person
threshold plus a margin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mfmc.vision import FacePipeline, Faces


@dataclass(frozen=True)
class Avoid:
    """What a fake must not match besides its source: embeddings per recognizer name, (K, D) each (the other
    faces and fakes of the photo, people the uploading client knows), and target identities already used.

    A fake passes only when, on every verifying recognizer, it is farther than the recognizer's bar (threshold
    plus margin) from every row here as well as from its source. `floors` (per recognizer, one value per row)
    lowers that bar for a row to the distance the *real* faces already had: on small faces a recognizer may
    match most different people of a photo to each other (dlib: 24 of 36 pairs on a real 9-person photo), and a
    fake cannot be farther from a neighbour than the recognizer can tell people apart. A fake then still may not
    come closer to that neighbour than its original was (no new collision); without a floor the bar holds.
    """

    embeddings: Mapping[str, np.ndarray] = field(default_factory=dict)
    targets: frozenset[str] = frozenset()
    floors: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clean = {}
        for name, rows in dict(self.embeddings).items():
            a = np.asarray(rows, dtype=np.float32)
            clean[str(name)] = a.reshape(-1, a.shape[-1]) if a.size else np.zeros((0, 0), np.float32)
        floors = {}
        for name, rows in clean.items():
            f = np.asarray(dict(self.floors).get(name, np.full(len(rows), np.inf)), dtype=np.float64).reshape(-1)
            if f.shape[0] != len(rows):
                raise ValueError(f"`floors[{name!r}]` needs one value per row ({len(rows)}), got {f.shape[0]}")
            floors[name] = f
        object.__setattr__(self, "embeddings", clean)
        object.__setattr__(self, "floors", floors)
        object.__setattr__(self, "targets", frozenset(self.targets))

    def plus(self, embeddings: Mapping[str, np.ndarray] | None = None, targets: Iterable[str] = (),
             floors: Mapping[str, np.ndarray] | None = None) -> Avoid:
        """A copy with more rows (per recognizer, with optional floors) and more excluded targets."""
        merged, lows = dict(self.embeddings), dict(self.floors)
        for name, rows in (embeddings or {}).items():
            a = np.asarray(rows, dtype=np.float32)
            a = a.reshape(-1, a.shape[-1])
            f = np.asarray((floors or {}).get(name, np.full(len(a), np.inf)), dtype=np.float64).reshape(-1)
            old = merged.get(name)
            merged[name] = a if old is None or not old.size else np.vstack([old, a])
            lows[name] = f if old is None or not old.size else np.concatenate([lows[name], f])
        return Avoid(merged, self.targets | frozenset(targets), lows)

    def rows(self, name: str) -> np.ndarray:
        a = self.embeddings.get(name)
        return a if a is not None and a.size else np.zeros((0, 0), np.float32)

    def limits(self, name: str, bar: float) -> np.ndarray:
        """Per row, the distance a fake must exceed: the bar, or the row's floor when lower."""
        return np.minimum(bar, self.floors.get(name, np.zeros(0)))

    def __len__(self) -> int:
        return max((len(v) for v in self.embeddings.values()), default=0)

    def __bool__(self) -> bool:  # identities alone are something to avoid (`len` counts embedding rows only)
        return len(self) > 0 or bool(self.targets)


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
    collision: float | None = None  # smallest distance / bar to an `Avoid` row when that failed the fake


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
        pipeline: FacePipeline,
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

    def source_embeddings(self, image: np.ndarray, face: Faces) -> dict[str, np.ndarray]:
        """The source face's embeddings, computed for recognizers the caller's `Faces` lacks."""
        have = dict(face.embeddings or {})
        out = {}
        for name in self.names:
            if name in have:
                out[name] = np.asarray(have[name][0], dtype=np.float32)
            else:
                out[name] = np.asarray(self.pipeline.recognizers[name].embed(image, face)[0], dtype=np.float32)
        return out

    def verify(
        self, result: np.ndarray, face: Faces, source: Mapping[str, np.ndarray], avoid: Avoid | None = None
    ) -> Verdict:
        """Check `result` (the whole photo with the fake in) at the place of `face` (a `Faces` of length 1):
        farther than the bar from the source and, with `avoid`, from every face to avoid."""
        t0 = time.perf_counter()
        probe = face.replace(embeddings={})
        lm68 = None
        landmarker = self.pipeline.landmarker
        if landmarker is not None:
            lm68 = np.asarray(landmarker.predict(result, probe), dtype=np.float32)
            probe = probe.replace(landmarks68=lm68)
        distances: dict[str, float] = {}
        embeddings: dict[str, np.ndarray] = {}
        failed = None
        collision: float | None = None
        for name in self.order():
            rec = self.pipeline.recognizers[name]
            t1 = time.perf_counter()
            emb = np.asarray(rec.embed(result, probe)[0], dtype=np.float32)
            embeddings[name] = emb
            distances[name] = float(rec.distance(emb, source[name]))
            rejected = not distances[name] > self.bar(name)
            rows = avoid.rows(name) if avoid is not None else np.zeros((0, 0), np.float32)
            if not rejected and len(rows):
                assert avoid is not None
                ratio = float(np.min(np.asarray(rec.distance(emb, rows)) / avoid.limits(name, self.bar(name))))
                if ratio <= 1.0:
                    rejected = True
                    collision = ratio if collision is None else min(collision, ratio)
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
            (time.perf_counter() - t0) * 1000.0, collision,
        )
