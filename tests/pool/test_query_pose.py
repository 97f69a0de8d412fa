"""The query's yaw order for turned sources (`Compatibility.turned_yaw`, `yaw_band`; off by default): on the
built-in pool with real synthetic photos, a turned source gets its candidates closest-yaw band first; a frontal one
the plain order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from mfmc.pool import Compatibility, TargetPool
from mfmc.pool.query import banded

openpeople = pytest.importorskip("openpeople")


def test_banded_regroups_stably_and_cuts() -> None:
    order = np.array([3, 0, 2, 1, 4])
    bands = np.array([1.0, 0.0, np.inf, 0.0, 1.0])
    assert banded(order, bands, None).tolist() == [3, 1, 0, 4, 2]
    assert banded(order, bands, 2).tolist() == [3, 1]
    assert banded(order, None, 3).tolist() == [3, 0, 2]


def test_yaw_bands_only_for_turned_sources() -> None:
    rule = Compatibility(turned_yaw=25.0)
    assert Compatibility().turned_yaw is None  # off by default
    pose = np.array([[0.0, 0, 0], [-26.0, 0, 0], [np.nan, 0, 0], [-44.0, 0, 0]])
    assert rule.yaw_bands(np.array([-10.0, 0, 0]), pose) is None
    assert rule.yaw_bands(np.array([np.nan, 0, 0]), pose) is None
    assert rule.yaw_bands(np.array([-41.0, 0, 0]), pose).tolist() == [4.0, 1.0, np.inf, 0.0]
    assert dataclasses.replace(rule, turned_yaw=None).yaw_bands(np.array([-41.0, 0, 0]), pose) is None


@pytest.fixture(scope="module")
def pipe():
    from mfmc.vision import FacePipeline

    return FacePipeline.default()


def _face(pipe, person: str, asset: str):
    from mfmc.vision import load_image

    image = load_image(Path(openpeople.__file__).parent / "data" / "curated" / person / "assets" / f"{asset}.jpg")
    faces = pipe.analyze(image)
    return faces[int(np.argmax(faces.widths))]


def test_turned_source_gets_the_closest_yaws_first(pipe) -> None:
    pool = TargetPool.default()
    face = _face(pipe, "P004", "amateur_posture")  # turned about 27 degrees
    yaw = float(face.pose[0][0])
    assert abs(yaw) >= 25.0
    every = Compatibility(max_yaw=None, max_pitch=None, match_mouth=False, avoid_closed_eyes=False,
                          min_quality=None, min_resolution=None, turned_yaw=25.0)
    found = pool.query(face, same_group=False, compatibility=every, k=None, seed=3)
    assert len(found) == len(pool)
    diff = np.array([abs(pool.entry(c.id).pose[0] - yaw) for c in found])
    bands = np.floor(diff / every.yaw_band)
    assert np.all(np.diff(bands) >= 0)
    assert diff[0] < 10.0 < diff[-1]
    # the first k are the first k of the whole banded order; without the yaw order, the plain random draw
    assert [c.id for c in pool.query(face, same_group=False, compatibility=every, k=5, seed=3)] == [
        c.id for c in found[:5]]
    plain = pool.query(face, same_group=False, compatibility=dataclasses.replace(every, turned_yaw=None), k=None,
                       seed=3)
    assert sorted(c.id for c in plain) == sorted(c.id for c in found)
    assert [c.id for c in plain] != [c.id for c in found]


def test_frontal_source_keeps_the_strategy_order(pipe) -> None:
    pool = TargetPool.default()
    face = _face(pipe, "P001", "studio_portrait")
    assert abs(float(face.pose[0][0])) < 25.0
    every = Compatibility(max_yaw=None, max_pitch=None, match_mouth=False, avoid_closed_eyes=False,
                          min_quality=None, min_resolution=None, turned_yaw=25.0)
    a = pool.query(face, same_group=False, compatibility=every, k=12, seed=5)
    b = pool.query(face, same_group=False, compatibility=dataclasses.replace(every, turned_yaw=None), k=12, seed=5)
    assert [c.id for c in a] == [c.id for c in b]
