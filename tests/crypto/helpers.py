"""Helpers for the crypto tests: cheap argon2id parameters (explicit), deterministic embeddings, snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mfmc.crypto import KdfParams

FAST = KdfParams.FAST_INSECURE  # tests only; production code defaults to KdfParams.MODERATE


def vectors(seed: int, dims: tuple[int, ...] = (8,)) -> dict[str, np.ndarray]:
    """Small embeddings so that flipping every byte of an envelope stays fast."""
    rng = np.random.default_rng(seed)
    return {"arcface": rng.normal(size=dims).astype(np.float32), "dlib": rng.normal(size=(2, 4)).astype(np.float32)}


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file (name -> bytes) under a keyring directory, to prove a failed operation changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
