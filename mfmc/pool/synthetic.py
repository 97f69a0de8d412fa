"""Random pools of made-up embeddings and attributes, for tests and benchmarks (no images involved)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mfmc.pool.index import ATTRIBUTES, PoolIndex, RecognizerInfo

DEFAULT_DIMS: Mapping[str, int] = {"dlib": 128, "facenet": 512}
THRESHOLDS: Mapping[str, float] = {"dlib": 0.6, "facenet": 1.1}


def random_index(n: int, *, dims: Mapping[str, int] | None = None, seed: int = 0, aligned: bool = False,
                 name: str = "synthetic") -> PoolIndex:
    """A pool of `n` faces with unit-length Gaussian embeddings and plausible random attributes."""
    rng = np.random.default_rng(seed)
    dims = dict(dims or DEFAULT_DIMS)
    recognizers = {r: RecognizerInfo(r, d, THRESHOLDS.get(r)) for r, d in dims.items()}
    embeddings = {}
    for r, d in dims.items():
        e = rng.standard_normal((n, d), dtype=np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        embeddings[r] = e
    attrs = {k: np.full((n, *shape), fill, dtype=dtype) for k, (dtype, shape, fill) in ATTRIBUTES.items()
             if k not in ("aligned", "landmarks68")}
    attrs["age"] = rng.uniform(5, 85, n).astype(np.float32)
    attrs["gender"] = rng.integers(0, 2, n).astype(np.int8)
    attrs["pose"] = (rng.standard_normal((n, 3)) * np.array([20.0, 10.0, 5.0])).astype(np.float32)
    attrs["mouth_open"] = rng.choice([0.02, 0.3], n, p=[0.7, 0.3]).astype(np.float32)
    attrs["eye_ratio"] = rng.choice([0.1, 0.3], n, p=[0.1, 0.9]).astype(np.float32)
    attrs["face_size"] = rng.uniform(64, 400, n).astype(np.float32)
    attrs["quality"] = rng.uniform(0.3, 1.0, n).astype(np.float32)
    if aligned:
        attrs["aligned"] = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    records = [{"id": f"syn{i:07d}", "sha256": "", "source": {"package": "synthetic"}, "crop": ""}
               for i in range(n)]
    return PoolIndex(name, recognizers, records, embeddings, attrs)
