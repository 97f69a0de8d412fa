"""ONNX swapper plumbing with tiny generated graphs of the inswapper signature (no real model is used)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from mfmc.errors import ModelNotFoundError  # noqa: E402
from mfmc.swap import OnnxSwapper, changed_outside, create_swapper  # noqa: E402
from mfmc.swap.onnx_swapper import ArcFaceEncoder  # noqa: E402
from mfmc.vision import settings  # noqa: E402


def _swapper_graph(size: int = 128, dim: int = 512) -> bytes:
    """out = 1 - target + 0 * mean(source): inverts the face so a change is easy to see; emap is the last
    initializer, as in inswapper."""
    target = helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, size, size])
    source = helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, dim])
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    emap = numpy_helper.from_array(np.eye(dim, dtype=np.float32) * 2, "emap")
    nodes = [
        helper.make_node("Sub", ["one", "target"], ["inv"]),
        helper.make_node("ReduceMean", ["source"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["m0"]),
        helper.make_node("Add", ["inv", "m0"], ["output"]),
    ]
    graph = helper.make_graph(nodes, "tiny-swapper", [target, source], [output], [one, zero, emap])
    return _serialize(graph)


def _encoder_graph(dim: int = 512) -> bytes:
    """(1, 3, 112, 112) -> channel means -> (1, dim) linear map: a stand-in for an ArcFace recognizer."""
    x = helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])
    y = helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, dim])
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(3, dim)).astype(np.float32), "w")
    nodes = [
        helper.make_node("ReduceMean", ["data"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w"], ["fc1"]),
    ]
    graph = helper.make_graph(nodes, "tiny-arcface", [x], [y], [w])
    return _serialize(graph)


def _serialize(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime we support
    return model.SerializeToString()


def _face() -> tuple[np.ndarray, np.ndarray]:
    """A plain image with plausible 68 landmarks (a mean face scaled into it)."""
    rng = np.random.default_rng(1)
    image = rng.integers(60, 200, (240, 240, 3), dtype=np.uint8)
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([120 - 70 * np.cos(t), 110 + 80 * np.sin(t)], 1)
    brows = np.stack([np.linspace(65, 175, 10), np.full(10, 85.0)], 1)
    nose = np.stack([np.full(9, 120.0), np.linspace(95, 145, 9)], 1)
    ring = np.linspace(0, 2 * np.pi, 6, endpoint=False)

    def eye(cx: float) -> np.ndarray:
        return np.stack([cx + 14 * np.cos(ring), 100 + 5 * np.sin(ring)], 1)

    mouth = np.stack([120 + 28 * np.cos(np.linspace(0, 2 * np.pi, 12, endpoint=False)),
                      165 + 9 * np.sin(np.linspace(0, 2 * np.pi, 12, endpoint=False))], 1)
    inner = np.stack([120 + 18 * np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                      165 + 2 * np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], 1)
    return image, np.vstack([jaw, brows, nose, eye(90), eye(150), mouth, inner])


def test_onnx_swapper_runs_a_generated_inswapper_graph() -> None:
    image, lm = _face()
    swapper = OnnxSwapper(_swapper_graph(), ArcFaceEncoder(_encoder_graph()))
    assert swapper.image_input == "target" and swapper.latent_input == "source" and swapper.size == 128
    assert swapper.emap is not None and swapper.emap.shape == (512, 512)
    latent = swapper.latent(image, lm)
    assert latent.shape == (1, 512) and np.isclose(np.linalg.norm(latent), 1.0)
    result = swapper.swap(image, lm, image, lm)
    out = result.patch.apply(image)
    assert changed_outside(image, out, result.patch.full_mask(), tolerance=0) == 0
    inside = result.patch.full_mask()
    # the tiny graph inverts the face: deep inside the mask the result is far from the input
    assert np.abs(out[inside].astype(int) - image[inside].astype(int)).mean() > 20
    assert inside.sum() > 5000
    assert swapper.providers[-1] == "CPUExecutionProvider"


def test_onnx_swapper_is_optional_and_says_what_is_missing() -> None:
    before = settings.current()
    try:
        settings.configure(dataclasses.replace(before, swap_model=None))
        with pytest.raises(ModelNotFoundError, match="needs a model file"):
            create_swapper("onnx")
        # built by name, it takes its files from the process's settings (MFMC_SWAP_MODEL / _ENCODER at the edge)
        settings.configure(dataclasses.replace(before, swap_model=Path("/nonexistent/inswapper_128.onnx"),
                                               swap_encoder=None))
        with pytest.raises(ModelNotFoundError, match="needs an identity encoder"):
            create_swapper("onnx")
        settings.configure(dataclasses.replace(before, swap_model=Path("/nonexistent/inswapper_128.onnx"),
                                               swap_encoder=Path("/nonexistent/w600k_r50.onnx")))
        with pytest.raises(ModelNotFoundError, match=r"inswapper_128\.onnx.*does not exist"):
            create_swapper("onnx")
    finally:
        settings.configure(before)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        OnnxSwapper("/nonexistent/inswapper_128.onnx", encoder=lambda i, lm: np.ones(512))
