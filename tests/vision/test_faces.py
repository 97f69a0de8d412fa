"""The `Faces` type: validation, immutability, indexing, records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfmc.vision import Faces


def make(n: int, *, full: bool = False, seed: int = 0) -> Faces:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 500, (n, 2))
    wh = rng.uniform(10, 100, (n, 2))
    extra = {}
    if full:
        extra = {
            "landmarks68": rng.uniform(0, 600, (n, 68, 2)),
            "pose": rng.uniform(-30, 30, (n, 3)),
            "age": rng.uniform(1, 80, n),
            "gender": rng.choice(["female", "male"], n),
            "embeddings": {"dlib": rng.normal(size=(n, 128)), "facenet": rng.normal(size=(n, 512))},
        }
    return Faces(
        boxes=np.concatenate([xy, xy + wh], axis=1),
        scores=rng.uniform(0.5, 1, n),
        landmarks5=rng.uniform(0, 600, (n, 5, 2)),
        **extra,
    )


def test_arrays_are_canonical_and_read_only() -> None:
    faces = make(3, full=True)
    assert faces.boxes.dtype == np.float32 and faces.boxes.shape == (3, 4)
    assert faces.landmarks5.shape == (3, 5, 2) and faces.embeddings["dlib"].dtype == np.float32
    with pytest.raises(ValueError):
        faces.boxes[0, 0] = 1.0
    with pytest.raises(AttributeError):
        faces.scores = np.zeros(3)  # type: ignore[misc]
    with pytest.raises(TypeError):
        faces.embeddings["x"] = np.zeros((3, 2))  # type: ignore[index]


def test_input_arrays_are_copied() -> None:
    boxes = np.array([[0, 0, 10, 10]], dtype=np.float32)
    faces = Faces(boxes=boxes, scores=[0.9], landmarks5=np.zeros((1, 5, 2)))
    boxes[0, 0] = 5
    assert faces.boxes[0, 0] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scores": np.zeros(2)}, "`scores` has 2 rows"),
        ({"landmarks5": np.zeros((3, 4, 2))}, "landmarks5"),
        ({"landmarks68": np.zeros((3, 5, 2))}, "landmarks68"),
        ({"pose": np.zeros((3, 2))}, "pose"),
        ({"age": np.zeros(4)}, "`age` has 4 rows"),
        ({"gender": ["female", "male", "other"]}, "gender"),
        ({"embeddings": {"dlib": np.zeros((2, 128))}}, "embeddings['dlib']"),
        ({"embeddings": {"dlib": np.zeros(128)}}, "embeddings['dlib']"),
        ({"boxes": np.array([[10, 10, 5, 20]] * 3)}, "x2 >= x1"),
        ({"boxes": np.array([[0, 0, np.nan, 20]] * 3)}, "finite"),
    ],
)
def test_invalid_fields_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make(3, full=True).replace(**change)


def test_indexing_by_int_slice_mask_and_array() -> None:
    faces = make(5, full=True)
    one = faces[2]
    assert len(one) == 1 and np.array_equal(one.boxes[0], faces.boxes[2])
    assert np.array_equal(faces[-1].boxes, faces.boxes[4:5])
    assert len(faces[1:4]) == 3
    mask = np.array([True, False, True, False, True])
    picked = faces[mask]
    assert np.array_equal(picked.embeddings["facenet"], faces.embeddings["facenet"][mask])
    assert list(picked.gender) == list(faces.gender[mask])
    assert np.array_equal(faces[[4, 0]].age, faces.age[[4, 0]])
    assert len(faces[np.array([], dtype=int)]) == 0
    with pytest.raises(IndexError):
        faces[5]
    with pytest.raises(IndexError):
        faces[np.array([True, False])]
    with pytest.raises(IndexError):
        faces[[0, 7]]


@given(st.integers(0, 12), st.data())
def test_mask_indexing_equals_index_array(n: int, data: st.DataObject) -> None:
    faces = make(n, full=True, seed=n)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    by_mask, by_index = faces[mask], faces[np.flatnonzero(mask)]
    assert len(by_mask) == int(mask.sum())
    for a, b in [(by_mask.boxes, by_index.boxes), (by_mask.landmarks68, by_index.landmarks68),
                 (by_mask.embeddings["dlib"], by_index.embeddings["dlib"])]:
        assert np.array_equal(a, b)
    # concat of the two complementary selections holds every face exactly once
    both = Faces.concat([faces[mask], faces[~mask]])
    assert len(both) == n
    assert sorted(map(tuple, both.boxes.tolist())) == sorted(map(tuple, faces.boxes.tolist()))


def test_empty_and_concat_drop_fields_not_everywhere() -> None:
    empty = Faces.empty()
    assert len(empty) == 0 and not empty and empty.to_records() == []
    a, b = make(2, full=True), make(3)
    joined = Faces.concat([a, b])
    assert len(joined) == 5 and joined.age is None and dict(joined.embeddings) == {}
    assert len(Faces.concat([])) == 0


def test_records_are_json_ready_with_contract_keys() -> None:
    faces = make(2, full=True)
    records = json.loads(json.dumps(faces.to_records()))
    assert len(records) == 2
    for record, box, lms in zip(records, faces.boxes, faces.landmarks5, strict=True):
        assert {"box", "score", "landmarks", "age", "gender"} <= set(record)
        assert record["box"] == pytest.approx(box.tolist(), abs=0.06)
        assert np.asarray(record["landmarks"]).shape == (5, 2)
        assert np.allclose(record["landmarks"], lms, atol=0.06)
        assert record["gender"] in ("female", "male")
    bare = make(1).to_records()[0]
    assert bare["age"] is None and bare["gender"] is None


def test_scaled_maps_coordinates() -> None:
    faces = make(2, full=True)
    double = faces.scaled(2.0)
    assert np.allclose(double.boxes, faces.boxes * 2) and np.allclose(double.landmarks68, faces.landmarks68 * 2)
    assert faces.scaled(1.0) is faces
