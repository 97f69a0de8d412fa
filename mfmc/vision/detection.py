"""Face detection: CenterFace (boxes + 5 landmarks) over a scale pyramid of tiles.

One pass at a fixed input size misses small faces in large photos (a 20 px face in a 4000 px photo shrinks to
3 px at 640). So the image is searched at its working scale in overlapping tiles (small images at up to 640 px,
never enlarged), plus one downscaled pass for faces too large for a tile; detections cut by a tile border are
dropped (the overlap guarantees a neighbouring tile or the coarse pass sees them whole), then all passes are
merged with non-maximum suppression. Photos turned by a quarter turn without EXIF are searched turned too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from mfmc.vision.faces import Faces
from mfmc.vision.orientation import unturn_boxes, unturn_points
from mfmc.vision.registry import model_path
from mfmc.vision.runtime import choose_providers, create_session


@runtime_checkable
class Detector(Protocol):
    """Anything that finds faces: boxes, scores and 5 landmarks in the image's pixel coordinates."""

    name: str

    def detect(self, image: np.ndarray) -> Faces: ...


@dataclass(frozen=True)
class TilingConfig:
    """How the image is searched. Defaults find faces of `min_face` px and faces filling the frame.

    CenterFace finds faces of 12 px and more at its input scale (24/24 composited faces at 12, 14, 16 and
    20 px; 7/24 at 10 px; 0/24 at 8 px), so an image is searched at scale `detector_min / min_face`: 20 px
    faces arrive as 13 px ones, and a 1 MP photo costs one 0.4 MP pass. Smaller images are searched at up to
    `min_side` px instead, at most at their own resolution: there every face of 12 px or more is found (composed
    photos of 12-20 px faces: 78/78 at native resolution). Enlarging them (up to 2x, as before) cost 1.5-1.7x the
    native pass on real 0.2-0.4 MP photos and found no extra face there, only false positives of 7-10 px.
    """

    min_face: float = 20.0  # smallest face (box width, pixels of the image) that must be found
    detector_min: float = 13.0  # smallest face the network finds reliably at its input scale
    tile_size: int = 1280  # tiles at the working scale (pixels, multiple of 32)
    overlap: int = 192  # must exceed the largest face a tile is expected to see whole
    coarse_size: int = 640  # long side of the whole-image pass for large faces (only when tiled)
    min_side: int = 640  # images smaller than this at the working scale are searched at this size ...
    max_upscale: float = 1.0  # ... but enlarged by at most this factor (1: never)

    def working_scale(self, long_side: int) -> float:
        scale = min(1.0, self.detector_min / self.min_face)
        if long_side * scale < self.min_side:
            scale = max(scale, min(self.max_upscale, self.min_side / long_side))
        return scale


@dataclass(frozen=True)
class OrientationConfig:
    """How photos that lost their orientation (turned 90°, 180° or 270°, no EXIF) are searched.

    The upright search runs first; cheap evidence then says whether one quarter turn deserves a whole second
    search: the `check_faces` best faces found upright and the `check_candidates` best weak responses (scores
    from `candidate_threshold` up to the threshold) re-detected in `check_size` px crops turned each way (a face
    on its side often gets a weak or even a passing score upright, with wrong landmarks; turned upright it
    scores higher), and, only when those are inconclusive, probe passes over the photo reduced to
    `probe_fraction` of the working size and turned each way.
    """

    probe_fraction: float = 0.4  # probe long side, as a fraction of the working long side ...
    probe_max: int = 640  # ... and at most this many pixels ...
    probe_min: int = 256  # ... but at least this many (or the working size): faces in tiny photos are tiny
    check_faces: int = 2
    candidate_threshold: float = 0.1  # weak upright responses kept as candidates for the check ...
    check_candidates: int = 6  # ... at most this many (the best)
    check_size: int = 64  # px, a multiple of 32 (the network downsamples by 32)
    check_margin: float = 0.1  # a turned crop must beat the upright one by this much heat


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(xx2 - xx1, 0) * np.maximum(yy2 - yy1, 0)
        union = areas[i] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-9), 0)
        # Also drop boxes mostly inside a better one (a partial face next to the whole face).
        inside = inter / np.maximum(np.minimum(areas[i], areas[rest]), 1e-9)
        order = rest[(overlap <= iou) & (inside <= 0.8)]
    return np.asarray(keep, dtype=np.intp)


def median(values: np.ndarray) -> float:
    """`float(np.median(values))` of a 1-D array without NaN, computed the same way (a partition, then the mean of
    the middle one or two): `np.median` imports `numpy.ma` on its first call (60-110 ms of a cold command)."""
    values = np.asarray(values).ravel()
    n = len(values)
    if not n:
        return float("nan")
    middle = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    return float(np.mean(np.partition(values, middle)[middle]))


def tiles(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """(start offsets, tile length) of the fewest tiles of at most `tile` px covering [0, length) with at least
    `overlap` px shared between neighbours. Tiles are shrunk to share the length evenly: less wasted work."""
    if length <= tile:
        return [0], length
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    size = min(tile, int(np.ceil((length + (count - 1) * overlap) / count)))
    starts = np.linspace(0, length - size, count)
    return [round(float(s)) for s in starts], size


class CenterFace:
    """CenterFace detector (MIT). Runs with cv2.dnn on CPU (faster there) or onnxruntime (GPU providers).

    `session` may be injected (an onnxruntime-like object with `run(outputs, feeds)`), e.g. for tests.
    """

    name = "centerface"
    _outputs = ("537", "538", "539", "540")

    def __init__(
        self,
        session: Any | None = None,
        *,
        backend: str = "auto",
        threshold: float = 0.45,
        nms_iou: float = 0.35,
        tiling: TilingConfig | None = None,
        orientation: OrientationConfig | None = OrientationConfig(),
    ) -> None:
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.tiling = tiling or TilingConfig()
        self.orientation = orientation  # None: search upright only
        self._lock = threading.Lock()  # cv2.dnn nets are not safe to share between threads
        if session is not None:
            self.backend = "injected"
            self._session = session
            return
        if backend == "auto":
            backend = "onnxruntime" if choose_providers()[0] != "CPUExecutionProvider" else "opencv"
        self.backend = backend
        path = model_path("centerface")
        if backend == "opencv":
            self._net = cv2.dnn.readNetFromONNX(str(path))
        elif backend == "onnxruntime":
            self._session = create_session(_dynamic_centerface(path.read_bytes()))
        else:
            raise ValueError(f"unknown backend `{backend}`")

    # -- one forward pass ---------------------------------------------------------------------------------
    def _forward(self, blob: np.ndarray) -> list[np.ndarray]:
        if self.backend == "opencv":
            with self._lock:
                self._net.setInput(blob)
                return list(self._net.forward(list(self._outputs)))
        return list(self._session.run(list(self._outputs), {"input.1": blob}))

    def detect_pass(
        self, image: np.ndarray, scale: float, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect in `image` resized by `scale`; returns boxes (N,4), scores (N,), landmarks (N,5,2) in the
        coordinates of `image`, for scores of at least `threshold` (default: the detector's)."""
        h, w = image.shape[:2]
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        pw, ph = -(-sw // 32) * 32, -(-sh // 32) * 32  # the network downsamples by 32
        resized = image if (sw, sh) == (w, h) else cv2.resize(
            image, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        blob[0, :, :sh, :sw] = resized.transpose(2, 0, 1)
        heatmap, scales, offsets, landmarks = self._forward(blob)
        boxes, scores, lms = decode_centerface(heatmap, scales, offsets, landmarks,
                                               self.threshold if threshold is None else threshold)
        fx, fy = sw / w, sh / h
        boxes /= np.array([fx, fy, fx, fy], dtype=np.float32)
        lms /= np.array([fx, fy], dtype=np.float32)
        return boxes, scores, lms

    # -- the whole search ---------------------------------------------------------------------------------
    def passes(self, height: int, width: int) -> Iterator[tuple[float, tuple[int, int, int, int], bool]]:
        """(scale, crop x0 y0 x1 y1, is_tile) for every pass `detect` runs on an image of this size."""
        cfg = self.tiling
        long_side = max(height, width)
        scale = cfg.working_scale(long_side)
        tile_px = max(1, int(cfg.tile_size / scale))  # tile size in original pixels
        overlap_px = int(cfg.overlap / scale)
        (xs, tile_w), (ys, tile_h) = tiles(width, tile_px, overlap_px), tiles(height, tile_px, overlap_px)
        tiled = len(xs) * len(ys) > 1
        for y0 in ys:
            for x0 in xs:
                yield scale, (x0, y0, min(width, x0 + tile_w), min(height, y0 + tile_h)), tiled
        if tiled:  # faces larger than the overlap may be cut in every tile: one whole-image pass finds them
            yield cfg.coarse_size / long_side, (0, 0, width, height), False

    def detect(self, image: np.ndarray) -> Faces:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("detect() expects an RGB uint8 image (H, W, 3); use load_image()")
        height, width = image.shape[:2]
        if self.orientation is None:
            boxes, scores, lms = self._search(image)
        else:
            # Weak responses (below the threshold) are kept apart as candidates for the orientation check: on a
            # turned photo most of them are faces lying on their side. They never reach the output.
            boxes, scores, lms = self._search(image, min(self.threshold, self.orientation.candidate_threshold))
            strong = scores >= self.threshold
            candidates, candidate_scores = boxes[~strong], scores[~strong]
            boxes, scores, lms = boxes[strong], scores[strong], lms[strong]
            turns = self.turns_to_search(image, boxes, scores, candidates, candidate_scores)
            if turns:
                parts = [(boxes, scores, lms)]
                for turn in turns:
                    # The whole search again on the photo turned by `turn` quarter turns (counter-clockwise),
                    # mapped back: a face lying on its side is found upright there, with meaningful landmarks.
                    b, s, points = self._search(np.ascontiguousarray(np.rot90(image, turn)))
                    parts.append((unturn_boxes(b, turn, height, width), s, unturn_points(points, turn, height, width)))
                boxes, scores, lms = (np.concatenate(p) for p in zip(*parts, strict=True))
                keep = nms(boxes, scores, self.nms_iou)
                boxes, scores, lms = boxes[keep], scores[keep], lms[keep]
        if not len(boxes):
            return Faces.empty()
        boxes = boxes.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        # Reading order (top to bottom, then left to right) makes output stable and easy to compare.
        order = np.lexsort((boxes[:, 0], np.round(boxes[:, 1] / max(1.0, median(boxes[:, 3] - boxes[:, 1])))))
        return Faces(boxes=boxes[order], scores=scores[order], landmarks5=lms[order])

    def _search(
        self, image: np.ndarray, threshold: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pass of the tiled search over `image`, merged: boxes (N,4), scores (N,), landmarks (N,5,2)."""
        height, width = image.shape[:2]
        all_boxes, all_scores, all_lms = [], [], []
        for scale, (x0, y0, x1, y1), is_tile in self.passes(height, width):
            crop = image[y0:y1, x0:x1]
            boxes, scores, lms = self.detect_pass(crop, scale, threshold)
            if is_tile and len(boxes):
                # A face cut by an interior tile border is only partly visible here: keep it from the
                # tile (or the coarse pass) that sees it whole.
                margin = 2.0
                cut = np.zeros(len(boxes), dtype=bool)
                if x0 > 0:
                    cut |= boxes[:, 0] <= margin
                if y0 > 0:
                    cut |= boxes[:, 1] <= margin
                if x1 < width:
                    cut |= boxes[:, 2] >= (x1 - x0) - margin
                if y1 < height:
                    cut |= boxes[:, 3] >= (y1 - y0) - margin
                boxes, scores, lms = boxes[~cut], scores[~cut], lms[~cut]
            all_boxes.append(boxes + np.array([x0, y0, x0, y0], dtype=np.float32))
            all_scores.append(scores)
            all_lms.append(lms + np.array([x0, y0], dtype=np.float32))
        boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4), np.float32)
        if not len(boxes):
            return boxes, np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        scores, lms = np.concatenate(all_scores), np.concatenate(all_lms)
        keep = nms(boxes, scores, self.nms_iou)
        return boxes[keep], scores[keep], lms[keep]

    # -- photos that lost their orientation ---------------------------------------------------------------
    def turns_to_search(
        self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
        candidates: np.ndarray | None = None, candidate_scores: np.ndarray | None = None,
    ) -> list[int]:
        """Quarter turns (1, 2 or 3, counter-clockwise as `np.rot90`) worth a whole second search.

        Evidence, cheapest first: the best faces found upright (`boxes`) re-detected in small crops turned each
        way (a face lying on its side scores far higher turned upright); when they agree, that decides. Else the
        best weak `candidates` (upright scores below the threshold) are checked the same way, and if they show
        no turn either, probe passes over the whole photo, reduced and turned each way, look for faces the
        upright search missed altogether."""
        cfg = self.orientation
        if cfg is None:
            return []
        evidence = np.zeros(4)
        # 1. the faces found upright, re-detected in crops turned each way (one small batch): when they all
        # agree (upright, or all turned the same way), that decides
        if len(boxes):
            votes = self._check_faces(image, boxes, scores, cfg.check_faces)
            # a face's vote: its best turn, if that scores above the threshold; upright needs no such score (the
            # upright search already found it there), only no turn scoring better
            decided = {int(np.argmax(row)) if row.max() >= self.threshold or np.argmax(row) == 0 else -1
                       for row in votes}
            if len(decided) == 1 and -1 not in decided:
                turn = decided.pop()
                return [turn] if turn else []
            evidence += self._turn_votes(votes)
        # 2. the weak upright responses: on a turned photo with small faces, often the only trace of them
        if candidates is not None and candidate_scores is not None and len(candidates):
            evidence += self._turn_votes(self._check_faces(image, candidates, candidate_scores, cfg.check_candidates))
        if evidence.any():
            return [int(np.argmax(evidence))]
        # 3. probes: the photo reduced to a fraction of the working size, then turned each way (cheap: small)
        height, width = image.shape[:2]
        long_side = max(height, width)
        working = self.tiling.working_scale(long_side) * long_side
        probe_side = min(cfg.probe_max, max(cfg.probe_fraction * working, min(working, cfg.probe_min)))
        scale = min(1.0, probe_side / long_side)
        small = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                           interpolation=cv2.INTER_AREA)
        for turn in (1, 2, 3):
            b, s, _ = self.detect_pass(np.ascontiguousarray(np.rot90(small, turn)), 1.0)
            if len(b):
                b = unturn_boxes(b, turn, small.shape[0], small.shape[1]) / np.float32(scale)
                evidence[turn] += float(s[_novel(b, boxes)].sum())
        best = int(np.argmax(evidence))
        return [best] if best and evidence[best] > 0 else []

    def _turn_votes(self, votes: np.ndarray) -> np.ndarray:
        """(4,) evidence per quarter turn from `_check_faces` rows: a turned crop scoring above the threshold
        and clearly above the upright crop."""
        assert self.orientation is not None
        evidence = np.zeros(4)
        for row in votes:
            turn = int(np.argmax(row))
            if turn and row[turn] >= self.threshold and row[turn] > row[0] + self.orientation.check_margin:
                evidence[turn] += float(row[turn])
        return evidence

    def _check_faces(self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
        """(n, 4) peak heat at the centre of a crop around each of the n <= `count` best boxes, turned 0-3
        quarter turns."""
        assert self.orientation is not None
        top = np.argsort(-scores)[:count]
        size = self.orientation.check_size
        blob = np.zeros((len(top) * 4, 3, size, size), np.float32)
        for j, i in enumerate(top):
            crop = _square_crop(image, boxes[i], size)
            for turn in range(4):
                blob[4 * j + turn] = np.rot90(crop, turn).transpose(2, 0, 1)
        heat = self._forward(blob)[0][:, 0]  # (4n, size/4, size/4)
        c = heat.shape[1] // 2
        return heat[:, c - 2 : c + 2, c - 2 : c + 2].reshape(len(top), 4, -1).max(axis=2)


def _novel(found: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Which of `found` overlap none of `known` (IoU < 0.3 and not mostly inside one)."""
    if not len(known):
        return np.ones(len(found), dtype=bool)
    x1 = np.maximum(found[:, None, 0], known[None, :, 0])
    y1 = np.maximum(found[:, None, 1], known[None, :, 1])
    x2 = np.minimum(found[:, None, 2], known[None, :, 2])
    y2 = np.minimum(found[:, None, 3], known[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_f = ((found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1]))[:, None]
    area_k = ((known[:, 2] - known[:, 0]) * (known[:, 3] - known[:, 1]))[None, :]
    iou = inter / np.maximum(area_f + area_k - inter, 1e-9)
    inside = inter / np.maximum(np.minimum(area_f, area_k), 1e-9)
    return ~((iou >= 0.3) | (inside >= 0.6)).any(axis=1)


def _square_crop(image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """A `size` px square centred on a box and twice its longer side (the face fills the middle half)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = 2.0 * max(x2 - x1, y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / side
    matrix = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)


def decode_centerface(
    heatmap: np.ndarray, scales: np.ndarray, offsets: np.ndarray, landmarks: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn CenterFace's stride-4 maps into boxes, scores and 5 landmarks (input pixel coordinates)."""
    heat = heatmap[0, 0]
    ys, xs = np.nonzero(heat > threshold)
    if ys.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    score = heat[ys, xs].astype(np.float32)
    height = np.exp(scales[0, 0, ys, xs]) * 4.0
    width = np.exp(scales[0, 1, ys, xs]) * 4.0
    cy = (ys + offsets[0, 0, ys, xs] + 0.5) * 4.0
    cx = (xs + offsets[0, 1, ys, xs] + 0.5) * 4.0
    # A face cut by the input's left or top edge has its centre and size predicted for the whole face, with a
    # corner outside: the box is clipped there (not shifted inward) and the landmarks, regressed relative to
    # that corner, are decoded from it.
    left = cx - width / 2
    top = cy - height / 2
    boxes = np.stack([np.maximum(left, 0), np.maximum(top, 0), left + width, top + height], axis=1).astype(np.float32)
    lm = landmarks[0][:, ys, xs]  # (10, K): y0, x0, y1, x1, ...
    lx = lm[1::2] * width + left
    ly = lm[0::2] * height + top
    points = np.stack([lx, ly], axis=-1).transpose(1, 0, 2).astype(np.float32)  # (K, 5, 2)
    # Neighbouring heatmap cells fire for the same face: keep one per face before the image-level merge.
    keep = nms(boxes, score, 0.3)
    return boxes[keep], score[keep], points[keep]


def _dynamic_centerface(data: bytes) -> bytes:
    """The shipped graph declares a fixed 32×32 input; onnxruntime needs symbolic sizes to accept others."""
    import onnx

    model = onnx.load_from_string(data)
    for value in [model.graph.input[0], *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for dim, label in zip(dims, ("batch", None, "height", "width"), strict=False):
            if label:
                dim.dim_param = f"{value.name}_{label}" if value is not model.graph.input[0] else label
    # Outputs get their own symbolic names so onnxruntime infers them instead of checking against 32×32.
    return model.SerializeToString()
