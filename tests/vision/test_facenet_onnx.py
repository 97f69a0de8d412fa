"""FaceNet converted to ONNX (`mfmc.vision.facenet_onnx`) against cv2.dnn running the shipped graph, on real crops.

Crops are cut exactly as `FaceNetRecognizer.crops` cuts them, from openpeople emotion sheets: 4 people × 13
expressions = 52 faces, so same-person and different-person pairs both occur many times.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mfmc.vision import FacePipeline, cache, facenet_onnx
from mfmc.vision.recognition import FACENET_THRESHOLD, FaceNetRecognizer, embedding_distance
from mfmc.vision.registry import MODELS, model_path
from tests.vision.helpers import photo

SHEETS = ["P001", "P002", "P003", "P004"]
PER_SHEET = 13


@pytest.fixture(scope="module")
def crops(pipeline: FacePipeline) -> tuple[np.ndarray, np.ndarray]:
    """(52, 160, 160, 3) RGB uint8 crops and the person of each."""
    recognizer = pipeline.recognizers["facenet"]
    out, people = [], []
    for person in SHEETS:
        image = photo(person, "emotions_sheet", 1024)
        faces = pipeline.detect(image)[:PER_SHEET]
        out.append(recognizer.crops(image, faces))
        people += [person] * len(faces)
    return np.concatenate(out), np.array(people)


@pytest.fixture(scope="module")
def cv2_recognizer() -> FaceNetRecognizer:
    return FaceNetRecognizer(backend="cv2")


def test_default_recognizer_runs_onnx(pipeline: FacePipeline) -> None:
    assert pipeline.recognizers["facenet"].backend == "onnxruntime"
    assert pipeline.recognizers["facenet"].describe()["backend"] == "onnxruntime"


@pytest.mark.slow  # converts and runs the real FaceNet graph (quick subset: -m 'not slow')
def test_onnx_matches_cv2_on_real_crops(crops: tuple[np.ndarray, np.ndarray],
                                        cv2_recognizer: FaceNetRecognizer) -> None:
    images, people = crops
    assert len(images) >= 50
    reference = cv2_recognizer.embed_crops(images)
    ours = FaceNetRecognizer(backend="onnxruntime").embed_crops(images)
    assert ours.shape == reference.shape == (len(images), 512)
    assert np.abs(ours - reference).max() < 1e-4  # measured ~5e-7
    ref_dist = embedding_distance(reference[:, None], reference[None], "cosine")
    our_dist = embedding_distance(ours[:, None], ours[None], "cosine")
    assert np.abs(ref_dist - our_dist).max() < 1e-4
    assert np.array_equal(ref_dist < FACENET_THRESHOLD, our_dist < FACENET_THRESHOLD)
    # not vacuous: both kinds of decision occur, mostly along identity
    same_person = people[:, None] == people[None]
    assert (our_dist < FACENET_THRESHOLD)[same_person].mean() > 0.8
    assert (our_dist >= FACENET_THRESHOLD)[~same_person].mean() > 0.8  # measured 0.88 (one image generator)


def test_batch_does_not_change_an_embedding(crops: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = crops
    recognizer = FaceNetRecognizer(backend="onnxruntime")
    together = recognizer.embed_crops(images[:7])
    alone = np.concatenate([recognizer.embed_crops(images[i : i + 1]) for i in range(7)])
    assert np.abs(together - alone).max() < 1e-5


@pytest.mark.slow  # converts and runs the real FaceNet graph (quick subset: -m 'not slow')
def test_converted_graph_is_cached_on_disk_and_rebuilt_when_damaged(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_state", {"dir": tmp_path})
    source = model_path("facenet")
    facenet_onnx.FaceNetOnnx(source, content_hash=MODELS["facenet"].sha256)
    entries = [p for p in tmp_path.glob("facenet-*.bin") if "-ort-" not in p.name]
    optimized = list(tmp_path.glob("facenet-ort-*.bin"))  # onnxruntime's optimized graph (runtime.cached_cpu_session)
    assert len(entries) == 1 and entries[0].stat().st_size > 80_000_000 and len(optimized) == 1

    def no_build(nodes: object, **_: object) -> None:
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(facenet_onnx, "build_onnx", no_build)
    x = np.random.default_rng(1).normal(size=(2, 160, 160, 3)).astype(np.float32)
    first = facenet_onnx.FaceNetOnnx(source, content_hash=MODELS["facenet"].sha256)(x)
    monkeypatch.undo()
    monkeypatch.setattr(cache, "_state", {"dir": tmp_path})
    entries[0].write_bytes(b"not an onnx graph")
    optimized[0].write_bytes(b"not one either")
    again = facenet_onnx.FaceNetOnnx(source, content_hash=MODELS["facenet"].sha256)(x)
    assert np.abs(first - again).max() < 1e-6
    # the optimized graph's entry is small; its weights lie apart, in the file onnxruntime maps into memory
    assert optimized[0].with_suffix(".weights").stat().st_size > 80_000_000
    assert entries[0].stat().st_size > 80_000_000  # replaced by a good one


def test_cache_key_follows_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "_state", {"dir": tmp_path / "c"})
    source = tmp_path / "weights.bin"
    source.write_bytes(b"a")
    first = cache.entry_path("x", source, version="1")
    assert first == cache.entry_path("x", source, version="1")
    assert first != cache.entry_path("x", source, version="2")
    assert first != cache.entry_path("x", source, version="1", content_hash="abc")
    source.write_bytes(b"bb")
    assert first != cache.entry_path("x", source, version="1")
    cache.set_cache_dir(None)
    assert cache.entry_path("x", source, version="1") is None
    built = []
    assert cache.load_or_build("x", source, version="1", build=lambda: built.append(1) or b"v", use=bytes) == b"v"
    assert built == [1]


def _message(*fields: tuple[int, bytes]) -> bytes:
    """A protobuf message of length-delimited fields (enough to write a tiny GraphDef)."""
    out = b""
    for number, payload in fields:
        out += bytes([number << 3 | 2, len(payload)]) + payload
    return out


def test_converter_refuses_operations_it_does_not_know(tmp_path: Path) -> None:
    graph = _message(
        (1, _message((1, b"input"), (2, b"Placeholder"))),
        (1, _message((1, b"x"), (2, b"Erf"), (3, b"input"))),
    )
    path = tmp_path / "g.pb"
    path.write_bytes(graph)
    nodes = facenet_onnx.read_graph(path)
    assert [(n.name, n.op, n.inputs) for n in nodes] == [("input", "Placeholder", []), ("x", "Erf", ["input"])]
    with pytest.raises(facenet_onnx.TfGraphError, match="unsupported TensorFlow operation `Erf`"):
        facenet_onnx.build_onnx(nodes)
    path.write_bytes(b"")
    with pytest.raises(facenet_onnx.TfGraphError, match="no nodes"):
        facenet_onnx.read_graph(path)


def test_cv2_is_the_fallback_when_conversion_fails(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    def broken(path: object, **_: object) -> None:
        raise facenet_onnx.TfGraphError("unsupported TensorFlow operation `Erf`")

    monkeypatch.setattr(facenet_onnx, "load", broken)
    recognizer = FaceNetRecognizer()
    assert recognizer.backend == "cv2"
    assert "ONNX conversion failed" in caplog.text
    with pytest.raises(facenet_onnx.TfGraphError):
        FaceNetRecognizer(backend="onnxruntime")
    assert FaceNetRecognizer(net=cv2.dnn.readNetFromTensorflow(str(model_path("facenet")))).backend == "cv2"
