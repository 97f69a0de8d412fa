"""Fakes on real photos (issue 11): unique identities within a photo, no fake matching another face, the gender
never widened, the source's look kept, no facial hair added, fallbacks logged with their exception.

Real photos come from installed packages only (nothing is committed): scikit-image's `astronaut` (dev extra,
public domain; a smiling woman), matplotlib's `grace_hopper.jpg` (a runtime dependency, public domain) and
scikit-image's `camera` (a man turned ~65°, beyond the pose target). A bearded source needs a photo no installed
package ships; the beard test is checked with the built-in pool's bearded man as the *target* instead.
"""

from __future__ import annotations

import logging
import os

import cv2
import matplotlib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmc.pool import TargetPool
from mfmc.swap import FakeGenerator
from mfmc.swap import landmarks as lmk
from mfmc.swap.recombine import Target
from mfmc.swap.split import SplitSwapper, beard_gap
from mfmc.swap.verify import Avoid
from mfmc.swap.warp import WarpSwapper
from mfmc.vision import FacePipeline, Faces, load_image
from tests.swap.conftest import VERIFIERS, head_crop

pytestmark = pytest.mark.slow
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the astronaut photo")


@pytest.fixture(scope="module")
def real_group(pipeline: FacePipeline) -> tuple[np.ndarray, Faces]:
    """Two real people side by side (astronaut, Grace Hopper), each twice at different sizes and mirrored."""
    astro = np.ascontiguousarray(skimage_data.astronaut())
    hopper = load_image(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    tiles = []
    for img in (astro, hopper):
        tiles.append(head_crop(img, pipeline.detect(img).boxes[0], (300, 360), up=1.2, down=1.4, side=1.1))
    row = np.hstack(tiles + [t[:, ::-1] for t in tiles])
    image = np.ascontiguousarray(row)
    faces = pipeline.analyze(image)
    assert len(faces) == 4
    return image, faces


@pytest.fixture(scope="module")
def real_result(pipeline: FacePipeline, pool: TargetPool, real_group: tuple[np.ndarray, Faces]):
    image, faces = real_group
    # 12 candidates a face: the test pool is six people, and with 6 the astronaut's one passing fake (an
    # escalation whose gender reads at the confidence edge) is not a property of the photo rules checked here
    gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, max_attempts=12)
    pairs = gen.patches(image, faces, seed=3)
    out = image
    for patch, _ in pairs:
        out = patch.apply(out)
    return out, [r for _, r in pairs]


def test_no_two_fakes_share_an_identity_nor_match_any_other_face(
    pipeline: FacePipeline, real_group: tuple[np.ndarray, Faces], real_result
) -> None:
    _, faces = real_group
    out, reports = real_result
    swapped = [r for r in reports if r.fallback in ("none", "alpha")]
    # the astronaut gets a verified swap; Grace Hopper (classified male: the pool's one man does not pass) and
    # the mirrored astronaut (her first fake and the four women's identities taken or too close) are pixelated
    assert len(swapped) >= 1, [r.to_dict() for r in reports]
    assert all(r.verified for r in reports)
    identities = [r.identity for r in swapped]
    assert len(set(identities)) == len(identities), identities
    after = pipeline.analyze(out, faces.replace(embeddings={}, landmarks68=None), recognizers=VERIFIERS)
    for name in VERIFIERS:
        rec = pipeline.recognizers[name]
        bar = rec.threshold
        fakes = after.embeddings[name]
        for r in swapped:
            i = r.index
            for j in range(len(faces)):
                if j == i:
                    continue
                # the fake vs every other real face, and vs every other fake of the output
                assert float(rec.distance(fakes[i], faces.embeddings[name][j])) > bar, (name, i, j)
                if any(s.index == j for s in swapped):
                    assert float(rec.distance(fakes[i], fakes[j])) > bar, (name, "fake pair", i, j)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), gender=st.sampled_from(["female", "male"]))
def test_targets_are_never_of_the_other_gender(
    pipeline: FacePipeline, pool: TargetPool, real_group: tuple[np.ndarray, Faces], seed: int, gender: str
) -> None:
    _, faces = real_group
    face = faces[0].replace(gender=np.array([gender]))
    targets = FakeGenerator(pipeline, pool).ranker.targets(face, seed, Avoid())
    assert targets
    for t in targets:
        for part in t.parts:
            assert pool.entry(part).gender == gender, (t.id, part)


def test_avoid_excludes_identities_and_embeddings(pipeline: FacePipeline, real_group: tuple[np.ndarray, Faces]) -> None:
    image, faces = real_group
    # the built-in pool: the 20-face test pool's only female target that clears the recognizers here reads female at
    # 0.72 once its detail is scaled to the astronaut's soft skin (split.detail_gain), below the gender check's 0.8
    gen = FakeGenerator(pipeline, TargetPool.default(), recognizers=VERIFIERS)
    first_patch, first = gen.fake_face(image, faces, 0, seed=1)
    assert first.identity is not None, first.to_dict()
    avoid = Avoid(first.fake_embeddings, {first.identity})
    second_patch, second = gen.fake_face(image, faces, 0, seed=1, avoid=avoid)
    assert second.identity != first.identity
    if second.fallback in ("none", "alpha"):
        face = faces[0].replace(embeddings={}, landmarks68=None)
        a = pipeline.analyze(first_patch.apply(image), face, recognizers=VERIFIERS)
        b = pipeline.analyze(second_patch.apply(image), face, recognizers=VERIFIERS)
        for name in VERIFIERS:
            rec = pipeline.recognizers[name]
            assert float(rec.distance(a.embeddings[name][0], b.embeddings[name][0])) > rec.threshold


def test_split_swap_keeps_the_sources_tone_and_lighting(pipeline: FacePipeline, pool: TargetPool) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    face = pipeline.analyze(astro)
    src = face.landmarks68[0]
    tid = next(i for i in pool.ids if pool.entry(i).gender == "female")
    timg, tface = pool.target(tid)
    result = SplitSwapper().swap(astro, src, timg, tface.landmarks68[0], alpha=0.5)
    patch = result.patch
    out = patch.apply(astro)
    x1, y1, x2, y2 = patch.box
    m = patch.mask

    def lab_mean(img: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(img[y1:y2, x1:x2].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        return lab[m].mean(0)

    src_lab, out_lab = lab_mean(astro), lab_mean(out)
    assert np.abs(src_lab - out_lab).max() < 3.0, (src_lab, out_lab)
    changed = np.any(out != astro, axis=2)
    assert not (changed & ~patch.full_mask()).any()


@pytest.mark.parametrize("swapper", [SplitSwapper(), WarpSwapper()], ids=["split", "warp"])
def test_a_bearded_target_adds_no_facial_hair(pipeline: FacePipeline, swapper: SplitSwapper | WarpSwapper) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    face = pipeline.analyze(astro)
    src = np.asarray(face.landmarks68[0], np.float64)
    default = TargetPool.default()
    gaps = []
    for tid in default.ids:
        e = default.entry(tid)
        if e.gender != "male":
            continue
        img = default.crop_image(tid)
        lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        gaps.append((beard_gap(lab, np.asarray(e.landmarks68, np.float64), (0, 0), np.ones(img.shape[:2], bool)), tid))
    gap, tid = max(gaps)
    assert gap > 22, "the built-in pool's man has a beard"
    timg, tface = default.target(tid)
    result = swapper.swap(astro, src, timg, tface.landmarks68[0], alpha=0.5)
    assert any("facial hair" in n for n in result.notes)
    out = result.patch.apply(astro)
    x1, y1, x2, y2 = result.patch.box
    inner = result.patch.mask

    def gap_of(img: np.ndarray) -> float:
        lab = cv2.cvtColor(img[y1:y2, x1:x2].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        return beard_gap(lab, src, (x1, y1), inner)

    assert gap_of(out) - gap_of(astro) < 6.0


def test_a_failing_swapper_is_logged_counted_and_the_face_still_protected(
    pipeline: FacePipeline, pool: TargetPool, real_group: tuple[np.ndarray, Faces], caplog: pytest.LogCaptureFixture
) -> None:
    image, faces = real_group

    class Broken:
        name = "broken"

        def swap(self, *args: object, **kwargs: object):
            raise ValueError("odd pixels")

    gen = FakeGenerator(pipeline, pool, swapper=Broken(), max_attempts=2, alpha_retries=0)
    with caplog.at_level(logging.WARNING, logger="mfmc.swap.generate"):
        patch, report = gen.fake_face(image, faces, 1, seed=0)
    assert report.fallback in ("obfuscate", "fill") and report.verified
    assert report.errors and all("ValueError: odd pixels" in e for e in report.errors)
    assert "odd pixels" in caplog.text
    assert patch.area > 0


def test_a_bug_in_the_swapper_is_not_swallowed(
    pipeline: FacePipeline, pool: TargetPool, real_group: tuple[np.ndarray, Faces]
) -> None:
    image, faces = real_group

    class Buggy:
        name = "buggy"

        def swap(self, *args: object, **kwargs: object):
            raise TypeError("wrong call")

    gen = FakeGenerator(pipeline, pool, swapper=Buggy(), max_attempts=1)
    with pytest.raises(TypeError):
        gen.fake_face(image, faces, 1, seed=0)


def test_recombined_targets_come_from_different_people(pool: TargetPool) -> None:
    from mfmc.swap.recombine import Recombiner

    rec = Recombiner(pool)
    donors = [i for i in pool.ids if pool.entry(i).gender == "female"]
    recipes = rec.recipes(donors, 6, seed=0, key=b"k")
    assert len(recipes) == 6 and len({r.identity for r in recipes}) == 6
    for r in recipes:
        assert pool.identity(r.parts[0]) != pool.identity(r.parts[1])  # base and eyes from two people
        img, lm = rec.image(r)
        assert img.dtype == np.uint8 and lm.shape == (68, 2)
        assert lmk.interocular(lm) > 20
    assert rec.recipes(donors, 6, seed=0, key=b"k") == recipes
    assert Target.plain("a", "P1").is_plain


def test_photo_avoid_switches_and_identities_only(
    pipeline: FacePipeline, pool: TargetPool, real_group: tuple[np.ndarray, Faces]
) -> None:
    """The rule switches `mfmc.eval.photos --relax` measures with: `floor` (default) avoids every other real face,
    `apart` only those a recognizer tells apart from the original (at the plain bar), `off` none; an `Avoid` of
    identities only is kept (it has no embedding rows, so `len` is 0)."""
    _, faces = real_group
    base = Avoid(targets={"P001"})
    assert base and len(base) == 0
    for mode in ("floor", "apart", "off"):
        gen = FakeGenerator(pipeline, pool, recognizers=VERIFIERS, real_faces=mode)
        avoid = gen.photo_avoid(faces, 0, base=base)
        assert avoid.targets == {"P001"}
        for name in VERIFIERS:
            rec, bar = pipeline.recognizers[name], gen.verifier.bar(name)
            real = np.asarray(rec.distance(faces.embeddings[name][0], faces.embeddings[name][1:]), np.float64)
            rows = avoid.rows(name)
            if mode == "floor":
                assert len(rows) == 3
                assert np.allclose(avoid.limits(name, bar), np.minimum(bar, real))
            elif mode == "apart":
                assert len(rows) == int((real > bar).sum())
                assert np.all(avoid.limits(name, bar) == bar)
            else:
                assert len(rows) == 0
    with pytest.raises(ValueError, match="real_faces"):
        FakeGenerator(pipeline, pool, real_faces="never")
