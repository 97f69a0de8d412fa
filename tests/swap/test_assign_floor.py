"""A fake that the floor alone let near another real face (`FakeGenerator.photo_avoid`, `_unfloored`): the
photo's rules without floors (`strict`), the check that finds such a fake (`assign.breaks`), and its remaking.

Real faces only: the swap tests' pool (openpeople crops, nothing committed), tiled side by side.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, assign
from mfmc.swap.report import Attempt, FaceReport
from mfmc.swap.verify import Avoid
from mfmc.vision import FacePipeline, Faces
from tests.swap.conftest import VERIFIERS


def _tiles(pipeline: FacePipeline, pool: TargetPool, ids: list[str]) -> tuple[np.ndarray, Faces]:
    """Pool faces `ids` side by side (160 px tiles), analyzed with the verifiers."""
    crops = [cv2.resize(pool.target(i)[0], (160, 160), interpolation=cv2.INTER_AREA) for i in ids]
    image = np.ascontiguousarray(np.hstack(crops))
    faces = pipeline.analyze(image, recognizers=VERIFIERS)
    assert len(faces) == len(ids)
    return image, faces


def _apart(pipeline: FacePipeline, pool: TargetPool) -> list[str]:
    """The pool's first face and the first other face every verifier tells apart from it (pool embeddings)."""
    first = pool.ids[0]
    a = pool.entry(first).embeddings
    for i in pool.ids[1:]:
        b = pool.entry(i).embeddings
        if all(float(pipeline.recognizers[n].distance(a[n], b[n])) > pipeline.recognizers[n].threshold + 0.1
               for n in VERIFIERS):
            return [first, i]
    raise AssertionError("no two pool faces far apart on every verifier")


def test_strict_rules_hold_every_real_face_to_the_bar(pipeline: FacePipeline, pool: TargetPool) -> None:
    # one face twice: the recognizers match the two real faces, so the floor rule lowers the bar for that row
    # to their distance; `strict` keeps the bar
    _, faces = _tiles(pipeline, pool, [pool.ids[0], pool.ids[0]])
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS)
    floored, strict = gen.photo_avoid(faces, 0), gen.photo_avoid(faces, 0, strict=True)
    lowered = [n for n in VERIFIERS if float(floored.limits(n, gen.verifier.bar(n))[0]) < gen.verifier.bar(n)]
    assert lowered, "one face twice is matched by no recognizer: the test photo proves nothing"
    for n in VERIFIERS:
        assert np.array_equal(strict.rows(n), floored.rows(n))
        assert np.all(strict.limits(n, gen.verifier.bar(n)) == gen.verifier.bar(n))
    # the other face's own embedding breaks both; far from it (negated), neither
    near = {n: np.asarray(faces.embeddings[n][1], np.float32) for n in VERIFIERS}
    assert assign.breaks(pipeline, gen.verifier, near, strict) in VERIFIERS
    assert assign.breaks(pipeline, gen.verifier, {n: -e for n, e in near.items()}, strict) == ""


def test_collided_reads_the_rejections_for_matching_another_face() -> None:
    report = FaceReport(index=0, box=(0.0, 0.0, 1.0, 1.0))
    report.attempts.append(Attempt("swap", "a", 0.5, {}, False, "dlib still matches the source"))
    assert not assign.collided(report)
    report.attempts.append(Attempt("swap", "b", 0.5, {}, False, "facenet matches another face of the photo"))
    assert assign.collided(report)


def _claimed(faces: Faces) -> FaceReport:
    """Face 0's report of a swap whose fake reads exactly as face 1's original (what a floor could let through
    on a crowded photo)."""
    x1, y1, x2, y2 = (float(v) for v in faces.boxes[0])
    claimed = FaceReport(index=0, box=(x1, y1, x2, y2), fallback="none", verified=True, identity="claimed",
                         target="claimed-target")
    claimed.fake_embeddings = {n: np.asarray(faces.embeddings[n][1], np.float32) for n in VERIFIERS}
    return claimed


def test_a_fake_the_floor_let_near_a_real_face_is_made_again_under_the_bar(
    pipeline: FacePipeline, pool: TargetPool
) -> None:
    # two people; face 0 "has" a fake as close to face 1's original as that original itself (what a floor could
    # let through on a crowded photo): it is made again with every real face at the bar, and its report counts
    # the first fake's attempt (12 candidates: enough that some identity holds at the bar whatever the seeded
    # order of the promising targets, mfmc.swap.ranking.seeded)
    image, faces = _tiles(pipeline, pool, _apart(pipeline, pool))
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    claimed = _claimed(faces)
    claimed.attempts.append(Attempt("swap", "claimed-target", 0.5, {}, True, ""))
    patch0, _ = gen.fake_face(image, faces, 0, seed=7, avoid=gen.photo_avoid(faces, 0))
    other = gen.fake_face(image, faces, 1, seed=7, avoid=gen.photo_avoid(faces, 1))
    out = {0: (patch0, claimed), 1: other}
    strict = gen._unfloored(image, faces, out, lambda _: 7, Avoid())
    assert strict == {0}
    report = out[0][1]
    assert assign.swapped(report), report.reason
    assert report.identity not in ("claimed", None)
    assert any(note.startswith("made again") for note in report.notes), report.notes
    assert report.attempts[0].target == "claimed-target" and not report.attempts[0].passed
    others = [r for _, r in [out[1]] if assign.swapped(r)]
    rules = gen.photo_avoid(faces, 0, others, strict=True)
    assert assign.breaks(pipeline, gen.verifier, report.fake_embeddings, rules) == ""
    assert out[1] is other  # the face that kept its fake is left as it was


def test_a_face_its_fake_blocked_takes_its_place_when_it_cannot_be_made_at_the_bar(
    pipeline: FacePipeline, pool: TargetPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # face 0 "has" a fake on face 1's original, and no fake of face 0 holds at the bar (its remaking is given
    # every pool identity to leave out: it ends pixelated, really); face 1 had lost its candidates to another
    # face of the photo: it is made again without face 0's fake, swaps, and face 0 yields its place
    image, faces = _tiles(pipeline, pool, _apart(pipeline, pool))
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS)
    claimed = _claimed(faces)
    patch0, _ = gen.fake_face(image, faces, 0, seed=7, avoid=gen.photo_avoid(faces, 0))
    patch1, lost = gen.fake_face(image, faces, 1, seed=7, avoid=Avoid(targets=frozenset(
        pool.identity(i) for i in pool.ids)))
    assert lost.fallback in ("obfuscate", "fill")
    lost.attempts.append(Attempt("swap", "x", 0.5, {}, False, "dlib matches another face of the photo"))
    real_fake_face = gen.fake_face
    calls: list[int] = []

    def face0_never_at_the_bar(image, faces, index, *, seed=0, avoid=None):  # type: ignore[no-untyped-def]
        calls.append(index)
        if index == 0:
            avoid = avoid.plus(None, [pool.identity(i) for i in pool.ids])
        return real_fake_face(image, faces, index, seed=seed, avoid=avoid)

    monkeypatch.setattr(gen, "fake_face", face0_never_at_the_bar)
    out = {0: (patch0, claimed), 1: (patch1, lost)}
    strict = gen._unfloored(image, faces, out, lambda _: 7, Avoid())
    assert calls == [0, 1]
    assert strict == {0, 1}
    assert out[0][1].fallback in ("obfuscate", "fill") and "face 1 takes its place" in " ".join(out[0][1].notes)
    assert assign.swapped(out[1][1]), out[1][1].reason
    rules = gen.photo_avoid(faces, 1, [], strict=True)
    assert assign.breaks(pipeline, gen.verifier, out[1][1].fake_embeddings, rules) == ""
