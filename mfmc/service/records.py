"""What the platform's methods return: plain frozen records (no keys, no embeddings, no database rows)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mfmc.store import models as m


@dataclass(frozen=True)
class FaceSummary:
    index: int
    box: tuple[float, float, float, float]
    owner: str | None
    state: str
    tag: str | None = None
    consent: str = "none"


@dataclass(frozen=True)
class UploadResult:
    photo_id: int
    model: str
    faces: tuple[FaceSummary, ...]
    created: bool  # False when the same upload had already been stored (re-running is safe)


@dataclass(frozen=True)
class FaceDecision:
    index: int
    reveal: bool
    reasons: tuple[str, ...]
    owner: str | None
    fake_key: str | None = None  # the cache key of the fake used ("" shared, viewer name per viewer)


@dataclass(frozen=True)
class Rendering:
    photo_id: int
    viewer: str
    image: np.ndarray  # read-only (shared with the render cache); copy it to modify
    decisions: tuple[FaceDecision, ...]
    version: str
    generated: int  # fakes generated for this render (0 = warm: composition only)


@dataclass(frozen=True)
class RotationResult:
    """What `Platform.rotate_keys` did. Fingerprints only: they identify keys without revealing them."""

    user: str
    old_fingerprint: str
    new_fingerprint: str
    reshared: tuple[str, ...]  # friends whose envelope from `user` was re-sealed under the new keys
    rules_version: int | None  # the version the rules were re-signed at (None: no rules, or refused ones)
    synced: tuple[str, ...]  # friends whose clients already accepted the rotation and re-shared
    pending: tuple[str, ...]  # friends whose clients could not be unlocked now; they catch up on their next sync


def summaries(rows: Iterable[m.Face]) -> tuple[FaceSummary, ...]:
    return tuple(FaceSummary(r.index, tuple(json.loads(r.box)), r.owner, r.state, r.tag, r.consent)  # type: ignore[arg-type]
                 for r in rows)
