"""FakeGenerator on real photos (openpeople) with the real recognizers: every returned face is verified,
nothing outside the masks changes, pose and expression are kept, and failures fail closed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, changed_outside, landmark_error
from mfmc.vision import FacePipeline
from tests.swap.conftest import VERIFIERS, Group

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def anonymized(pipeline: FacePipeline, pool: TargetPool, group: Group) -> tuple[np.ndarray, list, list]:
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS)
    patches = [gen.fake_face(group.image, group.faces, i, seed=0) for i in range(len(group.faces))]
    out = group.image
    for patch, _ in patches:
        out = patch.apply(out)
    return out, [p for p, _ in patches], [r for _, r in patches]


def _reverify(pipeline: FacePipeline, image: np.ndarray, group: Group, i: int) -> dict[str, float]:
    """Independent check: re-predict landmarks on the result, re-embed, compare with the source."""
    face = group.faces[i].replace(embeddings={})
    face = face.replace(landmarks68=pipeline.landmarker.predict(image, face))
    out = {}
    for name in VERIFIERS:
        rec = pipeline.recognizers[name]
        emb = rec.embed(image, face)[0]
        out[name] = float(rec.distance(emb, group.faces.embeddings[name][i]))
    return out


def test_every_face_is_verified_by_every_recognizer(pipeline: FacePipeline, group: Group, anonymized) -> None:
    _, patches, reports = anonymized
    for i, (patch, report) in enumerate(zip(patches, reports, strict=True)):
        assert report.verified and report.verified_by == "recognizers", report.to_dict()
        single = patch.apply(group.image)
        dist = _reverify(pipeline, single, group, i)
        for name, d in dist.items():
            assert d > pipeline.recognizers[name].threshold + 0.05, (i, name, d)
        assert set(report.distances) == set(VERIFIERS)


def test_most_faces_are_swaps_not_obfuscations(anonymized) -> None:
    _, _, reports = anonymized
    swapped = [r for r in reports if r.fallback in ("none", "alpha")]
    assert len(swapped) >= 3, [r.to_dict() for r in reports]
    for r in swapped:
        assert r.target is not None
        assert any(a.passed and a.target == r.target for a in r.attempts)


def test_nothing_changes_outside_the_masks(group: Group, anonymized) -> None:
    out, patches, _ = anonymized
    union = np.zeros(group.image.shape[:2], bool)
    for p in patches:
        union |= p.full_mask()
    assert changed_outside(group.image, out, union, tolerance=1) == 0
    assert (np.abs(out.astype(int) - group.image.astype(int)).max(axis=2) > 1)[union].mean() > 0.3


def test_pose_and_expression_are_kept(pipeline: FacePipeline, group: Group, anonymized) -> None:
    out, _, reports = anonymized
    errors = [r.metrics["landmark_error"] for r in reports if r.fallback == "none"]
    assert errors and float(np.mean(errors)) <= 0.04, errors
    found = pipeline.detect(out)
    assert len(found) == len(group.faces)  # still faces, at the same places
    lm = pipeline.landmarker.predict(out, group.faces)
    for i, r in enumerate(reports):
        if r.fallback == "none":
            assert landmark_error(group.faces.landmarks68[i], lm[i]) < 0.06


def test_report_is_json_ready_with_timings(anonymized) -> None:
    _, _, reports = anonymized
    data = json.loads(json.dumps([r.to_dict() for r in reports]))
    for entry in data:
        assert {"box", "target", "attempts", "distances", "fallback", "timings_ms", "metrics"} <= set(entry)
        assert {"query", "swap", "verify"} <= set(entry["timings_ms"])
        assert entry["metrics"]["changed_outside_mask"] == 0


def test_impossible_margin_fails_closed_with_obfuscation(
    pipeline: FacePipeline, pool: TargetPool, group: Group
) -> None:
    gen = FakeGenerator(pipeline, pool, margin=5.0, max_attempts=2, alpha_retries=1)
    patch, report = gen.fake_face(group.image, group.faces, 0, seed=0)
    assert report.fallback == "fill" and report.verified_by == "construction"
    assert "passed" in report.reason or "failed" in report.reason, report.reason
    assert [a.method for a in report.attempts][:2] == ["swap", "swap"]
    assert not any(a.passed for a in report.attempts if a.method != "fill")
    inside = patch.apply(group.image)[patch.full_mask()]
    assert (inside == inside[0]).all()  # nothing of the face is left


class _EmptyPool:
    def __len__(self) -> int:
        return 0

    def query(self, *args: object, **kwargs: object) -> list:
        return []


def test_empty_pool_still_protects_the_face(pipeline: FacePipeline, group: Group) -> None:
    gen = FakeGenerator(pipeline, _EmptyPool())
    patch, report = gen.fake_face(group.image, group.faces, 1, seed=0)
    assert report.fallback in ("obfuscate", "fill") and report.verified
    assert report.reason == "the pool is empty"
    if report.fallback == "obfuscate":
        for name, d in report.distances.items():
            assert d > report.thresholds[name]
    assert patch.area > 0.5 * float(np.prod(group.faces.boxes[1, 2:] - group.faces.boxes[1, :2]))


def test_tiny_face_is_obfuscated_and_the_report_says_why(
    pipeline: FacePipeline, pool: TargetPool, group: Group
) -> None:
    import cv2

    small = cv2.resize(group.image, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)
    faces = group.faces.scaled(0.12)
    gen = FakeGenerator(pipeline, pool)
    patch, report = gen.fake_face(small, faces, 0, seed=0)
    assert report.fallback == "obfuscate" and "px" in report.reason
    assert patch.area > 0 and not np.array_equal(patch.apply(small), small)


def test_same_seed_same_fake(pipeline: FacePipeline, pool: TargetPool, group: Group) -> None:
    gen = FakeGenerator(pipeline, pool, measure=False, recognizers=VERIFIERS)
    a, ra = gen.fake_face(group.image, group.faces, 2, seed=7)
    b, rb = gen.fake_face(group.image, group.faces, 2, seed=7)
    assert ra.target == rb.target and a == b
