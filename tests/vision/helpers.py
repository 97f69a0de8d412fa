"""Helpers for mfmc.vision tests: photos from installed packages, generated group photos, box matching.

No photo is committed to the repository. Faces come from `openpeople` (MIT, synthetic people, a dev
dependency) and scikit-image's `astronaut` (NASA, public domain); crowded photos are composited from openpeople
portraits so that their ground-truth boxes are known.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mfmc.vision import FacePipeline, load_image
from mfmc.vision.recognition import Recognizer
from mfmc.vision.registry import package_dir

PEOPLE = [f"P{i:03d}" for i in range(1, 11)]
# Every openpeople photo kind with frontal faces; the session fixture `labelled_photos` analyses each person's
# once at this size.
LABELLED_ASSETS = ("studio_portrait", "amateur_selfie", "studio_posture", "amateur_posture", "character_sheet",
                   "emotions_sheet")
LABELLED_SIDE = 1024


def openpeople_root() -> Path:
    folder = package_dir("openpeople")
    assert folder is not None, "openpeople is a dev dependency: pip install -e '.[dev]'"
    return folder / "data" / "curated"


@functools.lru_cache(maxsize=64)
def photo(person: str, asset: str, max_side: int = 1024) -> np.ndarray:
    """An openpeople photo, downscaled so that tests stay fast (faces stay > 60 px)."""
    image = load_image(openpeople_root() / person / "assets" / f"{asset}.jpg")
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    image.setflags(write=False)
    return image


def metadata(person: str) -> dict:
    return json.loads((openpeople_root() / person / "metadata.json").read_text())


@dataclass(frozen=True)
class GroupPhoto:
    image: np.ndarray
    boxes: np.ndarray  # ground truth, (N, 4)
    people: list[str]


def make_group(pipeline: FacePipeline, sizes: list[int], canvas: tuple[int, int], seed: int = 0) -> GroupPhoto:
    """Paste face crops of openpeople portraits (cycling through the 10 people) onto a textured canvas in a
    jittered grid. `sizes` are face-box widths in pixels; the detected box on the source crop, mapped through
    the paste transform, is the ground truth."""
    rng = np.random.default_rng(seed)
    height, width = canvas
    image = np.clip(rng.normal(120, 25, (height, width, 3)), 0, 255).astype(np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3)
    cols = int(np.ceil(np.sqrt(len(sizes) * width / height)))
    rows = int(np.ceil(len(sizes) / cols))
    cell_w, cell_h = width / cols, height / rows
    boxes, people = [], []
    for k, size in enumerate(sizes):
        person = PEOPLE[k % len(PEOPLE)]
        source = photo(person, "studio_portrait", 640)
        src_box = _portrait_box(pipeline, person)
        bw = src_box[2] - src_box[0]
        # Crop 1.8 × the face so that hair and neck come along, then scale the face to `size` px wide.
        cx, cy = (src_box[0] + src_box[2]) / 2, (src_box[1] + src_box[3]) / 2
        half = 0.9 * max(bw, src_box[3] - src_box[1])
        x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
        x1, y1 = int(min(source.shape[1], cx + half)), int(min(source.shape[0], cy + half))
        crop = source[y0:y1, x0:x1]
        scale = size / bw
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        r, c = divmod(k, cols)
        max_x = max(0.0, cell_w - crop.shape[1])
        max_y = max(0.0, cell_h - crop.shape[0])
        px = int(c * cell_w + rng.uniform(0, max_x))
        py = int(r * cell_h + rng.uniform(0, max_y))
        ch, cw = min(crop.shape[0], height - py), min(crop.shape[1], width - px)
        image[py : py + ch, px : px + cw] = crop[:ch, :cw]
        box = (np.asarray(src_box) - [x0, y0, x0, y0]) * scale + [px, py, px, py]
        boxes.append(box)
        people.append(person)
    return GroupPhoto(image, np.asarray(boxes, dtype=np.float32), people)


_BOXES: dict[str, np.ndarray] = {}


def _portrait_box(pipeline: FacePipeline, person: str) -> np.ndarray:
    if person not in _BOXES:
        faces = pipeline.detect(photo(person, "studio_portrait", 640))
        assert len(faces) == 1
        _BOXES[person] = faces.boxes[0].copy()
    return _BOXES[person]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def match(truth: np.ndarray, found: np.ndarray, min_iou: float = 0.4) -> tuple[int, int]:
    """(ground-truth faces found, detections matching no ground truth), by greedy IoU matching."""
    if len(found) == 0:
        return 0, 0
    iou = iou_matrix(truth, found)
    matched_truth, used = 0, set()
    for i in np.argsort(-iou.max(axis=1)):
        j = int(np.argmax(np.where([k in used for k in range(len(found))], -1, iou[i])))
        if iou[i, j] >= min_iou and j not in used:
            used.add(j)
            matched_truth += 1
    return matched_truth, len(found) - len(used)


def astronaut_twice(recognizer: Recognizer, pipeline: FacePipeline) -> tuple[np.ndarray, np.ndarray]:
    """A real face embedded as it is and mirrored, shrunk to 0.6 and saved as a JPEG of quality 60: (1, D) each."""
    from skimage import data

    real = np.ascontiguousarray(data.astronaut())
    changed = cv2.resize(real[:, ::-1], None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", changed, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    changed = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)
    return recognizer.embed(real, pipeline.detect(real)[:1]), recognizer.embed(changed, pipeline.detect(changed)[:1])
