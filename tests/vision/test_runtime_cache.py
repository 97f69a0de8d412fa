"""Sessions from the disk cache of optimized graphs (`mfmc.vision.runtime.cached_session`): what a cached,
onnxruntime-optimized graph computes is what the graph it came from computes, on real faces; a second process
(here: a second call) uses the entry instead of converting again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mfmc.vision import FacePipeline, cache, facenet_onnx
from mfmc.vision.recognition import FACENET_THRESHOLD, embedding_distance, prewhiten
from mfmc.vision.registry import MODELS, model_path
from mfmc.vision.runtime import cached_session, create_session
from tests.vision.helpers import PEOPLE, photo


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(cache, "_state", {"dir": folder})
    return folder


def _portrait_chips(pipeline: FacePipeline, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size, 3) crops of real faces, the FaceNet way (roll-corrected, margin 0.1), and each one's person."""
    recognizer = pipeline.recognizers["facenet"]
    crops, people = [], []
    for person in PEOPLE[:6]:
        for asset in ("studio_portrait", "amateur_selfie"):
            image = photo(person, asset, 640)
            faces = pipeline.detect(image)
            faces = faces[np.argsort(-faces.areas)[:1]]
            crops.append(recognizer.crops(image, faces))
            people.append(person)
    chips = np.concatenate(crops)
    if size != chips.shape[1]:
        import cv2

        chips = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in chips])
    return chips, np.array(people)


def test_cached_age_graph_gives_the_same_outputs_and_is_reused(cache_dir: Path, pipeline: FacePipeline,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = model_path("age")
    chips, _ = _portrait_chips(pipeline, 64)
    blob = ((chips.astype(np.float32) - (122.782, 117.001, 104.298)) / 256.0).transpose(0, 3, 1, 2)
    blob = np.ascontiguousarray(blob, np.float32)
    plain = create_session(path, providers=["CPUExecutionProvider"]).run(None, {"images": blob})[0]

    built: list[int] = []

    def graph() -> bytes:
        built.append(1)
        return path.read_bytes()

    session = cached_session("age", path, graph, version="test", content_hash=MODELS["age"].sha256)
    np.testing.assert_allclose(session.run(None, {"images": blob})[0], plain, rtol=0, atol=1e-6)
    (entry,) = cache_dir.glob("age-*.bin")
    assert entry.read_bytes() != cache._frame(path.read_bytes()) + path.read_bytes()  # optimized, not a copy
    again = cached_session("age", path, graph, version="test", content_hash=MODELS["age"].sha256)
    assert built == [1]  # the second session came from the entry
    np.testing.assert_array_equal(again.run(None, {"images": blob})[0], session.run(None, {"images": blob})[0])


@pytest.mark.slow  # converts the real FaceNet graph (~4 s)
def test_cached_facenet_graph_keeps_every_decision(cache_dir: Path, pipeline: FacePipeline) -> None:
    crops, people = _portrait_chips(pipeline, 160)
    x = prewhiten(crops).astype(np.float32)
    source = model_path("facenet")
    converted = facenet_onnx.build_onnx(facenet_onnx.read_graph(source)).SerializeToString()
    plain = create_session(converted, providers=["CPUExecutionProvider"]).run(["embeddings"], {"faces": x})[0]
    net = facenet_onnx.FaceNetOnnx(source, content_hash=MODELS["facenet"].sha256)
    assert len(list(cache_dir.glob("facenet-*.bin"))) == 1
    ours = net(x)
    assert np.abs(ours - plain).max() < 1e-6
    plain_d = embedding_distance(plain[:, None], plain[None], "cosine")
    ours_d = embedding_distance(ours[:, None], ours[None], "cosine")
    np.testing.assert_array_equal(ours_d < FACENET_THRESHOLD, plain_d < FACENET_THRESHOLD)
    same = people[:, None] == people[None]
    assert (ours_d < FACENET_THRESHOLD)[same].mean() > 0.8  # real faces: the embeddings still separate people
    assert (ours_d >= FACENET_THRESHOLD)[~same].mean() > 0.8
