"""What the platform's methods return: plain frozen records (no keys, no embeddings, no database rows)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from mfmc.store import models as m
from mfmc.vocabulary import Fallback


class FakeUse(StrEnum):
    """Which fake a faked face uses at render time."""

    NONE = "none"  # revealed, or already faked in the stored image (on the uploader's client)
    SHARED = "shared"  # one fake per (photo, face, generation), the same for every viewer
    PER_VIEWER = "per_viewer"  # one fake per viewer (the owner's rules say `fakes per_viewer`)

    def cache_viewer(self, viewer: str) -> str:
        """The `RenderedFake.viewer` column value for this use: "" for a shared fake, else the viewer."""
        if self is FakeUse.NONE:
            raise ValueError("a face without a fake has no cache key")
        return viewer if self is FakeUse.PER_VIEWER else ""


@dataclass(frozen=True)
class FaceSummary:
    index: int
    box: tuple[float, float, float, float]
    owner: str | None
    state: str
    tag: str | None = None
    consent: str = "none"
    fallback: Fallback | None = None  # client-side fakes: how the fake was made (`block`: no verified fake)
    note: str = ""  # at upload: why the face is unknown or faked on the client (not stored)


@dataclass(frozen=True)
class UploadResult:
    photo_id: int
    model: str
    faces: tuple[FaceSummary, ...]
    created: bool  # False when the same upload had already been stored (re-running is safe)

    @property
    def fallbacks(self) -> int:
        """Faces the client had to block because no verified fake could be made (logged, audited)."""
        return sum(f.fallback is Fallback.BLOCK for f in self.faces)


@dataclass(frozen=True)
class FaceDecision:
    index: int
    reveal: bool
    reasons: tuple[str, ...]
    owner: str | None
    fake: FakeUse = FakeUse.NONE
    fallback: Fallback | None = None  # how the fake shown was made (set by `render`)


@dataclass(frozen=True)
class Rendering:
    photo_id: int
    viewer: str
    image: np.ndarray  # read-only (shared with the render cache); copy it to modify
    decisions: tuple[FaceDecision, ...]
    version: str
    generated: int  # fakes generated for this render (0 = warm: composition only)

    @property
    def fallbacks(self) -> int:
        """Faces shown as a block because no verified fake could be made (logged, audited)."""
        return sum(d.fallback is Fallback.BLOCK for d in self.decisions)


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
    return tuple(FaceSummary(r.index, tuple(json.loads(r.box)), r.owner, r.state, r.tag, r.consent,  # type: ignore[arg-type]
                             Fallback(r.fake_fallback) if r.fake_fallback else None)
                 for r in rows)
