"""InsightFace model packs (e.g. buffalo_l): SCRFD detection, ArcFace recognition, gender/age.

Used only when a pack is already on disk under `MFMC_INSIGHTFACE_ROOT` (default ~/.insightface/models);
mfmc never downloads one. The `insightface` package itself is not needed: its files are plain ONNX graphs and
the pre/post-processing is reimplemented here from their documented signatures:

- detector `det_*.onnx` (SCRFD): input (1, 3, H, W) RGB, (x - 127.5) / 128, H and W multiples of 32; nine outputs
  = scores, box distances, 5-point offsets for strides 8, 16, 32, two anchors per cell
- recognizer (`w600k_*.onnx`, `glintr100.onnx`, ...): (N, 3, 112, 112) RGB, (x - 127.5) / 127.5 -> (N, 512),
  on a face aligned to the ArcFace 5-point template
- `genderage.onnx`: (N, 3, 96, 96) RGB 0..255 -> (N, 3) = female/male scores, age / 100

Quality is not measured in this project (no pack can be obtained offline here): the ArcFace threshold below
is the one commonly used with these models, not a calibration of ours. Only the plumbing is tested, with tiny
generated graphs of the same signatures (tests/vision/test_insightface.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from mfmc.vision.alignment import ARCFACE_TEMPLATE_112
from mfmc.vision.detection import nms
from mfmc.vision.faces import Faces
from mfmc.vision.recognition import Recognizer
from mfmc.vision.runtime import create_session
from mfmc.vision.settings import VisionSettings, current

if TYPE_CHECKING:
    from mfmc.vision.pipeline import FacePipeline

# Cosine distance (1 - cos). Commonly used operating point for w600k/glint ArcFace models; NOT measured here.
ARCFACE_THRESHOLD = 0.65
ARCFACE_TEMPLATE = ARCFACE_TEMPLATE_112.astype(np.float32)  # float32: cv2.estimateAffinePartial2D


def root(settings: VisionSettings | None = None) -> Path:
    """Where packs are looked for: `settings.insightface_root` (MFMC_INSIGHTFACE_ROOT at the edge)."""
    return (settings or current()).insightface_root


@dataclass(frozen=True)
class Pack:
    """The ONNX files of one pack; any of them may be missing."""

    name: str
    folder: Path
    detector: Path | None
    recognizer: Path | None
    genderage: Path | None

    @property
    def complete(self) -> bool:
        return self.detector is not None and self.recognizer is not None


def scan(folder: Path) -> Pack:
    files = sorted(folder.glob("*.onnx"))
    detector = next((f for f in files if f.name.startswith(("det_", "scrfd"))), None)
    genderage = next((f for f in files if f.name.startswith("genderage")), None)
    recognizer = next(
        (f for f in files if f.name.startswith(("w600k", "glint", "arcface", "webface", "ms1m"))), None
    )
    return Pack(folder.name, folder, detector, recognizer, genderage)


def find_pack(base: Path | None = None, settings: VisionSettings | None = None) -> Pack | None:
    """The pack under `base` (default: the settings' root) named by `settings.insightface_pack`
    (MFMC_INSIGHTFACE_PACK), else buffalo_l, else the first with a detector and a recognizer; None when there is
    none."""
    settings = settings or current()
    base = base or root(settings)
    if not base.is_dir():
        return None
    wanted = settings.insightface_pack
    folders = sorted(p for p in base.iterdir() if p.is_dir())
    if wanted:
        folders = [p for p in folders if p.name == wanted]
    else:
        folders.sort(key=lambda p: (p.name != "buffalo_l", p.name))
    for folder in folders:
        pack = scan(folder)
        if pack.complete:
            return pack
    return None


class SCRFD:
    """SCRFD detector from a pack (boxes, scores, 5 landmarks); session injectable."""

    name = "scrfd"
    strides = (8, 16, 32)
    anchors = 2

    def __init__(self, model: Path | None = None, *, session: Any | None = None, input_size: int = 640,
                 threshold: float = 0.5, nms_iou: float = 0.4) -> None:
        self._session = session or create_session(model)  # type: ignore[arg-type]
        self._input = self._session.get_inputs()[0].name
        self.input_size = input_size
        self.threshold = threshold
        self.nms_iou = nms_iou

    def detect(self, image: np.ndarray) -> Faces:
        height, width = image.shape[:2]
        scale = self.input_size / max(height, width)
        nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
        canvas = np.zeros((self.input_size, self.input_size, 3), dtype=np.float32)
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh)).astype(np.float32)
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None].copy()
        outputs = [np.asarray(o) for o in self._session.run(None, {self._input: blob})]
        outputs = [o[0] if o.ndim == 3 else o for o in outputs]  # batched exports add a leading axis
        count = len(self.strides)
        boxes, scores, points = [], [], []
        for k, stride in enumerate(self.strides):
            cells = self.input_size // stride
            ys, xs = np.mgrid[:cells, :cells]
            centers = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2).repeat(self.anchors, axis=1).reshape(-1, 2)
            centers = centers.astype(np.float32) * stride
            score = outputs[k].reshape(-1)
            dist = outputs[k + count].reshape(-1, 4) * stride
            kps = outputs[k + 2 * count].reshape(-1, 5, 2) * stride
            hit = score >= self.threshold
            c = centers[hit]
            boxes.append(np.concatenate([c - dist[hit, :2], c + dist[hit, 2:]], axis=1))
            scores.append(score[hit])
            points.append(kps[hit] + c[:, None, :])
        all_boxes = np.concatenate(boxes) / scale
        all_scores = np.concatenate(scores)
        all_points = np.concatenate(points) / scale
        if not len(all_boxes):
            return Faces.empty()
        keep = nms(all_boxes, all_scores, self.nms_iou)
        out = all_boxes[keep]
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return Faces(boxes=out, scores=all_scores[keep], landmarks5=all_points[keep])


def arcface_crops(image: np.ndarray, faces: Faces, size: int = 112) -> np.ndarray:
    """Faces warped onto the ArcFace 5-point template (similarity transform)."""
    crops = []
    template = ARCFACE_TEMPLATE * (size / 112.0)
    for points in faces.landmarks5:
        matrix, _ = cv2.estimateAffinePartial2D(points.astype(np.float32), template, method=cv2.LMEDS)
        if matrix is None:
            matrix = cv2.getAffineTransform(points[:3].astype(np.float32), template[:3])
        crops.append(cv2.warpAffine(image, matrix, (size, size), borderValue=0.0))
    return np.stack(crops)


class ArcFace(Recognizer):
    """ArcFace recognizer from a pack; cosine distance; threshold NOT calibrated here."""

    name = "arcface"
    metric = "cosine"
    threshold = ARCFACE_THRESHOLD

    def __init__(self, model: Path | None = None, *, session: Any | None = None) -> None:
        self._session = session or create_session(model)  # type: ignore[arg-type]
        self._input = self._session.get_inputs()[0].name
        shape = self._session.get_outputs()[0].shape
        self.dim = int(shape[-1]) if isinstance(shape[-1], int) else 512

    def embed(self, image: np.ndarray, faces: Faces) -> np.ndarray:
        if not len(faces):
            return np.zeros((0, self.dim), dtype=np.float32)
        crops = arcface_crops(image, faces).astype(np.float32)
        blob = ((crops - 127.5) / 127.5).transpose(0, 3, 1, 2).copy()
        rows = [np.asarray(self._session.run(None, {self._input: blob[i : i + 1]})[0]).reshape(-1)
                for i in range(len(faces))]  # many exports fix the batch size at 1
        out = np.asarray(rows, dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class GenderAge:
    """InsightFace's genderage model: box-centred crop 1.5 × the face, 96 px."""

    name = "insightface-genderage"

    def __init__(self, model: Path | None = None, *, session: Any | None = None, size: int = 96) -> None:
        self._session = session or create_session(model)  # type: ignore[arg-type]
        self._input = self._session.get_inputs()[0].name
        self.size = size

    def estimate(self, image: np.ndarray, faces: Faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ages, genders, female = [], [], []
        for box in faces.boxes:
            x1, y1, x2, y2 = (float(v) for v in box)
            scale = self.size / (max(x2 - x1, y2 - y1) * 1.5)
            matrix = np.array([[scale, 0, self.size / 2 - scale * (x1 + x2) / 2],
                               [0, scale, self.size / 2 - scale * (y1 + y2) / 2]], dtype=np.float32)
            crop = cv2.warpAffine(image, matrix, (self.size, self.size), borderValue=0.0)
            blob = crop.astype(np.float32).transpose(2, 0, 1)[None].copy()
            pred = np.asarray(self._session.run(None, {self._input: blob})[0]).reshape(-1)
            genders.append("male" if pred[1] > pred[0] else "female")
            female.append(1.0 / (1.0 + np.exp(float(pred[1] - pred[0]))))  # softmax of the two gender outputs
            ages.append(float(pred[2]) * 100.0)
        return (np.asarray(ages, dtype=np.float32), np.asarray(genders, dtype="<U6"),
                np.asarray(female, dtype=np.float32))


def pipeline(pack: Pack, fallback: FacePipeline) -> FacePipeline:
    """A FacePipeline using the pack's models where present and `fallback`'s for the rest (dlib 68 landmarks,
    the dlib and FaceNet recognizers stay available so embeddings stay comparable across installs)."""
    from mfmc.vision.pipeline import FacePipeline

    recognizers: dict[str, Callable[[], Recognizer]] = {
        name: (lambda n=name: fallback.recognizers[n]) for name in fallback.recognizers}
    if pack.recognizer is not None:
        recognizers["arcface"] = lambda: ArcFace(pack.recognizer)
    return FacePipeline(
        (lambda: SCRFD(pack.detector)) if pack.detector else (lambda: fallback.detector),
        landmarker=lambda: fallback.landmarker,
        recognizers=recognizers,
        attributes=(lambda: GenderAge(pack.genderage)) if pack.genderage else (lambda: fallback.attributes),
        expressions=lambda: fallback.expressions,
        backend=f"insightface:{pack.name}",
    )
