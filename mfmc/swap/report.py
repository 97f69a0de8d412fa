"""What happened to one face: the `FaceReport` written to `--report` files and kept by the platform."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mfmc.vocabulary import Fallback  # the one fallback vocabulary (`block` is the service's)

FALLBACKS: tuple[str, ...] = tuple(f.value for f in Fallback if f is not Fallback.BLOCK)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass
class Attempt:
    """One verified try: which target (None for an obfuscation), how, and what each recognizer measured.

    `distances` holds the result-to-source distance per recognizer; a recognizer skipped because an earlier
    one already failed is absent. `passed` is true only when every recognizer ran and cleared its bar and the
    fake kept what was checked. `reason` says why not ("dlib still matches the source", "reads male",
    "expression happy→neutral"). Methods: "swap", "swap-alpha", "pixelate", "fill"; "swap-expression" /
    "swap-alpha-expression" re-check a fake rejected for its expression class when no candidate kept it;
    "swap-keep" swaps such a target again with the source's expression geometry (the expression retries).
    `matched_fake`: rejected for matching another face of the photo, and what it matched was other fakes (or
    rows the caller gave) only, no real face of the photo; False when it matched a real face (made against the
    real faces alone it is rejected again: `FakeGenerator._exchanged` skips a face with no such candidate).
    """

    method: str  # "swap", "swap-alpha", "pixelate", "fill"
    target: str | None
    alpha: float | None
    distances: dict[str, float]
    passed: bool
    reason: str = ""
    matched_fake: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["distances"] = {k: _round(v) for k, v in self.distances.items()}
        d["alpha"] = _round(self.alpha, 3)
        return d


@dataclass
class FaceReport:
    """The outcome for one face; `to_dict()` is JSON-ready.

    fallback: "none" (a swap passed), "alpha" (a full-geometry swap passed), "obfuscate" (pixelation passed)
    or "fill" (last resort: the face area painted one colour, verified by construction since no face is
    left). `verified_by` is "recognizers" or "construction"; `reason` says why a fallback was needed.
    """

    index: int
    box: tuple[float, float, float, float]
    target: str | None = None
    fallback: Fallback = Fallback.NONE
    verified: bool = False
    verified_by: str = "recognizers"
    reason: str = ""
    distances: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=lambda: {"query": 0.0, "swap": 0.0, "verify": 0.0})
    metrics: dict[str, Any] = field(default_factory=dict)
    # recovered failures ("stage: Type: message"), each also logged; a fallback is never silent
    errors: list[str] = field(default_factory=list)
    # who the fake shows (a pool person or a recombination recipe) and its embeddings as verified: what other
    # fakes of the photo (or other viewers' fakes of this face) must avoid. Not written to reports.
    identity: str | None = None
    fake_embeddings: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # what the fakes were checked to keep: the source's gender (False when the classifier was unsure of it or
    # there is no attribute model: a note says which) and its expression class (needs the classifier)
    gender_checked: bool = False
    expression_checked: bool = False
    # "happy→neutral" when no candidate kept the source's expression class and the best one that passed every
    # other check was accepted (the expression fallback; also in `notes` and `reason`, and logged)
    expression_changed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "box": [round(float(v), 1) for v in self.box],
            "target": self.target,
            "fallback": self.fallback,
            "verified": self.verified,
            "verified_by": self.verified_by,
            "reason": self.reason,
            "distances": {k: _round(v) for k, v in self.distances.items()},
            "thresholds": {k: _round(v) for k, v in self.thresholds.items()},
            "attempts": [a.to_dict() for a in self.attempts],
            "notes": list(self.notes),
            "timings_ms": {k: round(float(v), 2) for k, v in self.timings_ms.items()},
            "metrics": _jsonable(self.metrics),
            "identity": self.identity,
            "errors": list(self.errors),
            "checks": {"gender": self.gender_checked, "expression": self.expression_checked},
            "expression_changed": self.expression_changed,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic | np.ndarray):  # numpy scalars (and one-element arrays)
        value = value.item()
    if isinstance(value, float):
        return round(value, 5)
    return value
