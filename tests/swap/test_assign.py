"""The finished photo (`mfmc.swap.assign`, `FakeGenerator.patches`): every fake whose surroundings another patch
touches is re-checked with every patch applied, and one that breaks a rule there is made again.

Real faces only: the swap tests' pool (openpeople crops) and, for the crowded photo, photos from installed
packages (nothing is committed): scikit-image's `astronaut` (dev extra) and matplotlib's `grace_hopper.jpg` (a
runtime dependency), each twice and mirrored, packed so that each face's surroundings reach its neighbours.
"""

from __future__ import annotations

import os

import cv2
import matplotlib
import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator, assign
from mfmc.swap.patch import FacePatch
from mfmc.swap.report import FaceReport
from mfmc.vision import FacePipeline, Faces, load_image
from tests.swap.conftest import VERIFIERS, head_crop


def _patch(box: tuple[int, int, int, int], shape: tuple[int, int] = (100, 400)) -> FacePatch:
    x1, y1, x2, y2 = box
    return FacePatch(box, np.zeros((y2 - y1, x2 - x1, 3), np.uint8), np.zeros((y2 - y1, x2 - x1), bool), shape)


def _two_people(pipeline: FacePipeline, pool: TargetPool) -> tuple[np.ndarray, Faces]:
    """Two pool people's faces side by side (160 px tiles), analyzed with the verifiers."""
    people: dict[str, str] = {}
    for i in pool.ids:
        people.setdefault(pool.identity(i), i)
    crops = [cv2.resize(pool.target(i)[0], (160, 160), interpolation=cv2.INTER_AREA) for i in list(people.values())[:2]]
    image = np.ascontiguousarray(np.hstack(crops))
    faces = pipeline.analyze(image, recognizers=VERIFIERS)
    assert len(faces) == 2
    return image, faces


def test_touched_takes_faces_whose_surroundings_another_patch_meets() -> None:
    boxes = np.array([[0, 0, 50, 50], [60, 0, 110, 50], [300, 0, 350, 50]], np.float32)
    patches = [_patch((0, 0, 50, 50)), _patch((60, 0, 110, 50)), _patch((300, 0, 350, 50))]
    assert assign.touched(boxes, patches, [0, 1, 2]) == [0, 1]
    assert assign.touched(boxes, patches, [2]) == []


def test_audit_flags_a_fake_the_finished_photo_shows_as_its_source(pipeline: FacePipeline, pool: TargetPool) -> None:
    # two pool faces side by side; each "fake" claims to have passed with far embeddings, but its patch writes
    # nothing: in the finished photo each face is still its source, and the audit says so
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS)
    image, faces = _two_people(pipeline, pool)
    pairs = []
    for k in range(2):
        x1, y1, x2, y2 = (int(v) for v in faces.boxes[k])
        report = FaceReport(index=k, box=(x1, y1, x2, y2), fallback="none", verified=True, identity=f"claimed{k}")
        report.fake_embeddings = {n: -np.asarray(faces.embeddings[n][k], np.float32) for n in VERIFIERS}
        # each patch spans its tile and a little of the neighbour's, as a real patch's margin does
        pairs.append((_patch((max(0, 160 * k - 20), 0, min(320, 160 * k + 180), 160), image.shape[:2]), report))
    bad, seen = assign.audit(pipeline, gen.verifier, image, faces, pairs,
                             lambda k, others: gen.photo_avoid(faces, k, others, None))
    assert set(bad) == {0, 1}
    assert all("matches its source" in why for why in bad.values()), bad
    for k in range(2):  # the embeddings the finished photo shows, not the claimed ones
        for n in VERIFIERS:
            rec = pipeline.recognizers[n]
            assert float(rec.distance(seen[k].fake_embeddings[n], faces.embeddings[n][k])) < rec.threshold


@pytest.mark.slow
def test_the_finished_photo_keeps_every_rule(pipeline: FacePipeline, pool: TargetPool) -> None:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the astronaut photo")
    astro = np.ascontiguousarray(skimage_data.astronaut())
    hopper = load_image(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    tiles = [head_crop(img, pipeline.detect(img).boxes[0], (120, 150), up=0.9, down=1.0, side=0.75)
             for img in (astro, hopper)]
    image = np.ascontiguousarray(np.hstack(tiles + [t[:, ::-1] for t in tiles]))
    faces = pipeline.analyze(image)
    assert len(faces) == 4
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    pairs = gen.patches(image, faces, seed=3)
    assert all(r.verified for _, r in pairs)
    swapped = [r.index for _, r in pairs if assign.swapped(r)]
    assert swapped, [r.reason for _, r in pairs]
    # the faces are packed: every swapped face's surroundings meet a neighbour's patch, so all were re-checked
    assert assign.touched(faces.boxes, [p for p, _ in pairs], swapped) == swapped
    out = image
    for patch, _ in pairs:
        out = patch.apply(out)
    probe = faces.replace(embeddings={}, landmarks68=None, age=None, gender=None)
    after = pipeline.analyze(out, probe, attributes=False, recognizers=VERIFIERS)
    for n in VERIFIERS:
        rec = pipeline.recognizers[n]
        for i in swapped:
            assert float(rec.distance(after.embeddings[n][i], faces.embeddings[n][i])) > rec.threshold, (n, i)
            for j in swapped:  # no two fakes of the finished photo match each other
                if j != i:
                    d = float(rec.distance(after.embeddings[n][i], after.embeddings[n][j]))
                    assert d > rec.threshold, (n, i, j, d)


def test_a_face_made_again_never_gets_an_identity_the_finished_photo_refused(
    pipeline: FacePipeline, pool: TargetPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the audit (stubbed) refuses face 0's fake twice in a row (a photo of two faces gets two remakes at most):
    # each remake must avoid every identity refused so far, not only the last one (a remade face had flipped
    # between two refused targets)
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS)
    image, faces = _two_people(pipeline, pool)
    audits = {"n": 0}

    def refusing_audit(*args: object, **kwargs: object) -> tuple[dict[int, str], list[FaceReport]]:
        audits["n"] += 1
        pairs = args[4]
        assert isinstance(pairs, list)
        bad = {0: "dlib matches another face of the finished photo"} if audits["n"] <= 2 else {}
        return bad, [r for _, r in pairs]

    made: list[tuple[frozenset[str], str | None]] = []
    real_fake_face = gen.fake_face

    def recording_fake_face(*args, **kwargs):  # type: ignore[no-untyped-def]
        patch, report = real_fake_face(*args, **kwargs)
        if args[2] == 0:
            made.append((kwargs["avoid"].targets, report.identity))
        return patch, report

    monkeypatch.setattr(assign, "audit", refusing_audit)
    monkeypatch.setattr(gen, "fake_face", recording_fake_face)
    # the audit's remakes alone: face 1, left without a fake, would otherwise be made first (`_exchanged`)
    monkeypatch.setattr(gen, "_exchanged", lambda *args, **kwargs: None)
    gen.patches(image, faces, seed=7)
    assert len(made) == 3  # the first fake and two remakes
    refused: set[str] = set()
    for targets, identity in made:
        assert refused <= set(targets), (refused, targets)
        if identity:
            assert identity not in refused
            refused.add(identity)
