"""Identity supply (`mfmc.swap.recombine`) on the built-in pool: recipes are deterministic, every donor of a
recipe has one recorded gender, and the shape-model supply yields more identities that the recognizers tell
apart than the part-only recipes it replaced (`LEGACY`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mfmc.pool import TargetPool
from mfmc.swap.recombine import LEGACY, Recombiner, Supply, identity_supply
from mfmc.vision import FacePipeline


@pytest.fixture(scope="module")
def pool() -> TargetPool:
    return TargetPool.default()


def _ids(pool: TargetPool, gender: str) -> list[str]:
    return [i for i in pool.ids if pool.entry(i).gender == gender]


def test_same_donors_seed_and_key_give_the_same_recipes_and_images(pool: TargetPool) -> None:
    donors = _ids(pool, "female")
    a, b = Recombiner(pool), Recombiner(pool)
    first = a.recipes(donors, 5, seed=3, key=b"photo:0")
    assert len(first) == 5 and len({t.identity for t in first}) == 5
    assert b.recipes(donors, 5, seed=3, key=b"photo:0") == first
    assert all(len(t.parts) == 5 and len(t.shape) == Supply().components for t in first)
    img_a, lm_a = a.image(first[0])
    img_b, lm_b = b.image(first[0])
    assert np.array_equal(img_a, img_b) and np.allclose(lm_a, lm_b)
    assert img_a.dtype == np.uint8 and lm_a.shape == (68, 2)
    # another key or seed, other recipes; excluded identities are not drawn again
    assert {t.identity for t in a.recipes(donors, 5, seed=3, key=b"photo:1")} != {t.identity for t in first}
    assert {t.identity for t in a.recipes(donors, 5, seed=4, key=b"photo:0")} != {t.identity for t in first}
    again = a.recipes(donors, 5, seed=3, key=b"photo:0", exclude=[first[0].identity])
    assert first[0].identity not in {t.identity for t in again}


def test_legacy_recipes_are_the_part_only_recipes(pool: TargetPool) -> None:
    donors = _ids(pool, "female")
    old = Recombiner(pool, supply=LEGACY).recipes(donors, 4, seed=0, key=b"k")
    assert all(len(t.parts) == 4 and t.shape == () and len(t.scales) == 6 for t in old)
    new = Recombiner(pool).recipes(donors, 4, seed=0, key=b"k")
    assert {t.identity for t in old}.isdisjoint(t.identity for t in new)


def test_every_donor_has_the_first_donors_gender(pool: TargetPool, caplog: pytest.LogCaptureFixture) -> None:
    women, men = _ids(pool, "female"), _ids(pool, "male")
    rec = Recombiner(pool)
    for donors, gender in ((women + men, "female"), (men + women, "male")):
        with caplog.at_level("WARNING", logger="mfmc.swap.recombine"):
            recipes = rec.recipes(donors, 12, seed=1, key=gender.encode())
        assert "another gender" in caplog.text
        caplog.clear()
        assert len(recipes) == 12
        for t in recipes:
            assert {pool.entry(p).gender for p in t.parts} == {gender}
            assert pool.identity(t.parts[0]) != pool.identity(t.parts[1])  # base and eyes: two people
            # eyes and brows come from faces of a person, not from the pool's morphs / composites
            assert all("derived" not in pool.entry(p).source for p in (t.parts[1], t.parts[4]))


def test_mouth_and_nose_donors_are_as_bearded_as_the_base(pool: TargetPool) -> None:
    """A bearded mouth donor on a shaven base pasted a moustache into a shaven photo face (obama.jpg, seed 7)."""
    men = _ids(pool, "male")
    rec = Recombiner(pool)
    beards = {pool.identity(i): rec.bearded(i) for i in men}
    assert beards["P005"] and not beards["P007"]  # the bearded man and the shaven one
    recipes = rec.recipes(men, 16, seed=7, key=b"men")
    assert {rec.bearded(t.parts[0]) for t in recipes} == {True, False}  # both kinds of base drawn
    for t in recipes:
        assert rec.bearded(t.parts[2]) == rec.bearded(t.parts[0]) == rec.bearded(t.parts[3])
    # the legacy recipes did not look: some paired a shaven base with a bearded mouth
    old = Recombiner(pool, supply=LEGACY).recipes(men, 16, seed=7, key=b"men")
    assert any(rec.bearded(t.parts[3]) != rec.bearded(t.parts[0]) for t in old)


def test_base_and_eyes_are_two_people_when_the_eye_donor_is_the_only_face_of_a_person(pool: TargetPool) -> None:
    """Eyes come from faces of a person; with one such person and a morph allowed, the morph is the base."""
    one = [i for i in _ids(pool, "female") if pool.identity(i) == "P001"]
    morph = next(i for i in pool.ids if pool.identity(i) == "P003+P004")
    for t in Recombiner(pool).recipes([*one, morph], 6, seed=7, key=b"k"):
        assert pool.identity(t.parts[1]) == "P001" and pool.identity(t.parts[0]) == "P003+P004"


def test_parts_are_posed_like_the_base(pool: TargetPool) -> None:
    """Of a donor person's sharp faces, the recipe takes the one whose 68 points fit the base's best."""
    from mfmc.swap.recombine import _residual

    women = _ids(pool, "female")
    rec = Recombiner(pool)
    for t in rec.recipes(women, 6, seed=2, key=b"pose"):
        ref = np.asarray(pool.entry(t.parts[0]).landmarks68, np.float64)
        for pid in t.parts[1:]:
            person = pool.identity(pid)
            if person == pool.identity(t.parts[0]):
                continue
            own = [i for i in women if pool.identity(i) == person and pool.entry(i).quality >= 0.9]
            assert pool.entry(pid).quality >= 0.9
            fit = _residual(np.asarray(pool.entry(pid).landmarks68, np.float64), ref)
            assert fit <= min(_residual(np.asarray(pool.entry(i).landmarks68, np.float64), ref) for i in own) + 1e-9


def test_shape_moves_keep_the_eyes_and_mouth_and_stay_symmetric(pool: TargetPool) -> None:
    rec = Recombiner(pool)
    model = rec.shapes
    assert model.k == Supply().components and np.all(np.diff(model.sd) <= 0) and model.sd[0] > 0
    from mfmc.pool.composite import MIRROR68

    mean = model.mean
    for coeffs in ([3.0, 0, 0, 0, 0, 0], [0, -2.0, 1.0, 0, 0, 0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        d = model.offset(coeffs, mean)
        assert np.abs(d).max() > 0.01  # it moves (the mean shape has unit inter-ocular distance)
        # symmetric: the mirror point moves the mirror way
        assert np.allclose(d[:, 0], -d[MIRROR68, 0], atol=1e-6) and np.allclose(d[:, 1], d[MIRROR68, 1], atol=1e-6)
        for g in (range(36, 42), range(42, 48), range(48, 68)):  # translation + uniform scale only
            p, q = mean[list(g)], mean[list(g)] + d[list(g)]
            pc, qc = p - p.mean(0), q - q.mean(0)
            s = np.linalg.norm(qc) / np.linalg.norm(pc)
            assert np.allclose(qc, s * pc, atol=1e-6)


@pytest.mark.slow
def test_new_supply_yields_more_distinct_identities_than_legacy(pool: TargetPool) -> None:
    """Greedy count on both recognizers (dlib and FaceNet at their thresholds) of the pool's people plus 24
    recombinations per gender: measured 10 (7 women, 3 men; shape-model supply) vs 6 (5 women, 1 man; legacy);
    14 vs 9 at n = 300 (`benchmarks/bench_pool.py --identities 300`). About 50 s on two shared cores (every
    candidate is rendered, detected and embedded)."""
    pipeline = FacePipeline.embedded()
    names = ["dlib", "facenet"]
    old = identity_supply(pipeline, pool, 24, recognizers=names, supply=LEGACY)
    new = identity_supply(pipeline, pool, 24, recognizers=names)
    assert old.plain == new.plain  # the same pool people first
    assert new.total > old.total, (old.distinct, new.distinct)
    assert new.distinct["male"] >= old.distinct["male"]
    assert dataclasses.asdict(new)["candidates"] == old.candidates
