"""The dlib face recognizer converted to ONNX (`mfmc.vision.dlib_onnx`) against dlib itself, on real face chips.

Chips are cut exactly as `DlibRecognizer` / dlib's `compute_face_descriptor` cut them
(`dlib.get_face_chip(image, shape, size=150, padding=0.25)`) from openpeople emotion sheets: 4 people x 13
expressions = 52 faces, so same-person and different-person pairs both occur many times (dlib itself needs
~0.15 s per chip here, which bounds the count).
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest

from mfmc.vision import FacePipeline, dlib_onnx
from mfmc.vision.landmarks import DlibShapes
from mfmc.vision.recognition import DLIB_THRESHOLD, DlibRecognizer
from mfmc.vision.registry import model_path
from tests.vision.helpers import photo

SHEETS = ["P001", "P002", "P003", "P004"]
PER_SHEET = 13


@pytest.fixture(scope="module")
def chips(pipeline: FacePipeline) -> tuple[np.ndarray, np.ndarray]:
    """(52, 150, 150, 3) RGB uint8 chips and the person of each."""
    shapes5 = DlibShapes()
    out, people = [], []
    for person in SHEETS:
        image = photo(person, "emotions_sheet", 1024)
        faces = pipeline.detect(image)
        for shape in shapes5.shapes(image, faces[:PER_SHEET]):
            out.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
            people.append(person)
    return np.stack(out), np.array(people)


@pytest.fixture(scope="module")
def dlib_model() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(str(model_path("dlib_resnet")))


@pytest.mark.slow
def test_onnx_matches_dlib_on_real_chips(chips: tuple[np.ndarray, np.ndarray],
                                         dlib_model: dlib.face_recognition_model_v1) -> None:
    images, people = chips
    assert len(images) >= 50
    reference = np.asarray([np.asarray(v) for v in dlib_model.compute_face_descriptor(list(images))], np.float32)
    ours = dlib_onnx.load(model_path("dlib_resnet"))(images)
    assert ours.shape == reference.shape == (len(images), 128)
    assert np.abs(ours - reference).max() < 1e-4  # measured 3.6e-7
    ref_dist = np.linalg.norm(reference[:, None] - reference[None], axis=-1)
    our_dist = np.linalg.norm(ours[:, None] - ours[None], axis=-1)
    assert np.array_equal(ref_dist < DLIB_THRESHOLD, our_dist < DLIB_THRESHOLD)
    # the comparison is not vacuous: both kinds of decision occur, mostly along identity
    same_person = people[:, None] == people[None]
    assert (our_dist < DLIB_THRESHOLD)[same_person].mean() > 0.9
    assert (our_dist >= DLIB_THRESHOLD)[~same_person].mean() > 0.9


def test_reader_checks_the_architecture_and_the_whole_file(tmp_path: Path) -> None:
    layers, loss = dlib_onnx.read_network(model_path("dlib_resnet"))
    assert loss["distance_threshold"] == pytest.approx(DLIB_THRESHOLD)
    kinds = [layer.kind for layer in layers]
    assert kinds.count("con") == 29 and kinds.count("add_prev") == 14 and kinds[-1] == "fc"
    data = model_path("dlib_resnet").read_bytes()
    (tmp_path / "short.dat").write_bytes(data[:-1000])
    with pytest.raises((dlib_onnx.DlibFormatError, ValueError, IndexError)):
        dlib_onnx.read_network(tmp_path / "short.dat")
    (tmp_path / "long.dat").write_bytes(data + b"\x01\x00")
    with pytest.raises(dlib_onnx.DlibFormatError, match="unread bytes"):
        dlib_onnx.read_network(tmp_path / "long.dat")


@pytest.mark.slow
def test_recognizer_fast_path_equals_dlib_path(pipeline: FacePipeline) -> None:
    image = photo("P005", "studio_portrait", 640)
    faces = pipeline.detect(image)  # no 68 landmarks: both paths run the 5-point predictor
    fast = DlibRecognizer(backend="auto")
    slow = DlibRecognizer(backend="dlib")
    assert (fast.backend, slow.backend) == ("onnxruntime", "dlib")
    assert fast.describe()["threshold"] == slow.describe()["threshold"] == DLIB_THRESHOLD
    a, b = fast.embed(image, faces), slow.embed(image, faces)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(faces), 128)
    assert np.abs(a - b).max() < 1e-4
    assert fast.embed(image, faces[:0]).shape == (0, 128)


def test_failed_conversion_falls_back_to_dlib(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: object) -> None:
        raise dlib_onnx.DlibFormatError("simulated")

    monkeypatch.setattr(dlib_onnx, "load", broken)
    recognizer = DlibRecognizer()
    assert recognizer.backend == "dlib" and recognizer.name == "dlib"
    with pytest.raises(dlib_onnx.DlibFormatError):
        DlibRecognizer(backend="onnxruntime")
    from mfmc.vision import settings

    forced = settings.VisionSettings.from_env({"MFMC_DLIB_BACKEND": "dlib"})
    monkeypatch.setattr(settings, "_state", {"current": forced})
    monkeypatch.setattr(dlib_onnx, "load", lambda path: pytest.fail("must not convert"))
    assert DlibRecognizer().backend == "dlib"
