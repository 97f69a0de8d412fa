"""InsightFace backend plumbing, with tiny generated ONNX graphs of the real models' signatures.

These prove the pre/post-processing and the pack discovery, not the quality of any real InsightFace model
(no pack can be obtained offline here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mfmc.errors import InvalidInputError, ModelNotFoundError
from mfmc.vision import FacePipeline, Faces
from mfmc.vision.backends import insightface
from mfmc.vision.backends.insightface import ARCFACE_TEMPLATE, SCRFD, ArcFace, GenderAge, arcface_crops
from mfmc.vision.settings import VisionSettings

OPSET = [helper.make_opsetid("", 13)]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=OPSET)
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def scrfd_graph(path: Path) -> Path:
    """SCRFD-like: per stride, score = sigmoid(10 × mean brightness of the cell), box distances 2 strides,
    landmarks at the anchor; outputs ordered scores, boxes, landmarks for strides 8, 16, 32."""
    nodes, outputs, inits = [], {"score": [], "bbox": [], "kps": []}, []
    inits += [numpy_helper.from_array(np.array(10.0, np.float32), "ten"),
              numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(2.0, np.float32), "two")]
    for width, name in [(1, "score"), (4, "bbox"), (10, "kps")]:
        inits.append(numpy_helper.from_array(np.array([-1, width], np.int64), f"shape_{name}"))
    for s in (8, 16, 32):
        nodes += [
            helper.make_node("AveragePool", ["input.1"], [f"pool{s}"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("ReduceMean", [f"pool{s}"], [f"mean{s}"], axes=[1], keepdims=1),
            helper.make_node("Mul", [f"mean{s}", "ten"], [f"logit{s}"]),
            helper.make_node("Sigmoid", [f"logit{s}"], [f"sig{s}"]),
            helper.make_node("Mul", [f"sig{s}", "zero"], [f"z{s}"]),
            helper.make_node("Add", [f"z{s}", "two"], [f"d{s}"]),
        ]
        for name, source, channels in [("score", f"sig{s}", 2), ("bbox", f"d{s}", 8), ("kps", f"z{s}", 20)]:
            nodes += [
                helper.make_node("Concat", [source] * channels, [f"{name}c{s}"], axis=1),
                helper.make_node("Transpose", [f"{name}c{s}"], [f"{name}t{s}"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"{name}t{s}", f"shape_{name}"], [f"{name}_{s}"]),
            ]
            outputs[name].append(f"{name}_{s}")
    names = outputs["score"] + outputs["bbox"] + outputs["kps"]
    graph = helper.make_graph(
        nodes, "scrfd_stub",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["K", w])
         for n, w in zip(names, [1] * 3 + [4] * 3 + [10] * 3, strict=True)],
        initializer=inits,
    )
    return _save(graph, path)


def linear_head_graph(path: Path, input_name: str, size: int, weights: np.ndarray) -> Path:
    """(N, 3, size, size) -> global average -> (N, 3) @ weights."""
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", [input_name], ["gap"]),
         helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["out"])],
        "head_stub",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", weights.shape[1]])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "w")],
    )
    return _save(graph, path)


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insightface")
    pack = root / "buffalo_l"
    pack.mkdir()
    scrfd_graph(pack / "det_10g.onnx")
    rng = np.random.default_rng(0)
    linear_head_graph(pack / "w600k_r50.onnx", "input.1", 112, rng.normal(size=(3, 512)))
    linear_head_graph(pack / "genderage.onnx", "data", 96, np.eye(3) / 255.0)
    (root / "empty_pack").mkdir()
    return root


def test_pack_discovery(pack_root: Path, tmp_path: Path) -> None:
    settings = VisionSettings.from_env({"MFMC_INSIGHTFACE_ROOT": str(pack_root)})
    pack = insightface.find_pack(settings=settings)
    assert pack is not None and pack.name == "buffalo_l" and pack.complete
    assert pack.genderage is not None and pack.genderage.name == "genderage.onnx"
    assert insightface.find_pack(tmp_path) is None
    assert insightface.find_pack(tmp_path / "missing") is None
    settings = VisionSettings.from_env({"MFMC_INSIGHTFACE_ROOT": str(pack_root), "MFMC_INSIGHTFACE_PACK": "empty_pack"})
    assert insightface.find_pack(settings=settings) is None


def test_scrfd_decoding_finds_the_bright_square(pack_root: Path) -> None:
    detector = SCRFD(pack_root / "buffalo_l" / "det_10g.onnx")
    image = np.zeros((960, 1280, 3), np.uint8)  # letterboxed at scale 0.5
    image[400:528, 600:728] = 255
    faces = detector.detect(image)
    assert len(faces) >= 1
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    assert (centres[:, 0] > 590).all() and (centres[:, 0] < 738).all()
    assert (centres[:, 1] > 390).all() and (centres[:, 1] < 538).all()
    widths = faces.boxes[:, 2] - faces.boxes[:, 0]
    # distances of 2 strides each side: 4 × (8, 16, 32) px at the input, doubled by the 1/2 letterbox scale
    assert set(np.round(widths).astype(int).tolist()) <= {64, 128, 256}
    assert len(detector.detect(np.zeros((100, 100, 3), np.uint8))) == 0


def _face_image() -> tuple[np.ndarray, Faces]:
    image = np.zeros((300, 300, 3), np.uint8)
    image[100:200, 100:200] = (200, 40, 90)
    template = ARCFACE_TEMPLATE / 112.0 * 100 + 100  # a face filling the coloured square
    faces = Faces(boxes=[[100, 100, 200, 200]], scores=[0.9], landmarks5=template[None])
    return image, faces


def test_arcface_alignment_and_embedding(pack_root: Path) -> None:
    image, faces = _face_image()
    crops = arcface_crops(image, faces)
    assert crops.shape == (1, 112, 112, 3)
    assert (crops[0, 10:100, 10:100] == (200, 40, 90)).all()  # the square fills the aligned crop
    arcface = ArcFace(pack_root / "buffalo_l" / "w600k_r50.onnx")
    assert arcface.dim == 512
    two = Faces.concat([faces, faces])
    emb = arcface.embed(image, two)
    assert emb.shape == (2, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert arcface.distance(emb[0], emb[1]) == pytest.approx(0, abs=1e-6)
    other = image.copy()
    other[100:200, 100:200] = (30, 200, 60)
    assert arcface.distance(emb[0], arcface.embed(other, faces)[0]) > 0.05
    assert arcface.embed(image, Faces.empty()).shape == (0, 512)


def test_genderage_crop_and_outputs(pack_root: Path) -> None:
    image, faces = _face_image()
    ages, genders, _ = GenderAge(pack_root / "buffalo_l" / "genderage.onnx").estimate(image, faces)
    # the stub outputs mean (R, G, B) / 255 of the 1.5× crop: R > G -> "female"; age = B / 255 × 100
    coverage = (1 / 1.5) ** 2
    assert genders.tolist() == ["female"]
    assert ages[0] == pytest.approx(90 / 255 * 100 * coverage, rel=0.05)


def test_backend_selection(pack_root: Path, tmp_path: Path) -> None:
    pipe = FacePipeline.from_backend("auto", VisionSettings(insightface_root=pack_root))
    assert pipe.backend == "insightface:buffalo_l"
    from mfmc.vision.recognition import OPTIONAL_RECOGNIZERS

    assert {"dlib", "facenet", "arcface"} <= set(pipe.recognizers) <= {"dlib", "facenet", "arcface",
                                                                       *OPTIONAL_RECOGNIZERS}
    assert isinstance(pipe.detector, SCRFD) and isinstance(pipe.attributes, GenderAge)
    image, _ = _face_image()
    faces = pipe.analyze(image, landmarks=False, recognizers=["arcface"])
    assert set(faces.embeddings) <= {"arcface"}
    empty = VisionSettings(insightface_root=tmp_path)
    assert FacePipeline.from_backend("auto", empty).backend == "embedded"
    with pytest.raises(ModelNotFoundError, match="no insightface model pack"):
        FacePipeline.from_backend("insightface", empty)
    with pytest.raises(InvalidInputError, match="unknown backend `gpu`"):
        FacePipeline.from_backend("gpu")
