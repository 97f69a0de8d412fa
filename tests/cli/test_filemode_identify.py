"""File-mode identification rules on hand-made embeddings (no models): a face gets an owner only when every
recognizer agrees; anything ambiguous stays unknown (and is then faked for every viewer)."""

from __future__ import annotations

import numpy as np
import pytest

from mfmc.filemode import People
from mfmc.vision import FacePipeline, Faces, Recognizer


class Plane(Recognizer):
    """A 2-D Euclidean 'recognizer' whose embeddings are given by the test."""

    dim = 2
    metric = "euclidean"

    def __init__(self, name: str, threshold: float) -> None:
        self.name, self.threshold = name, threshold

    def embed(self, image, faces):  # pragma: no cover - the tests pass embeddings in
        raise NotImplementedError


def _people(refs: dict[str, tuple[tuple[float, float], tuple[float, float]]]) -> People:
    pipe = FacePipeline(None, recognizers={"dlib": Plane("dlib", 0.6), "facenet": Plane("facenet", 0.5)})
    references = {u: {"dlib": np.array([d], np.float32), "facenet": np.array([f], np.float32)}
                  for u, (d, f) in refs.items()}
    return People(references, pipe)


def _faces(dlib: list, facenet: list, side: float = 100.0) -> Faces:
    n = len(dlib)
    boxes = np.array([[200 * i, 0, 200 * i + side, side] for i in range(n)], np.float32).reshape(n, 4)
    return Faces(boxes=boxes, scores=np.ones(n, np.float32), landmarks5=np.zeros((n, 5, 2), np.float32),
                 embeddings={"dlib": np.array(dlib, np.float32), "facenet": np.array(facenet, np.float32)})


REFS = {"ann": ((0, 0), (0, 0)), "ben": ((5, 0), (5, 0))}


def test_each_face_to_the_person_every_recognizer_puts_nearest():
    got = _people(REFS).identify(_faces([(0.1, 0), (5.2, 0), (9, 9)], [(0.1, 0), (5, 0.2), (9, 9)]))
    assert [g.owner for g in got] == ["ann", "ben", None]
    assert got[2].reason == "matches no reference photo"
    assert set(got[0].distances) == {"dlib", "facenet"}


def test_a_match_on_one_recognizer_only_is_unknown():
    got = _people(REFS).identify(_faces([(0.1, 0)], [(2, 0)]))  # facenet: 2 > 0.5 from ann
    assert got[0].owner is None
    assert got[0].reason == "matches no reference photo"


def test_recognizers_that_disagree_leave_the_face_unknown():
    people = _people({"ann": ((0, 0), (0, 0)), "ben": ((0.5, 0), (0.3, 0))})
    got = people.identify(_faces([(0.1, 0)], [(0.25, 0)]))  # dlib: ann nearest; facenet: ben nearest
    assert got[0].owner is None
    assert "recognizers disagree" in got[0].reason


def test_one_person_is_given_to_one_face_only():
    got = _people(REFS).identify(_faces([(0.3, 0), (0.1, 0)], [(0.3, 0), (0.1, 0)]))
    assert [g.owner for g in got] == [None, "ann"]
    assert "matches face 1 of the photo better" in got[0].reason


def test_tiny_faces_are_never_identified():
    got = _people(REFS).identify(_faces([(0, 0)], [(0, 0)], side=12))
    assert got[0].owner is None and "too small" in got[0].reason


@pytest.mark.parametrize("count", [0, 1, 3])
def test_one_identity_per_face(count):
    empty = np.zeros((0, 2))
    got = _people(REFS).identify(_faces([(9, 9)] * count, [(9, 9)] * count) if count else _faces(empty, empty))
    assert len(got) == count
