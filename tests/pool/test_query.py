"""Property tests of the target query (paper Eq. 1) on synthetic pools."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfmc.errors import InvalidInputError
from mfmc.pool import Compatibility, Probe, TargetPool, target_set
from mfmc.pool.cues import age_group
from mfmc.pool.query import derive_rng, rank
from mfmc.pool.synthetic import random_index

POOL = TargetPool(random_index(600, dims={"dlib": 16, "facenet": 8}, seed=3, aligned=True), backend="exact")


def reference_set(d: np.ndarray) -> set[int]:
    """Eq. 1 written out: d_i > max_j d_j - sigma_j(d), plus the maxima."""
    top = max(d)
    sigma = float(np.sqrt(np.mean((d - np.mean(d)) ** 2)))
    return {i for i, v in enumerate(d) if v > top - sigma or v == top}


def probe(seed: int, *, gender: str | None = "female", age: float | None = 30.0) -> Probe:
    rng = np.random.default_rng(seed)
    return Probe({"dlib": rng.standard_normal(16).astype(np.float32),
                  "facenet": rng.standard_normal(8).astype(np.float32)},
                 age=age, gender=gender, pose=(float(rng.normal(0, 15)), 0.0, 0.0), mouth_open=0.02, eye_ratio=0.3,
                 aligned=rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))


distances = st.lists(st.floats(0, 4, allow_nan=False, width=32), min_size=1, max_size=60).map(np.array)


@settings(max_examples=150, deadline=None)
@given(d=distances, seed=st.integers(0, 2**32), k=st.integers(1, 70))
def test_random_pick_is_in_eq1_set_and_ranking_is_a_permutation_prefix(d: np.ndarray, seed: int, k: int) -> None:
    order = rank(d, "random", derive_rng(seed, b"x"), k)
    allowed = reference_set(d)
    assert int(order[0]) in allowed
    assert len(set(order.tolist())) == len(order) == min(k, d.size)
    # T(S) comes first, in some order, then the rest by decreasing distance
    n_in = min(len(allowed), len(order))
    assert set(order[:n_in].tolist()) <= allowed
    rest = d[order[n_in:]]
    assert np.all(np.diff(rest) <= 0)
    assert set(np.flatnonzero(target_set(d)).tolist()) == allowed


@settings(max_examples=100, deadline=None)
@given(d=distances, k=st.integers(1, 70))
def test_closest_and_furthest_match_a_full_sort(d: np.ndarray, k: int) -> None:
    rng = derive_rng(0, b"")
    close = rank(d, "closest", rng, k)
    far = rank(d, "furthest", rng, k)
    np.testing.assert_array_equal(d[close], np.sort(d)[:k])
    np.testing.assert_array_equal(d[far], np.sort(d)[::-1][:k])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), strategy=st.sampled_from(["closest", "furthest", "random"]),
       metric=st.sampled_from(["l2", "cosine"]), gender=st.sampled_from(["female", "male"]),
       age=st.floats(1, 90), k=st.integers(1, 40))
def test_group_restriction_and_no_duplicates(seed: int, strategy: str, metric: str, gender: str, age: float,
                                             k: int) -> None:
    p = probe(seed, gender=gender, age=age)
    cands = POOL.query(p, strategy=strategy, metric=metric, recognizer="dlib", k=k, seed=seed)
    ids = [c.id for c in cands]
    assert len(ids) == len(set(ids))
    assert [c.rank for c in cands] == list(range(len(cands)))
    for c in cands:
        e = POOL.entry(c.id)
        assert e.gender == gender
        assert age_group(e.age) == age_group(age)
        assert abs(e.pose[0] - p.pose[0]) <= 25.0  # compatibility filter is on by default
        assert not e.mouth_is_open and not e.eyes_closed


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), qseed=st.integers(0, 10_000))
def test_pool_random_pick_lies_in_eq1_set_of_the_filtered_candidates(seed: int, qseed: int) -> None:
    p = probe(seed)
    everything = POOL.query(p, strategy="closest", metric="l2", recognizer="dlib", k=None)
    by_id = {c.id: c.distance for c in everything}
    d = np.array(list(by_id.values()))
    allowed = {list(by_id)[i] for i in reference_set(d)}
    picks = POOL.query(p, strategy="random", metric="l2", recognizer="dlib", k=5, seed=qseed)
    assert picks[0].id in allowed and picks[0].in_target_set
    assert len(everything) == len(by_id)


def test_determinism_and_variation_across_photos() -> None:
    p = probe(11)
    a = POOL.query(p, k=6, seed=4, recognizer="dlib")
    b = POOL.query(p, k=6, seed=4, recognizer="dlib")
    assert [c.id for c in a] == [c.id for c in b]
    firsts = {POOL.query(p, k=1, seed=4, key=f"photo-{i}")[0].id for i in range(30)}
    assert len(firsts) > 1  # another photo key draws another target
    seeds = {POOL.query(p, k=1, seed=s)[0].id for s in range(30)}
    assert len(seeds) > 1


def test_a_pool_excluding_ids_queries_as_if_they_were_passed_as_exclude() -> None:
    """`TargetPool.excluding` (the evaluation's pool without the evaluated person's targets): its queries equal
    the pool's with those ids in `exclude`, added to the caller's; the pool itself still returns them."""
    p = probe(7)
    first = [c.id for c in POOL.query(p, k=8, seed=2, recognizer="dlib", strategy="closest")]
    view = POOL.excluding(set(first[:3]))
    assert len(view) == len(POOL) and view.ids == POOL.ids
    for kwargs in ({}, {"exclude": first[3:4]}):
        got = [c.id for c in view.query(p, k=8, seed=2, recognizer="dlib", strategy="closest", **kwargs)]
        want = [c.id for c in POOL.query(p, k=8, seed=2, recognizer="dlib", strategy="closest",
                                         exclude=[*kwargs.get("exclude", []), *first[:3]])]
        assert got == want and not set(got) & set(first[:3])
    assert [c.id for c in view.excluding(first[3:4]).query(p, k=8, seed=2, recognizer="dlib",
                                                            strategy="closest")] == got
    assert [c.id for c in POOL.query(p, k=8, seed=2, recognizer="dlib", strategy="closest")] == first


def test_filters_can_be_disabled_and_all_faces_ranked() -> None:
    p = probe(5)
    all_c = POOL.query(p, same_group=False, compatible=False, k=None, recognizer="facenet", metric="cosine")
    assert len(all_c) == len(POOL)
    grouped = POOL.query(p, same_group=True, compatible=False, k=None)
    assert 0 < len(grouped) < len(POOL)


def test_compatibility_rules() -> None:
    rule = Compatibility(max_yaw=10, max_pitch=None)
    pose = np.array([[0, 0, 0], [15, 0, 0], [np.nan, 0, 0]], np.float32)
    mouth = np.array([0.3, 0.01, np.nan], np.float32)
    eyes = np.array([0.1, 0.3, 0.3], np.float32)
    np.testing.assert_array_equal(rule.mask(np.array([0, 0, 0]), 0.3, 0.3, pose, mouth, eyes), [False, False, True])
    np.testing.assert_array_equal(rule.mask(None, None, None, pose, mouth, eyes), [True, True, True])
    np.testing.assert_array_equal(rule.mask(np.array([5, 0, 0]), 0.01, 0.05, pose, mouth, eyes),
                                  [False, True, True])


def test_quality_and_resolution_floors() -> None:
    rule = Compatibility(max_yaw=None, max_pitch=None, match_mouth=False, avoid_closed_eyes=False)
    pose = np.zeros((4, 3), np.float32)
    none = np.full(4, np.nan, np.float32)
    sizes = np.array([60, 110, 200, np.nan], np.float32)
    quality = np.array([0.9, 0.3, 0.9, 0.9], np.float32)

    def keep(source_size: float | None, r: Compatibility = rule) -> list[bool]:
        return r.mask(None, None, None, pose, none, none, source_size=source_size, sizes=sizes,
                      quality=quality).tolist()

    assert keep(None) == [True, False, True, True]  # quality floor 0.5; unknown size never excludes
    assert keep(70.0) == [True, False, True, True]  # 60 >= 0.8 * 70
    assert keep(100.0) == [False, False, True, True]  # 60 < 80
    assert keep(1000.0) == [False, False, True, True]  # the source's size is capped at 128 px: 0.8 * 128
    off = Compatibility(max_yaw=None, max_pitch=None, min_quality=None, min_resolution=None)
    assert keep(1000.0, off) == [True, True, True, True]


@pytest.mark.parametrize("metric", ["ssim", "rmse", "psnr"])
def test_image_metrics_rank_the_identical_crop_first_for_closest(metric: str) -> None:
    target = POOL.index.attributes["aligned"][17]
    p = Probe({}, aligned=np.array(target))
    best = POOL.query(p, strategy="closest", metric=metric, same_group=False, compatible=False, k=3)
    assert best[0].id == POOL.ids[17]
    far = POOL.query(p, strategy="furthest", metric=metric, same_group=False, compatible=False, k=3)
    assert far[0].distance >= far[1].distance >= far[2].distance > best[0].distance


def test_errors_and_empty_results() -> None:
    p = probe(1)
    with pytest.raises(InvalidInputError, match="unknown query strategy `nearest`"):
        POOL.query(p, strategy="nearest")
    with pytest.raises(InvalidInputError, match="no embeddings of recognizer `arcface`"):
        POOL.query(p, recognizer="arcface")
    with pytest.raises(InvalidInputError, match="needs the source photo"):
        POOL.query(Probe({"dlib": np.zeros(16, np.float32)}), metric="ssim")
    assert POOL.query(p, k=0) == []
    impossible = Probe(p.embeddings, age=30, gender="female", pose=(89.0, 0.0, 0.0))
    assert POOL.query(impossible, compatibility=Compatibility(max_yaw=0.001)) == []
    empty = TargetPool(random_index(0, dims={"dlib": 16}))
    assert empty.query(Probe({"dlib": np.ones(16, np.float32)})) == []


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), gender=st.sampled_from(["female", "male"]), age=st.floats(1, 90))
def test_gender_only_restriction_keeps_gender_and_widens_age(seed: int, gender: str, age: float) -> None:
    p = probe(seed, gender=gender, age=age)
    strict = POOL.query(p, strategy="random", recognizer="dlib", k=None, seed=seed)
    loose = POOL.query(p, strategy="random", recognizer="dlib", k=None, seed=seed, same_group="gender")
    assert all(POOL.entry(c.id).gender == gender for c in loose)
    assert {c.id for c in strict} <= {c.id for c in loose}
    assert len({age_group(POOL.entry(c.id).age) for c in loose}) >= len({age_group(POOL.entry(c.id).age)
                                                                          for c in strict})


def test_unknown_same_group_value_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="same_group"):
        POOL.query(probe(0), same_group="age")
