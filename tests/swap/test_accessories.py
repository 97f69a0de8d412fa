"""What a source wears stays on the fake (issue 11, item 1): dark glasses and face masks drawn on a real face are
found, bare faces are not flagged, and the swappers leave those regions as they were."""

from __future__ import annotations

import os

import cv2
import matplotlib
import numpy as np
import pytest

from mfmc.swap import landmarks as lmk
from mfmc.swap.accessories import (
    dark_lenses,
    face_mask,
    frame_stats,
    glasses_frames,
    kept_regions,
    lens_stats,
    mask_stats,
)
from mfmc.swap.split import SplitSwapper
from mfmc.swap.warp import WarpSwapper
from mfmc.vision import FacePipeline, load_image
from tests.vision.helpers import photo

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the astronaut photo")


def _landmarks(pipeline: FacePipeline, image: np.ndarray) -> np.ndarray:
    faces = pipeline.analyze(image, recognizers=[])
    assert faces.landmarks68 is not None and len(faces) >= 1
    return np.asarray(faces.landmarks68[0], dtype=np.float64)


def _sunglasses(image: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Draw dark, slightly tinted lenses with a black frame and bridge over both eyes (a real face wearing them)."""
    out = image.copy()
    d = float(np.linalg.norm(pts[lmk.LEFT_EYE].mean(0) - pts[lmk.RIGHT_EYE].mean(0)))
    centres = [pts[lmk.RIGHT_EYE].mean(0), pts[lmk.LEFT_EYE].mean(0)]
    axes = (int(0.36 * d), int(0.25 * d))
    angle = float(np.degrees(np.arctan2(*(centres[1] - centres[0])[::-1])))
    rng = np.random.default_rng(0)
    for c in centres:
        centre = (int(c[0]), int(c[1]))
        cv2.ellipse(out, centre, axes, angle, 0, 360, (22, 30, 28), -1, cv2.LINE_AA)
        cv2.ellipse(out, centre, axes, angle, 0, 360, (8, 8, 8), max(2, int(0.05 * d)), cv2.LINE_AA)
    noise = rng.normal(0, 1.5, out.shape)  # lenses are not perfectly flat: sensor noise over them
    out = np.clip(out.astype(np.float64) + noise, 0, 255).astype(np.uint8)
    a, b = (centres[0] + (axes[0], 0)).astype(int), (centres[1] - (axes[0], 0)).astype(int)
    cv2.line(out, tuple(int(v) for v in a), tuple(int(v) for v in b), (8, 8, 8), max(2, int(0.05 * d)))
    return out


def _surgical_mask(image: np.ndarray, pts: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Draw a face mask from the jaw up to the nose bridge, with a little sensor noise (a real face wearing it)."""
    out = image.copy()
    top = (pts[28] + pts[29]) / 2.0
    polygon = np.vstack([pts[1:16], top[None]]).round().astype(np.int32)
    cv2.fillPoly(out, [polygon], colour, cv2.LINE_AA)
    noise = np.random.default_rng(1).normal(0, 1.5, out.shape)
    return np.clip(out.astype(np.float64) + noise, 0, 255).astype(np.uint8)


def _bare_faces() -> list[np.ndarray]:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    people = ("P006", "P007", "P008", "P009", "P010")
    return [astro] + [photo(p, a, 640) for p in people for a in ("studio_portrait", "amateur_selfie")]


def test_bare_real_faces_keep_nothing(pipeline: FacePipeline) -> None:
    for image in _bare_faces():
        pts = _landmarks(pipeline, image)
        assert kept_regions(image, pts) == [], (lens_stats(image, pts), mask_stats(image, pts), frame_stats(image, pts))


@pytest.mark.parametrize("colour", [(235, 238, 240), (120, 160, 205), (30, 30, 34)], ids=["white", "blue", "black"])
def test_drawn_face_masks_are_found(pipeline: FacePipeline, colour: tuple[int, int, int]) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    masked = _surgical_mask(astro, _landmarks(pipeline, astro), colour)
    pts = _landmarks(pipeline, masked)
    polygon = face_mask(masked, pts)
    assert polygon is not None, mask_stats(masked, pts)
    assert cv2.pointPolygonTest(polygon.astype(np.float32), tuple(float(v) for v in pts[57]), False) > 0
    assert dark_lenses(masked, pts) == []


def test_a_grey_scale_photo_is_not_judged_for_masks(pipeline: FacePipeline) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    grey = np.repeat(cv2.cvtColor(astro, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    masked = _surgical_mask(grey, _landmarks(pipeline, grey), (235, 235, 235))
    assert face_mask(masked, _landmarks(pipeline, masked)) is None  # no skin tint to tell a mask from skin


def test_drawn_sunglasses_are_found_around_both_eyes(pipeline: FacePipeline) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    pts = _landmarks(pipeline, astro)
    worn = _sunglasses(astro, pts)
    polygons = dark_lenses(worn, _landmarks(pipeline, worn))
    assert len(polygons) == 2
    for poly, eye in zip(polygons, (lmk.RIGHT_EYE, lmk.LEFT_EYE), strict=True):
        inside = cv2.pointPolygonTest(poly.astype(np.float32), tuple(float(v) for v in pts[eye].mean(0)), False)
        assert inside > 0


@pytest.mark.parametrize("wear", ["sunglasses", "mask"])
@pytest.mark.parametrize("swapper", [SplitSwapper(), WarpSwapper()], ids=["split", "warp"])
def test_swappers_keep_what_the_source_wears(
    pipeline: FacePipeline, swapper: SplitSwapper | WarpSwapper, wear: str
) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    pts = _landmarks(pipeline, astro)
    worn = _sunglasses(astro, pts) if wear == "sunglasses" else _surgical_mask(astro, pts, (235, 238, 240))
    src = _landmarks(pipeline, worn)
    target = photo("P001", "studio_portrait", 640)
    swap = swapper.swap(worn, src, target, _landmarks(pipeline, target), alpha=0.5)
    result = swap.patch.apply(worn)
    regions = kept_regions(worn, src)
    assert [len(r.polygons) for r in regions] == [2 if wear == "sunglasses" else 1]
    assert all(r.reason in swap.notes for r in regions)  # said, not silent
    kept = np.zeros(worn.shape[:2], np.uint8)
    for polygon in regions[0].polygons:
        cv2.fillPoly(kept, [np.round(polygon).astype(np.int32)], 1)
    core = cv2.erode(kept, np.ones((5, 5), np.uint8)).astype(bool)
    assert core.sum() > 100
    changed = np.abs(result.astype(np.int16) - worn.astype(np.int16)).max(axis=2) > 1
    assert np.mean(changed[core]) < 0.02  # what the source wears is the source's
    face = np.zeros_like(kept)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(src[:48]).astype(np.int32)), 1)
    assert np.mean(changed[face.astype(bool) & ~kept.astype(bool)]) > 0.3  # the rest of the face did change


@pytest.mark.parametrize("swapper", [SplitSwapper(), WarpSwapper()], ids=["split", "warp"])
def test_a_fake_in_a_grey_scale_photo_stays_grey(pipeline: FacePipeline, swapper: SplitSwapper | WarpSwapper) -> None:
    astro = np.ascontiguousarray(skimage_data.astronaut())
    grey = np.ascontiguousarray(np.repeat(cv2.cvtColor(astro, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2))
    src = _landmarks(pipeline, grey)
    target = photo("P001", "studio_portrait", 640)  # in colour
    result = swapper.swap(grey, src, target, _landmarks(pipeline, target), alpha=0.5).patch.apply(grey)
    spread = result.astype(np.int16).max(axis=2) - result.astype(np.int16).min(axis=2)
    changed = np.abs(result.astype(np.int16) - grey.astype(np.int16)).max(axis=2) > 1
    assert changed.sum() > 1000  # the face was swapped
    assert np.percentile(spread[changed], 99) <= 3  # and took no colour (R = G = B up to rounding)


def _hopper() -> np.ndarray:
    """matplotlib's Grace Hopper (public domain): a real face wearing thick, dark-topped glasses frames."""
    return load_image(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))


@pytest.mark.parametrize("swapper", [SplitSwapper(), WarpSwapper()], ids=["split", "warp"])
def test_thick_glasses_frames_of_a_real_face_stay(pipeline: FacePipeline, swapper: SplitSwapper | WarpSwapper) -> None:
    hopper = _hopper()
    pts = _landmarks(pipeline, hopper)
    strokes = glasses_frames(hopper, pts)
    assert len(strokes) >= 3, frame_stats(hopper, pts)
    kept = np.zeros(hopper.shape[:2], np.uint8)
    for polygon in strokes:
        cv2.fillPoly(kept, [np.round(polygon).astype(np.int32)], 1)
    for eye in (lmk.RIGHT_EYE, lmk.LEFT_EYE):  # the eyes behind the frames are not kept
        assert kept[int(pts[eye][:, 1].mean()), int(pts[eye][:, 0].mean())] == 0
    target = photo("P001", "studio_portrait", 640)
    swap = swapper.swap(hopper, pts, target, _landmarks(pipeline, target), alpha=0.5)
    assert "kept the source's glasses frames" in swap.notes
    result = swap.patch.apply(hopper)
    changed = np.abs(result.astype(np.int16) - hopper.astype(np.int16)).max(axis=2) > 1
    assert np.mean(changed[kept.astype(bool)]) < 0.05  # the frames are the source's
    eyes = np.zeros_like(kept)
    for eye in (lmk.RIGHT_EYE, lmk.LEFT_EYE):
        cv2.fillConvexPoly(eyes, np.round(pts[eye]).astype(np.int32), 1)
    assert np.mean(changed[eyes.astype(bool)]) > 0.5  # the eyes are the target's
