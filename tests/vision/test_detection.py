"""Detection: decoding, tiling and merging (unit), and every face found on real and composited photos (slow)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from mfmc.vision import FacePipeline, load_image
from mfmc.vision.detection import CenterFace, TilingConfig, decode_centerface, nms, tiles
from tests.vision.helpers import iou_matrix, make_group, match, photo


def test_nms_keeps_best_and_drops_duplicates_and_contained_parts() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 5, 9]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.5], dtype=np.float32)
    keep = nms(boxes, scores, 0.4)
    # 1 duplicates 0 (IoU 0.68); 3 is a part inside 0 (IoU 0.45, but 100 % contained)
    assert keep.tolist() == [0, 2]
    assert nms(boxes[[2]], scores[[2]], 0.4).tolist() == [0]


def test_tiles_cover_evenly_with_overlap() -> None:
    assert tiles(500, 1024, 160) == ([0], 500)
    starts, size = tiles(3000, 1024, 160)
    assert size <= 1024 and starts[0] == 0 and starts[-1] + size == 3000
    assert all(b - a <= size - 160 for a, b in itertools.pairwise(starts))  # neighbours share >= 160 px
    assert len(starts) == 4  # the fewest tiles that can do it


class FakeSession:
    """Stands in for the ONNX session: one face centred at (cx, cy) of the padded input."""

    def __init__(self, cx: float, cy: float, size: float) -> None:
        self.cx, self.cy, self.size, self.inputs = cx, cy, size, []

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        blob = feeds["input.1"]
        self.inputs.append(blob.shape)
        h, w = blob.shape[2] // 4, blob.shape[3] // 4
        heat = np.zeros((1, 1, h, w), np.float32)
        scale = np.full((1, 2, h, w), np.log(self.size / 4), np.float32)
        offset = np.zeros((1, 2, h, w), np.float32)
        lms = np.tile(np.array([0.3, 0.3, 0.3, 0.7, 0.5, 0.5, 0.7, 0.35, 0.7, 0.65], np.float32)[None, :, None, None],
                      (1, 1, h, w))
        heat[0, 0, int(self.cy // 4), int(self.cx // 4)] = 0.9
        return [heat, scale, offset, lms]


def test_decode_maps_back_to_image_pixels() -> None:
    session = FakeSession(cx=202, cy=102, size=40)
    detector = CenterFace(session=session, tiling=TilingConfig(min_face=13, min_side=10), orientation=None)  # scale 1
    faces = detector.detect(np.zeros((300, 400, 3), np.uint8))
    assert session.inputs == [(1, 3, 320, 416)]  # padded to multiples of 32, not resized
    assert len(faces) == 1
    assert faces.boxes[0] == pytest.approx([182, 82, 222, 122], abs=1)
    # landmarks: (y, x) pairs relative to the box; the first is the image-left eye
    assert faces.landmarks5[0, 0] == pytest.approx([182 + 0.3 * 40, 82 + 0.3 * 40], abs=1)
    heat = np.zeros((1, 1, 8, 8), np.float32)
    empty = decode_centerface(heat, np.zeros((1, 2, 8, 8)), np.zeros((1, 2, 8, 8)), np.zeros((1, 10, 8, 8)), 0.5)
    assert [a.shape for a in empty] == [(0, 4), (0,), (0, 5, 2)]


def test_detect_rejects_non_rgb() -> None:
    detector = CenterFace(session=FakeSession(0, 0, 1))
    with pytest.raises(ValueError, match="RGB uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


@pytest.mark.slow
@pytest.mark.parametrize("person", ["P001", "P006"])
def test_expression_sheet_has_16_faces_in_a_grid(pipeline: FacePipeline, person: str) -> None:
    faces = pipeline.detect(photo(person, "emotions_sheet", 1200))
    assert len(faces) == 16
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    # 4 rows of 4, in reading order: every face of a row is above every face of the next row
    ys = centres[:, 1].reshape(4, 4)
    assert (ys.max(axis=1)[:-1] < ys.min(axis=1)[1:]).all()
    xs = centres[:, 0].reshape(4, 4)
    assert (np.diff(xs, axis=1) > 0).all()
    assert (faces.scores > 0.6).all()


@pytest.mark.slow
def test_crowded_group_with_small_faces(pipeline: FacePipeline) -> None:
    """24 faces from 18 to 40 px wide on a 1600 × 1200 photo: all found, nothing else."""
    group = make_group(pipeline, [18, 20, 22, 24, 26, 30, 34, 40] * 3, (1200, 1600), seed=1)
    faces = pipeline.detect(group.image)
    found, extra = match(group.boxes, faces.boxes)
    assert (found, extra) == (24, 0)


@pytest.mark.slow
def test_large_group_across_tiles_has_no_duplicates(pipeline: FacePipeline) -> None:
    """26 faces (20 to 300 px) on 3000 × 2200: tiled search plus coarse pass, merged without duplicates."""
    group = make_group(pipeline, [20, 24] * 12 + [200, 300], (2200, 3000), seed=2)
    faces = pipeline.detect(group.image)
    found, extra = match(group.boxes, faces.boxes)
    assert (found, extra) == (26, 0)
    overlap = iou_matrix(faces.boxes, faces.boxes)
    np.fill_diagonal(overlap, 0)
    assert overlap.max() < 0.2


@pytest.mark.slow
def test_real_photo_astronaut(pipeline: FacePipeline) -> None:
    from skimage import data

    image = data.astronaut()  # NASA portrait of Eileen Collins, public domain
    faces = pipeline.detect(image)
    assert len(faces) == 1
    x1, y1, x2, y2 = faces.boxes[0]
    assert 150 < (x1 + x2) / 2 < 250 and 50 < (y1 + y2) / 2 < 160  # her face, top centre-left


@pytest.mark.slow
def test_no_faces_gives_empty_result(pipeline: FacePipeline) -> None:
    from skimage import data

    rng = np.random.default_rng(0)
    for image in (np.zeros((480, 640, 3), np.uint8), rng.integers(0, 255, (600, 800, 3), dtype=np.uint8),
                  data.coffee(), data.chelsea()):
        faces = pipeline.detect(np.ascontiguousarray(image))
        assert len(faces) == 0


@pytest.mark.slow
def test_exif_rotated_photo_gives_upright_boxes(pipeline: FacePipeline) -> None:
    upright = photo("P004", "amateur_selfie", 800)
    # Store the pixels rotated 90° clockwise-undone, with orientation 6 ("rotate 90° CW to display").
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, k=1)))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif, quality=95)
    loaded = load_image(buffer.getvalue())
    assert loaded.shape == upright.shape
    direct, via_exif = pipeline.detect(upright), pipeline.detect(loaded)
    assert len(direct) == len(via_exif) == 1
    assert iou_matrix(direct.boxes, via_exif.boxes)[0, 0] > 0.85


@pytest.mark.slow
def test_small_images_are_searched_at_native_resolution_and_keep_12px_faces(pipeline: FacePipeline) -> None:
    detector = pipeline.detector
    for size, scale in (((120, 240), 1.0), ((480, 640), 1.0), ((600, 800), 0.8)):
        assert max(s for s, _, _ in detector.passes(*size)) == pytest.approx(scale)  # never enlarged
    for sizes, canvas, seed in (([14, 16, 18], (120, 240), 3), ([12, 13, 14, 16] * 4, (480, 640), 5),
                                ([12, 14, 16, 18, 20] * 2, (300, 400), 6)):
        group = make_group(pipeline, sizes, canvas, seed=seed)
        found, extra = match(group.boxes, pipeline.detect(group.image).boxes, min_iou=0.3)
        assert (found, extra) == (len(sizes), 0)
