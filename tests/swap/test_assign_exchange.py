"""A face whose candidates matched another fake of the photo made first, and the fakes it clashes with after it
(`FakeGenerator._exchanged`, `assign.clashes`, `assign.collided(fallbacks=False, fakes=True)`), and each
collision's `Attempt.matched_fake` (a fake, or real faces only: then the face is not made again).

Real faces only: the swap tests' pool (openpeople crops, nothing committed), tiled side by side.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, assign
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import Attempt, FaceReport
from mfmc.swap.verify import Avoid
from mfmc.vision import FacePipeline, Faces
from tests.swap.conftest import VERIFIERS
from tests.swap.test_assign_floor import _apart, _tiles


def _fake(index: int, identity: str, embeddings: dict[str, np.ndarray]) -> FaceReport:
    report = FaceReport(index=index, box=(0.0, 0.0, 1.0, 1.0), fallback="none", verified=True, identity=identity)
    report.fake_embeddings = embeddings
    return report


def test_clashes_finds_the_same_identity_and_a_fake_within_a_bar(pipeline: FacePipeline, pool: TargetPool) -> None:
    _, faces = _tiles(pipeline, pool, _apart(pipeline, pool))
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS)
    a = {n: np.asarray(faces.embeddings[n][0], np.float32) for n in VERIFIERS}
    b = {n: np.asarray(faces.embeddings[n][1], np.float32) for n in VERIFIERS}
    mine = _fake(0, "P1", a)
    others = {1: _fake(1, "P2", b), 2: _fake(2, "P1", b), 3: _fake(3, "P3", dict(a))}
    # face 1: another person (the two tiles are apart on every verifier); face 2: my identity; face 3: my face
    assert assign.clashes(pipeline, gen.verifier, mine, others) == [2, 3]


def test_collided_without_fallbacks_leaves_out_the_expression_retries_and_fallback() -> None:
    report = FaceReport(index=0, box=(0.0, 0.0, 1.0, 1.0))
    report.attempts.append(Attempt("swap-expression", "a", 0.5, {}, False,
                                   "expression happy→neutral; dlib matches another face of the photo"))
    assert assign.collided(report) and not assign.collided(report, fallbacks=False)
    report.attempts.append(Attempt("swap-keep", "b", 0.5, {}, False, "openface matches another face of the photo"))
    assert not assign.collided(report, fallbacks=False)  # an expression retry: the face failed on its expression
    report.attempts.append(Attempt("swap", "c", 0.5, {}, False, "facenet matches another face of the photo"))
    assert assign.collided(report, fallbacks=False)


def test_collided_with_fakes_counts_only_a_candidate_that_matched_a_fake() -> None:
    report = FaceReport(index=0, box=(0.0, 0.0, 1.0, 1.0))
    report.attempts.append(Attempt("swap", "a", 0.5, {}, False, "dlib matches another face of the photo"))
    assert assign.collided(report, fallbacks=False) and not assign.collided(report, fallbacks=False, fakes=True)
    report.attempts.append(Attempt("swap-expression", "b", 0.5, {}, False,
                                   "expression happy→neutral; dlib matches another face of the photo", True))
    assert not assign.collided(report, fallbacks=False, fakes=True) and assign.collided(report, fakes=True)
    report.attempts.append(Attempt("swap", "c", 0.5, {}, False, "facenet matches another face of the photo", True))
    assert assign.collided(report, fallbacks=False, fakes=True)


def test_avoid_keeps_which_rows_are_real_faces_through_plus() -> None:
    # the caller's rows (people the client knows) are not the photo's faces; rows added as real stay marked
    known = Avoid({"dlib": np.ones((2, 4), np.float32)})
    both = known.plus({"dlib": np.zeros((3, 4), np.float32)}, real={"dlib": np.array([True, True, False])})
    assert both.is_real("dlib").tolist() == [False, False, True, True, False]
    assert both.is_real("facenet").size == 0
    with pytest.raises(ValueError, match="one value per row"):
        Avoid({"dlib": np.ones((2, 4), np.float32)}, real={"dlib": np.array([True])})


def test_a_collision_says_whether_it_was_with_a_fake_or_a_real_face(pipeline: FacePipeline, pool: TargetPool) -> None:
    # face 1's first fake (made alone), then face 1 made again with the same seed beside a row equal to that
    # fake's embeddings: the same first candidate comes within the bar of it. As another fake's row it is
    # `matched_fake`; as face 0's real embeddings (the photo's faces changed to carry them), it is not
    image, faces = _tiles(pipeline, pool, _apart(pipeline, pool))
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=3)
    alone = gen.fake_face(image, faces, 1, seed=7, avoid=gen.photo_avoid(faces, 1, [], Avoid()))
    assert assign.swapped(alone[1]), alone[1].reason
    twin = FaceReport(index=0, box=(0.0, 0.0, 1.0, 1.0), fallback="none", verified=True)
    twin.fake_embeddings = alone[1].fake_embeddings
    beside = gen.fake_face(image, faces, 1, seed=7, avoid=gen.photo_avoid(faces, 1, [twin], Avoid()))[1]
    hit = [a for a in beside.attempts if a.target == alone[1].target]
    assert hit and hit[0].reason.endswith("matches another face of the photo") and hit[0].matched_fake, hit
    embs = {n: np.array(faces.embeddings[n], np.float32) for n in faces.embeddings}
    for n in VERIFIERS:
        embs[n][0] = alone[1].fake_embeddings[n]
    real = faces.replace(embeddings=embs)
    met = gen.fake_face(image, real, 1, seed=7, avoid=gen.photo_avoid(real, 1, [], Avoid()))[1]
    hit = [a for a in met.attempts if a.target == alone[1].target]
    assert hit and hit[0].reason.endswith("matches another face of the photo") and not hit[0].matched_fake, hit
    assert not assign.collided(met, fakes=True)


def _blocked(gen: FakeGenerator, pool: TargetPool, image: np.ndarray, faces: Faces,
             seed: int = 7) -> tuple[FacePatch, FaceReport]:
    """Face 1 left without a fake (every pool identity left out: it ends pixelated, really) and a candidate
    rejected for matching another face of the photo (what a crowded photo's first pass leaves)."""
    patch, lost = gen.fake_face(image, faces, 1, seed=seed, avoid=Avoid(targets=frozenset(
        pool.identity(i) for i in pool.ids)))
    assert lost.fallback in ("obfuscate", "fill")
    lost.attempts.append(Attempt("swap", "x", 0.5, {}, False, "dlib matches another face of the photo",
                                 matched_fake=True))
    return patch, lost


def test_a_blocked_face_made_first_takes_the_identity_and_the_other_is_made_again(
    pipeline: FacePipeline, pool: TargetPool
) -> None:
    # face 1 made first gets some identity; face 0's fake (a real fake of face 0) is said to be of that identity,
    # so the two clash: face 1 keeps its new fake, face 0 is made again after it, without that identity
    image, faces = _tiles(pipeline, pool, _apart(pipeline, pool))
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    alone = gen.fake_face(image, faces, 1, seed=7, avoid=gen.photo_avoid(faces, 1, [], Avoid()))
    assert assign.swapped(alone[1]), alone[1].reason
    taken = alone[1].identity
    patch0, fake0 = gen.fake_face(image, faces, 0, seed=7, avoid=gen.photo_avoid(faces, 0))
    assert assign.swapped(fake0), fake0.reason
    fake0 = dataclasses.replace(fake0, identity=taken)
    out = {0: (patch0, fake0), 1: _blocked(gen, pool, image, faces)}
    gen._exchanged(image, faces, out, lambda _: 7, Avoid(), set())
    first, again = out[1][1], out[0][1]
    assert assign.swapped(first) and first.identity == taken
    assert assign.swapped(again) and again.identity not in (taken, None), again.reason
    assert any(n.startswith("made again after face 1") for n in again.notes), again.notes
    assert assign.clashes(pipeline, gen.verifier, first, {0: again}) == []
    # every making is counted in the reports: face 0's first fake, face 1's blocked candidates
    assert any(a.reason.startswith("passed; not kept: face 1") for a in again.attempts)
    assert any(a.target == "x" for a in first.attempts)


def _exchange_without(gen: FakeGenerator, pool: TargetPool, monkeypatch: pytest.MonkeyPatch,
                      never: set[tuple[int, int]], left_out: list[frozenset[str]],
                      ) -> tuple[dict[int, tuple[FacePatch, FaceReport]], FaceReport, tuple[FacePatch, FaceReport],
                                 list[int]]:
    """Face 1 blocked, face 0's fake of the identity face 1 takes when made first; the makings numbered in
    `never` ((face, n-th making of it in the exchange)) are given every pool identity to leave out (they fail,
    really); `left_out` gets each making's identities left out. Returns the photo after `_exchanged`, face 0's
    fake, face 1's blocked making and the faces made, in order."""
    image, faces = _tiles(gen.pipeline, pool, _apart(gen.pipeline, pool))
    alone = gen.fake_face(image, faces, 1, seed=7, avoid=gen.photo_avoid(faces, 1, [], Avoid()))
    patch0, fake0 = gen.fake_face(image, faces, 0, seed=7, avoid=gen.photo_avoid(faces, 0))
    assert assign.swapped(alone[1]) and assign.swapped(fake0)
    fake0 = dataclasses.replace(fake0, identity=alone[1].identity)
    blocked = _blocked(gen, pool, image, faces)
    real_fake_face = gen.fake_face
    calls: list[int] = []

    def failing(image, faces, index, *, seed=0, avoid=None):  # type: ignore[no-untyped-def]
        calls.append(index)
        left_out.append(avoid.targets)
        if (index, calls.count(index)) in never:
            avoid = avoid.plus(None, [pool.identity(i) for i in pool.ids])
        return real_fake_face(image, faces, index, seed=seed, avoid=avoid)

    monkeypatch.setattr(gen, "fake_face", failing)
    out = {0: (patch0, fake0), 1: blocked}
    gen._exchanged(image, faces, out, lambda _: 7, Avoid(), set())
    return out, fake0, blocked, calls


def test_where_the_other_cannot_be_made_again_the_face_takes_an_identity_not_in_use(
    pipeline: FacePipeline, pool: TargetPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # face 0 cannot be made again after face 1 takes its identity: face 1 is made again first with the
    # identities in use left out (and face 0 again after it where the two still clash); whatever holds, the
    # photo ends with fakes apart, or as it was
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    left_out: list[frozenset[str]] = []
    out, fake0, blocked, calls = _exchange_without(gen, pool, monkeypatch, {(0, 1)}, left_out)
    assert calls[:3] == [1, 0, 1] and len(calls) <= 4
    assert fake0.identity not in left_out[0] and fake0.identity in left_out[2]
    if assign.swapped(out[1][1]):
        assert assign.swapped(out[0][1]) and out[1][1].identity not in (fake0.identity, out[0][1].identity)
        assert assign.clashes(pipeline, gen.verifier, out[1][1], {0: out[0][1]}) == []
    else:
        assert out[0][1] is fake0 and out[1] is blocked
    assert any(a.reason.startswith("passed; not kept: face 0's fake") for a in out[1][1].attempts)


def test_the_photo_stays_as_it_was_when_no_exchange_holds(
    pipeline: FacePipeline, pool: TargetPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # neither face 0 again nor face 1 with the identities in use left out: face 0 keeps its fake and face 1 its
    # pixelation, whose report counts what the exchanges cost
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    out, fake0, blocked, calls = _exchange_without(gen, pool, monkeypatch, {(0, 1), (1, 2), (0, 2)}, [])
    assert calls[:3] == [1, 0, 1] and len(calls) <= 4
    assert out[0][1] is fake0 and out[1] is blocked
    assert not assign.swapped(blocked[1])
    assert any(a.reason.startswith("passed; not kept: face 0's fake") for a in blocked[1].attempts)


def test_a_face_that_holds_beside_no_real_face_is_not_made_again_with_fewer_identities(
    pipeline: FacePipeline, pool: TargetPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # face 1 made first (every identity allowed, no fake to avoid) fails: leaving identities out cannot help, so
    # it is made once, and nothing else is
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    out, fake0, blocked, calls = _exchange_without(gen, pool, monkeypatch, {(1, 1)}, [])
    assert calls == [1]
    assert out[0][1] is fake0 and out[1] is blocked


def test_a_face_blocked_by_real_faces_only_is_not_made_again(
    pipeline: FacePipeline, pool: TargetPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # face 1's candidates matched real faces only: made against the real faces alone it would meet them again
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    image, faces = _tiles(pipeline, pool, _apart(pipeline, pool))
    patch0, fake0 = gen.fake_face(image, faces, 0, seed=7, avoid=gen.photo_avoid(faces, 0))
    blocked = _blocked(gen, pool, image, faces)
    blocked[1].attempts[-1].matched_fake = False
    calls: list[int] = []
    real_fake_face = gen.fake_face

    def counted(image, faces, index, *, seed=0, avoid=None):  # type: ignore[no-untyped-def]
        calls.append(index)
        return real_fake_face(image, faces, index, seed=seed, avoid=avoid)

    monkeypatch.setattr(gen, "fake_face", counted)
    out = {0: (patch0, fake0), 1: blocked}
    gen._exchanged(image, faces, out, lambda _: 7, Avoid(), set())
    assert calls == [] and out[0][1] is fake0 and out[1] is blocked
