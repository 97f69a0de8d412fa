"""The uploader's client fakes the faces that must never leave it real together, under the photo's rules
(`FaceBackend.fake_many` on `FakeGenerator.patches`, as `mfmc anonymize`): one analysis per photo, the floor step
and the audit of the finished photo, and failing closed per face (`fake_many_or_block`).

Real faces: four openpeople people (the swap tests' source people, not in the test pool) packed side by side so
that each face's surroundings reach its neighbours (as tests/swap/test_assign_render.py); nothing is committed.
The grid tests check the composition and the per-face fallbacks cheaply, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mfmc.client.client import upload_key
from mfmc.errors import GenerationError
from mfmc.pool import TargetPool
from mfmc.service import Platform
from mfmc.service.backends import DetectedFace, VisionBackend, fake_many_or_block, fake_or_block, seed_of
from mfmc.service.testing import GridBackend, grid_photo
from mfmc.swap import FakeGenerator, assign
from mfmc.vision import FacePipeline
from mfmc.vocabulary import Fallback
from tests.platform.conftest import crop, make_platform
from tests.swap.conftest import SOURCE_PEOPLE, VERIFIERS, assert_apart, head_crop
from tests.vision.helpers import photo

ASSETS = ["studio_portrait", "amateur_selfie", "amateur_selfie", "studio_portrait"]


@pytest.fixture(scope="module")
def packed(pipeline: FacePipeline) -> np.ndarray:
    tiles = []
    for person, asset in zip(SOURCE_PEOPLE, ASSETS, strict=True):
        image = photo(person, asset, 1024)
        faces = pipeline.detect(image)
        box = faces.boxes[int(np.argmax(faces.areas))]
        tiles.append(head_crop(image, box, (120, 150), up=0.9, down=1.0, side=0.75))
    return np.ascontiguousarray(np.hstack(tiles))


@pytest.fixture
def backend(pipeline: FacePipeline, pool: TargetPool) -> VisionBackend:
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    return VisionBackend(pipeline=pipeline, generator=gen)


@pytest.fixture
def real_platform(tmp_path: Path, backend: VisionBackend) -> Iterator[Platform]:
    p = make_platform(tmp_path / "d", backend)  # type: ignore[arg-type]
    p.add_user("alice")
    yield p
    p.close()


def _uploaded(p: Platform, photo_id: int) -> np.ndarray:
    """The photo as the server stores it (a proxy upload is final: every view shows it)."""
    view = p.render(photo_id, "alice")
    assert view.generated == 0
    return view.image


@pytest.mark.slow
def test_an_upload_fakes_its_faces_together_and_audits_the_finished_photo(
    real_platform: Platform, backend: VisionBackend, pipeline: FacePipeline, packed: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, gen = real_platform, backend.generator
    calls: dict[str, list[object]] = {"patches": [], "analyses": [], "audits": []}
    real_patches, real_analyzed, real_audit = gen.patches, backend._analyzed_faces, assign.audit

    def patches(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["patches"].append((list(kwargs["only"]), dict(kwargs["seeds"])))
        return real_patches(*args, **kwargs)

    def analyzed(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["analyses"].append(1)
        return real_analyzed(*args, **kwargs)

    def audit(*args, **kwargs):  # type: ignore[no-untyped-def]
        faces, given = args[3], args[4]
        swapped = [r.index for _, r in given if assign.swapped(r) and r.fake_embeddings]
        calls["audits"].append(assign.touched(faces.boxes, [q for q, _ in given], swapped,
                                              owners=[r.index for _, r in given]))
        return real_audit(*args, **kwargs)

    monkeypatch.setattr(gen, "patches", patches)
    monkeypatch.setattr(backend, "_analyzed_faces", analyzed)
    monkeypatch.setattr(assign, "audit", audit)
    res = p.upload(packed, "alice", model="proxy")  # every face is faked on the client
    assert [f.state for f in res.faces] == ["client_faked"] * 4 and res.fallbacks == 0
    # one photo-level call with every face and its own seed, on one analysis of the photo (was: one per face)
    [(only, seeds)] = calls["patches"]
    assert only == [0, 1, 2, 3] and len(set(seeds.values())) == 4
    assert len(calls["analyses"]) == 1
    # the faces are packed: the finished photo was audited, re-checking the swapped faces
    assert calls["audits"] and calls["audits"][-1], calls["audits"]
    # as anyone would read the uploaded photo: no swapped face matches any real face or another fake
    image = _uploaded(p, res.photo_id)
    faces = pipeline.analyze(packed, pipeline.detect(packed), attributes=False, recognizers=VERIFIERS)
    faces = faces[np.argsort(faces.boxes[:, 0], kind="stable")]
    swapped = [f.index for f in res.faces if f.fallback in (Fallback.NONE, Fallback.ALPHA)]
    assert len(swapped) >= 3, [f.fallback for f in res.faces]
    assert_apart(pipeline, faces, image, swapped)
    for f in res.faces:
        assert not np.array_equal(crop(image, f.box), crop(packed, f.box)), f.index


@pytest.mark.slow
def test_a_face_whose_generation_raises_gets_a_block_the_others_are_still_faked(
    real_platform: Platform, backend: VisionBackend, packed: np.ndarray, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gen = backend.generator
    real_fake_face = gen.fake_face

    def failing(image, faces, index, **kwargs):  # type: ignore[no-untyped-def]
        if index == 1:
            raise GenerationError("injected generator failure")
        return real_fake_face(image, faces, index, **kwargs)

    monkeypatch.setattr(gen, "fake_face", failing)
    res = real_platform.upload(packed, "alice", model="proxy")
    assert [f.fallback is Fallback.BLOCK for f in res.faces] == [False, True, False, False]
    assert res.fallbacks == 1
    assert "the photo-level fake failed" in caplog.text and "face 1: no verified fake" in caplog.text
    image = _uploaded(real_platform, res.photo_id)
    for f in res.faces:  # the block and every fake hide their face
        assert not np.array_equal(crop(image, f.box), crop(packed, f.box)), f.index


@pytest.mark.slow
def test_a_one_face_upload_is_unchanged(real_platform: Platform, backend: VisionBackend, packed: np.ndarray) -> None:
    # one face: no other face or fake to avoid, no rule of the photo fires: the fake is the per-face one's, pixel
    # for pixel (the same seed, analysis and avoid as `fake_or_block` on the photo)
    one = np.ascontiguousarray(packed[:, 360:])  # the last person, whom the pool swaps
    faces = backend.detect(one)
    assert len(faces) == 1
    res = real_platform.upload(one, "alice", model="proxy")
    raw = one.tobytes() + str(one.shape).encode()  # the key of an array upload (`mfmc.client.client._raw_bytes`)
    seed = seed_of(upload_key(raw, "proxy", None, []), 0, "client")
    alone = fake_or_block(backend, one, faces, 0, seed=seed)
    assert alone.verified and alone.fallback is Fallback.NONE and alone.report["identity"]
    assert np.array_equal(_uploaded(real_platform, res.photo_id), alone.image)
    together, outcomes = fake_many_or_block(backend, one, faces, [0], seeds={0: seed})
    assert np.array_equal(together, alone.image)
    assert {**outcomes[0].report, "timings_ms": None} == {**alone.report, "timings_ms": None}


class _Unverified(GridBackend):
    """Face 1's fake comes back unverified from the photo-level call."""

    def fake_many(self, image, faces, indices, *, seeds, avoid_identities=frozenset()):  # type: ignore[no-untyped-def]
        made = super().fake_many(image, faces, indices, seeds=seeds, avoid_identities=avoid_identities)
        return [replace(o, verified=False, fallback=Fallback.OBFUSCATE) if i == 1 else o
                for i, o in zip(indices, made, strict=True)]


def test_an_unverified_fake_among_many_gets_a_block(caplog: pytest.LogCaptureFixture) -> None:
    backend = _Unverified()
    image = grid_photo([0, 3, 5], seed=15)
    faces = backend.detect(image)
    seeds = {i: seed_of("k", i, "client") for i in range(3)}
    out, outcomes = fake_many_or_block(backend, image, faces, [0, 1, 2], seeds=seeds)
    assert [o.fallback for o in outcomes.values()] == [Fallback.NONE, Fallback.BLOCK, Fallback.NONE]
    assert "did not pass verification" in str(outcomes[1].report["error"]) and "face 1: no verified" in caplog.text
    assert backend.fake_calls == 3  # no per-face retry: the call itself did not fail
    # faces 0 and 2 are exactly their own fakes; face 1 is hatched; nothing else changed
    for i in (0, 2):
        alone = GridBackend().fake(image, faces, i, seed=seeds[i])
        assert np.array_equal(crop(out, faces[i].box), crop(alone.image, faces[i].box))
    assert not np.array_equal(crop(out, faces[1].box), crop(image, faces[1].box))
    assert not np.array_equal(crop(out, faces[1].box), crop(GridBackend().fake(image, faces, 1, seed=seeds[1]).image,
                                                            faces[1].box))


def test_a_bug_in_the_photo_level_call_propagates() -> None:
    class Broken(GridBackend):
        def fake_many(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise TypeError("swapper bug")

    image = grid_photo([0, 3], seed=16)
    backend = Broken()
    with pytest.raises(TypeError, match="swapper bug"):
        fake_many_or_block(backend, image, backend.detect(image), [0, 1], seeds={0: 1, 1: 2})


def test_uploads_fake_each_face_once_in_one_call(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    # the grid backend on SQLite and PostgreSQL: the client asks for its faces once, in one call
    backend = platform.backend
    assert isinstance(backend, GridBackend)
    seen: list[list[int]] = []
    real = backend.fake_many

    def recording(image, faces, indices, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(list(indices))
        return real(image, faces, indices, **kwargs)

    monkeypatch.setattr(backend, "fake_many", recording)
    platform.add_user("alice")
    image = grid_photo([0, 1, 2, 3], seed=21)
    res = platform.upload(image, "alice", model="proxy", reveal=[2])
    assert seen == [[0, 1, 3]] and backend.fake_calls == 3 and res.fallbacks == 0
    shown = platform.render(res.photo_id, "alice").image
    faces: list[DetectedFace] = backend.detect(image)
    for i, f in enumerate(faces):
        assert np.array_equal(crop(shown, f.box), crop(image, f.box)) == (i == 2)
